"""``greenflow results [OUTPUT_DIR]``: stored runs as a table, JSON, CSV or Parquet."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import click

from greenflow.cli._app import App, error_boundary

if TYPE_CHECKING:
    from greenflow.stats import PointSummary, Stat

# The per-run total the table shows: host energy over MEASURE (docs/results.md).
ENERGY_METRIC = "energy_joules"
ENERGY_SCOPE = "host"


@click.command()
@click.argument(
    "output_dir", required=False, default="greenflow-output", type=click.Path(path_type=Path)
)
@click.option("-e", "--experiment", metavar="NAME", help="Only this experiment (default: all).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per run to stdout.")
@click.option(
    "--csv",
    "csv_path",
    metavar="FILE",
    type=click.Path(dir_okay=False, allow_dash=True),
    help="Write one CSV row per run to FILE ('-' for stdout).",
)
@click.option(
    "--parquet",
    "parquet_path",
    metavar="FILE",
    type=click.Path(dir_okay=False),
    help="Write one Parquet row per run to FILE (needs pandas and pyarrow).",
)
@click.option(
    "--summary",
    is_flag=True,
    help="Per parameter point across repetitions: mean ± 95 % CI, n (with --json, "
    "--csv, --parquet: every figure, one row per point).",
)
@click.pass_obj
def results(
    app: App | None,
    output_dir: Path,
    experiment: str | None,
    as_json: bool,
    csv_path: str | None,
    parquet_path: str | None,
    summary: bool,
) -> None:
    """Show the runs stored in OUTPUT_DIR (default ./greenflow-output).

    The table shows, per run: its order, parameters, status, the units of work done
    in MEASURE, the achieved rate, host energy over MEASURE (summed over hosts) in J,
    J per unit, and how the energy was obtained (rapl, model:..., ...). Exports have
    every column; docs/results.md names them.

    With --summary, one line per parameter point instead: how many repetitions
    finished (n) and failed, and the mean ± half-width of the 95 % confidence interval
    of host energy, J per unit, dynamic (idle-subtracted) J per unit, the achieved rate
    and p99 latency, per measurement method.
    """
    from greenflow.store import Store
    from greenflow.store.export import rows, to_json, write_csv

    with error_boundary(app or App()), Store.open(output_dir, create=False) as store:
        if summary:
            _summary(store, experiment, as_json, csv_path, parquet_path)
            return
        data = rows(store, experiment)
        if csv_path is not None:
            write_csv(data, csv_path)
            if csv_path != "-":
                click.echo(f"wrote {len(data)} runs to {csv_path}", err=True)
        if parquet_path is not None:
            _write_parquet(data, parquet_path)
            click.echo(f"wrote {len(data)} runs to {parquet_path}", err=True)
        if as_json:
            click.echo(to_json(data))
        elif csv_path is None and parquet_path is None:
            _print_tables(store, experiment)


def _write_parquet(
    data: list[dict[str, Any]], path: str, cols: Sequence[str] | None = None
) -> None:
    import importlib

    from greenflow.errors import GreenFlowError
    from greenflow.store.export import columns

    try:
        pandas = importlib.import_module("pandas")
        importlib.import_module("pyarrow")
    except ImportError as exc:
        msg = f"--parquet needs pandas and pyarrow ({exc.name} is not installed); pip install pandas pyarrow"
        raise GreenFlowError(msg) from None
    frame = pandas.DataFrame.from_records(data, columns=list(cols or columns(data)))
    frame.to_parquet(path, index=False)


def _print_tables(store: Any, experiment: str | None) -> None:
    from rich.console import Console
    from rich.table import Table

    from greenflow.store import RunStatus

    console = Console()
    experiments = store.experiments()
    if experiment is not None:
        experiments = [e for e in experiments if e.name == experiment]
    if not experiments:
        console.print(f"no experiments stored in {store.path.parent} yet")
        return
    # Also the order of the counts in each table's title: outcomes first.
    colours = {
        RunStatus.FINISHED: "green",
        RunStatus.FAILED: "red",
        RunStatus.ABORTED: "yellow",
        RunStatus.RUNNING: "cyan",
        RunStatus.PENDING: "dim",
    }
    for exp in experiments:
        runs = store.get_runs(exp.id)
        counts = {s: sum(r.status is s for r in runs) for s in colours}
        summary = ", ".join(f"{n} {s.value}" for s, n in counts.items() if n)
        table = Table(
            title=f"{exp.name}: {len(runs)} runs ({summary or 'none'})", title_justify="left"
        )
        keys = list(dict.fromkeys(k for r in runs for k in r.params))
        found = {r.run_id: store.result(r.run_id) for r in runs}
        # One unit for the whole experiment (the usual case) goes into the headers, so
        # the cells stay numbers; otherwise each cell says its unit.
        unit_names = {res.unit for res in found.values() if res is not None}
        unit = unit_names.pop() if len(unit_names) == 1 else None
        table.add_column("#", justify="right")
        table.add_column("rep", justify="right")
        for key in keys:
            table.add_column(key)
        table.add_column("status")
        # Headers with spaces, so that a narrow terminal wraps them instead of cropping.
        table.add_column(f"{unit}s" if unit else "units", justify="right")
        table.add_column("rate /s", justify="right")
        table.add_column("energy J", justify="right")
        table.add_column(f"J per {unit}" if unit else "J per unit", justify="right")
        table.add_column("method")
        problems: list[str] = []
        for run in runs:
            result = found[run.run_id]
            energy, method = host_energy(store.metrics(run.run_id))
            units = result.units if result is not None else math.nan
            table.add_row(
                str(run.order),
                str(run.repetition),
                *(_cell(run.params.get(k)) for k in keys),
                f"[{colours[run.status]}]{run.status.value}[/]",
                "" if result is None else _num(units) + ("" if unit else f" {result.unit}"),
                _num(result.achieved_rate) if result is not None else "",
                _num(energy, ",.1f"),
                _num(energy / units, ".3g") if units > 0 else "",
                method,
            )
            if run.error and run.status is not RunStatus.FINISHED:
                problems.append(f"#{run.order} {run.status.value}: {run.error.splitlines()[0]}")
        console.print(table)
        for line in problems:
            console.print(line, markup=False, highlight=False)


def _summary(
    store: Any,
    experiment: str | None,
    as_json: bool,
    csv_path: str | None,
    parquet_path: str | None,
) -> None:
    import sys

    from greenflow.stats import summarize, to_json, to_rows

    names = [experiment] if experiment is not None else [e.name for e in store.experiments()]
    points = [p for name in names for p in summarize(store, name)]
    if csv_path is not None or parquet_path is not None:
        data = to_rows(points)
        cols = list(data[0]) if data else []
        if csv_path is not None:
            if csv_path == "-":
                _write_rows_csv(data, cols, sys.stdout)
            else:
                with open(csv_path, "w", newline="", encoding="utf-8") as f:
                    _write_rows_csv(data, cols, f)
            if csv_path != "-":
                click.echo(f"wrote {len(data)} points to {csv_path}", err=True)
        if parquet_path is not None:
            _write_parquet(data, parquet_path, cols)
            click.echo(f"wrote {len(data)} points to {parquet_path}", err=True)
    if as_json:
        click.echo(to_json(points))
    elif csv_path is None and parquet_path is None:
        _print_summary(store, names, points)


def _write_rows_csv(data: Sequence[dict[str, Any]], cols: Sequence[str], f: IO[str]) -> None:
    import csv

    writer = csv.DictWriter(f, fieldnames=list(cols), lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: "" if v is None else v for k, v in row.items()} for row in data)


def _print_summary(store: Any, names: Sequence[str], points: Sequence[PointSummary]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not names:
        console.print(f"no experiments stored in {store.path.parent} yet")
        return
    for name in names:
        mine = [p for p in points if p.experiment == name]
        counts = ", ".join(
            f"{k} {what}"
            for k, what in (
                (sum(p.n for p in mine), "finished"),
                (sum(p.n_failed for p in mine), "failed"),
                (sum(p.n_aborted for p in mine), "aborted"),
            )
            if k or what == "finished"
        )
        table = Table(
            title=f"{name}: {len(mine)} points ({counts}); mean ± 95 % CI",
            title_justify="left",
        )
        keys = list(dict.fromkeys(k for p in mine for k in p.params))
        units = {p.unit for p in mine if p.unit}
        unit = units.pop() if len(units) == 1 else "unit"
        for key in keys:
            table.add_column(key)
        table.add_column("n", justify="right")
        table.add_column("energy J", justify="right")
        table.add_column(f"J per {unit}", justify="right")
        table.add_column(f"dynamic J per {unit}", justify="right")
        table.add_column("rate /s", justify="right")
        table.add_column("p99 ms", justify="right")
        table.add_column("method")
        no_baseline = False
        for point in mine:
            n = f"{point.n}" + "".join(
                f" [{colour}]+{k} {what}[/]"
                for k, what, colour in (
                    (point.n_failed, "failed", "red"),
                    (point.n_aborted, "aborted", "yellow"),
                )
                if k
            )
            lines = _energy_lines(point)
            for i, (method, energy, j_unit, dynamic) in enumerate(lines):
                first = i == 0
                no_baseline = no_baseline or (j_unit is not None and dynamic is None)
                table.add_row(
                    *(_cell(point.params.get(k)) if first else "" for k in keys),
                    n if first else "",
                    _pm(energy),
                    _pm(j_unit),
                    _pm(dynamic),
                    _pm(point.stats.get("achieved_rate")) if first else "",
                    _pm(point.stats.get("latency_ms.p99")) if first else "",
                    method,
                )
        console.print(table)
        if no_baseline:
            console.print(
                "dynamic J: empty where no idle baseline was measured ([experiment] baseline)",
                markup=False,
                highlight=False,
            )


def _energy_lines(
    point: PointSummary,
) -> list[tuple[str, Stat | None, Stat | None, Stat | None]]:
    """(method, host energy, J per unit, dynamic J per unit) per energy method of a point;
    one line per method, since figures of different methods are never mixed."""
    from greenflow.stats import find

    host = {"scope": "host"}
    per_unit = next(
        (
            column.split("[", 1)[0]
            for column in point.stats
            if column.startswith("energy_per_") and not column.startswith("energy_per_mib_")
        ),
        None,
    )
    plain = find(point, "energy_joules", host)
    methods = sorted(
        {
            stat.method
            for column, stat in point.stats.items()
            if column.startswith("energy_joules[")
            and find(point, "energy_joules", host, stat.method) is stat
        },
        # The plain column's (preferred) method first, as summarize() ranks them.
        key=lambda m: (plain is None or m != plain.method, m),
    )
    lines = []
    for method in methods:
        j_unit = dynamic = None
        if per_unit is not None:
            j_unit = find(point, per_unit, host, method)
            dynamic = find(point, f"active_{per_unit}", host, method)
        lines.append((method, find(point, "energy_joules", host, method), j_unit, dynamic))
    return lines or [("", None, None, None)]


def _pm(stat: Stat | None) -> str:
    """``mean ± half-width``, the half-width to two significant digits and the mean to
    the same decimal place; just the mean when n = 1."""
    if stat is None:
        return ""
    half = stat.half_width
    if half is None or half == 0 or not math.isfinite(half):
        return _num(stat.mean, ",.4g") + ("" if half is None else " ± 0")
    decimals = 1 - math.floor(math.log10(half))
    if decimals > 6:  # tiny figures read better in exponent notation
        return f"{stat.mean:.3g} ± {half:.2g}"
    decimals = max(decimals, 0)
    return f"{stat.mean:,.{decimals}f} ± {half:,.{decimals}f}"


def host_energy(metrics: Sequence[Any]) -> tuple[float, str]:
    """Host energy of one run and its method: the total if stored, else the per-host sum.

    When several methods measured the hosts (RAPL and Kwollect, say), the first stored
    is shown, never a sum across methods.
    """
    found = [
        m for m in metrics if m.name == ENERGY_METRIC and m.labels.get("scope") == ENERGY_SCOPE
    ]
    if not found:
        return math.nan, ""
    method = found[0].method
    same = [m for m in found if m.method == method]
    total = next((m for m in same if "host" not in m.labels), None)
    if total is not None:
        return total.value, method
    per_host = {m.labels["host"]: m.value for m in same}
    return math.fsum(per_host.values()), method


def _num(value: float | None, spec: str = ",.6g") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if spec == ",.6g" and float(value).is_integer():
        return f"{value:,.0f}"
    return format(value, spec)


def _cell(value: Any) -> str:
    return "" if value is None else str(value)
