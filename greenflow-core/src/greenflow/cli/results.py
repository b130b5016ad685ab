"""``greenflow results [OUTPUT_DIR]``: stored runs as a table, JSON, CSV or Parquet."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import click

from greenflow.cli._app import App, error_boundary

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from greenflow.api import WorkloadResult
    from greenflow.report.conclusions import Conclusion
    from greenflow.report.data import Group, RunFigures
    from greenflow.stats import PointSummary, Stat
    from greenflow.store import Store
    from greenflow.store.db import BaselineRow, ExperimentRow

# The per-run total the table shows: host energy over MEASURE (docs/results.md).
ENERGY_METRIC = "energy_joules"
ENERGY_SCOPE = "host"


@click.command()
@click.argument(
    "output_dir", required=False, default="greenflow-output", type=click.Path(path_type=Path)
)
@click.option("-e", "--experiment", metavar="NAME", help="Only this experiment (default: all).")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print a JSON array of run objects (with --summary: of point objects) to stdout.",
)
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
    in MEASURE, the achieved rate, then the system under test's own figures first:
    each service's J per unit and its share of the host's energy; then the host's J
    per unit, the load generator's share, host energy over MEASURE (summed over hosts)
    in J and how the energy was obtained (rapl, model:..., ...). Under the table: the
    idle power per host (opening baseline with its spread and whether it settled;
    closing baseline and drift; "(model)" when a model's input) and the warnings,
    for the experiment and per run. Exports have every column; docs/results.md names
    them.

    An experiment run with a max-throughput or proportionality protocol also gets its
    conclusion: per point of the other axes, the maximum sustained load with the 95 %
    interval of its confirmation runs' achieved rate, then the saturation curve (each
    probe's rate, p99, J per unit and why it was not sustained). With --json, each
    probe's run object carries its part of the protocol's record under "protocol".

    With --summary, one line per parameter point instead: how many repetitions
    finished (n) and failed, and the mean ± half-width of the 95 % confidence interval
    of the same figures, dynamic (idle-subtracted) J per unit, the achieved rate and
    p99 latency, per measurement method.
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
            click.echo(to_json(_with_protocol(store, data)))
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


def _print_tables(store: Store, experiment: str | None) -> None:
    from rich.table import Table

    from greenflow.report.data import run_figures
    from greenflow.store import RunStatus

    console = _console()
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
        figures = {r.run_id: run_figures(store, r) for r in runs}
        # One unit for the whole experiment (the usual case) goes into the headers, so
        # the cells stay numbers; otherwise each cell says its unit.
        unit_names = {f.result.unit for f in figures.values() if f.result is not None}
        unit = unit_names.pop() if len(unit_names) == 1 else None
        per = unit or "unit"
        services, loadgens = _group_names(figures.values())
        table.add_column("#", justify="right")
        table.add_column("rep", justify="right")
        for key in keys:
            table.add_column(key)
        table.add_column("status")
        # Headers with spaces, so that a narrow terminal wraps them instead of cropping.
        table.add_column(f"{unit}s" if unit else "units", justify="right")
        table.add_column("rate /s", justify="right")
        _group_columns(table, services, loadgens, per)
        table.add_column("energy J", justify="right")
        table.add_column("method")
        slos = _slo_names(f.result for f in figures.values())
        for name in slos:
            table.add_column(f"SLO {name}")
        problems: list[str] = []
        for run in runs:
            fig = figures[run.run_id]
            result = fig.result
            energy, method = host_energy(store.metrics(run.run_id))
            units = result.units if result is not None else math.nan
            groups = fig.groups if fig.energy is not None and fig.energy.method == method else {}
            table.add_row(
                str(run.order),
                str(run.repetition),
                *(_cell(run.params.get(k)) for k in keys),
                f"[{colours[run.status]}]{run.status.value}[/]",
                "" if result is None else _num(units) + ("" if unit else f" {result.unit}"),
                _num(result.achieved_rate) if result is not None else "",
                *(
                    cell
                    for name in services
                    for cell in (
                        _num(_group_per_unit(groups.get(name)), ".3g"),
                        _percent(groups[name].share if name in groups else None),
                    )
                ),
                _num(energy / units, ".3g") if units > 0 else "",
                *(_percent(groups[n].share if n in groups else None) for n in loadgens),
                _num(energy, ",.1f"),
                method,
                *(_slo_cell(result, name) for name in slos),
            )
            if run.error and run.status is not RunStatus.FINISHED:
                problems.append(f"#{run.order} {run.status.value}: {run.error.splitlines()[0]}")
        console.print(table)
        for line in problems:
            console.print(line, markup=False, highlight=False)
        _print_protocol(console, exp, figures, unit)
        _print_idle(console, store, exp.id, runs)
        _print_wall_checks(console, store, runs)
        _print_warnings(console, store, exp.id, {r.run_id: r.order for r in runs})


#: A workload's verdict on a service-level objective: ``slo_<name>_met`` (1 or 0) in its
#: result's metrics (Theodolite's lag trend: ``slo_lag_trend_met``).
_SLO = re.compile(r"slo_(.+)_met")


def _slo_names(results: Iterable[WorkloadResult | None]) -> list[str]:
    """The SLOs any run's workload judged, in order of first appearance."""
    names: dict[str, None] = {}
    for result in results:
        for key in result.metrics if result is not None else ():
            if m := _SLO.fullmatch(key):
                names.setdefault(m.group(1))
    return list(names)


def _slo_cell(result: WorkloadResult | None, name: str) -> str:
    value = result.metrics.get(f"slo_{name}_met") if result is not None else None
    if value is None:
        return ""
    return "[green]met[/]" if value >= 1 else "[red]missed[/]"


def _with_protocol(store: Store, data: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows with a ``protocol`` key when an experiment has a protocol record: for a run
    that was a probe, the protocol's type, its point's conclusion and the run's own point
    of the saturation curve as stored (docs/results.md); None for other runs."""
    from greenflow.report.conclusions import by_run

    probes: dict[str, dict[str, Any]] = {}
    for exp in store.experiments():
        probes.update(by_run(exp.provenance))
    if not probes:
        return data
    return [{**row, "protocol": probes.get(row["run_id"])} for row in data]


def _print_protocol(
    console: Console, exp: ExperimentRow, figures: Mapping[str, RunFigures], unit: str | None
) -> None:
    """A protocol's conclusions: the concluded maximum per point of the other axes with
    its confirmation interval, then each point's saturation curve (docs/results.md)."""
    from rich.table import Table

    from greenflow.report import conclusions as cc

    found = cc.read_conclusions(exp.provenance)
    if not found:
        return
    rate = f"{unit}s/s" if unit else "/s"
    keys = list(dict.fromkeys(k for c in found for k in c.base))
    axis = next((c.axis for c in found if c.axis), None)
    about = ", ".join([found[0].protocol, *([f"axis {axis}"] if axis else []), rate])
    table = Table(title=f"{exp.name}: max throughput ({about})", title_justify="left")
    for key in keys:
        table.add_column(key)
    proportionality = found[0].protocol == "proportionality"
    table.add_column("maximum (100 %)" if proportionality else "max sustained")
    table.add_column("confirmation achieved: mean (95 % CI)", justify="right")
    table.add_column("confirmations", justify="right")
    table.add_column("first unsustained", justify="right")
    table.add_column("p99 bound")
    for c in found:
        table.add_row(
            *(_cell(c.base.get(k)) for k in keys),
            cc.maximum_text(c),
            cc.interval_text(c.confirmation),
            cc.runs_text(c),
            cc.amount(c.first_unsustained),
            cc.bound_text(c),
        )
    console.print(table)
    criterion = next((cc.criterion_text(c) for c in found if c.criterion), "")
    levels = next((c.levels for c in found if c.levels), ())
    lines = [
        *(
            [f"sustained: {criterion} (docs/plan-reference.md, What sustained means)"]
            if criterion
            else []
        ),
        *([f"levels: {', '.join(f'{v:g}' for v in levels)} % of the maximum"] if levels else []),
    ]
    for line in lines:
        console.print(line, markup=False, highlight=False)
    for c in found:
        _print_curve(console, c, figures, unit)


def _print_curve(
    console: Console, c: Conclusion, figures: Mapping[str, RunFigures], unit: str | None
) -> None:
    from rich.table import Table

    from greenflow.report import conclusions as cc

    if not c.curve:
        return
    label = cc.base_label(c.base)
    table = Table(
        title=f"saturation curve{' of ' + label if label else ''} ({len(c.curve)} runs)",
        title_justify="left",
    )
    energy = [
        (p.host_energy(figures.get(p.run_id or "")), p.service_energy(figures.get(p.run_id or "")))
        for p in c.curve
    ]
    services = any(s is not None for _, s in energy)
    latency = any(p.p99_ms is not None for p in c.curve)
    per = unit or "unit"
    for head in ("asked", "rep"):
        table.add_column(head, justify="right")
    table.add_column("role")
    table.add_column(f"achieved {per}s/s", justify="right")
    table.add_column("÷ asked", justify="right")
    if latency:
        table.add_column("p99 ms", justify="right")
    table.add_column(f"host J per {per}", justify="right")
    if services:
        table.add_column(f"services J per {per}", justify="right")
    table.add_column("sustained")
    table.add_column("why not")
    for p, (host, service) in zip(c.curve, energy, strict=True):
        table.add_row(
            cc.amount(p.value),
            "" if p.repetition is None else str(p.repetition),
            p.role,
            cc.amount(p.achieved),
            cc.ratio_text(p.ratio),
            *([_num(p.p99_ms, ".3g")] if latency else []),
            cc.energy_text(host),
            *([cc.energy_text(service)] if services else []),
            "[green]yes[/]" if p.sustained else "[red]no[/]",
            cc.reasons_text(p),
        )
    console.print(table)


def _group_names(figures: Iterable[RunFigures]) -> tuple[list[str], list[str]]:
    """The services and load generators that energy was attributed to, in display order."""
    from greenflow.report.data import order_groups

    scopes = {n: g.scope for f in figures if f.finished for n, g in f.groups.items()}
    names = order_groups(scopes)
    return (
        [n for n in names if scopes[n] == "service"],
        [n for n in names if scopes[n] == "loadgen"],
    )


def _group_columns(
    table: Table,
    services: Sequence[str],
    loadgens: Sequence[str],
    per: str,
    dynamic: bool = False,
) -> None:
    """The system under test's J per unit and share first, then the host's J per unit
    (and its dynamic J per unit), then the load generators' shares (docs/results.md)."""
    for name in services:
        label = name.split(":", 1)[-1]
        table.add_column(f"{label} J per {per}", justify="right")
        table.add_column(f"{label} % of host", justify="right")
    table.add_column(f"host J per {per}", justify="right")
    if dynamic:
        table.add_column(f"dynamic J per {per}", justify="right")
    for name in loadgens:
        label = "loadgen" if len(loadgens) == 1 else f"loadgen {name.split(':', 1)[-1]}"
        table.add_column(f"{label} % of host", justify="right")


def _group_per_unit(group: Group | None) -> float | None:
    return group.per_unit if group is not None else None


def _percent(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return ""
    return f"{100 * value:.1f} %"


def _print_idle(console: Console, store: Store, exp_id: int, runs: Sequence[Any]) -> None:
    """Idle power per host and deployment: the opening baseline with its spread and
    whether it settled, the closing one and the drift; "(model)" for a model's input."""
    from rich.table import Table

    from greenflow.report.data import idle_power

    idle = idle_power(store.baselines(exp_id), runs)
    if not idle:
        if any(r.status.value == "finished" for r in runs):
            console.print(
                "idle power: no baseline stored ([experiment] baseline = 0, or it failed)",
                markup=False,
                highlight=False,
            )
        return
    deployments = list(dict.fromkeys(i.group for i in idle if i.group))
    table = Table(
        title="idle power per host (baselines: services up, no load; mean ± sd of the "
        "power between readings)",
        title_justify="left",
    )
    table.add_column("host")
    table.add_column("deployment")
    table.add_column("opening W", justify="right")
    table.add_column("settled")
    table.add_column("closing W", justify="right")
    table.add_column("drift", justify="right")
    table.add_column("method")
    for i in idle:
        if i.group:
            number = deployments.index(i.group) + 1
            first = f", from #{i.first_order}" if i.first_order is not None else ""
            where = f"{number} of {len(deployments)} ({i.runs} runs{first})"
        else:
            where = "none (services down)"
        opening = i.opening or i.services_down
        drift = i.drift
        table.add_row(
            i.host,
            where,
            _watts(opening),
            _settled(opening),
            _watts(i.closing),
            "" if drift is None else f"{drift:+.3g} W ({100 * (i.drift_ratio or 0.0):+.1f} %)",
            i.method + (" (model)" if i.modelled else ""),
        )
    console.print(table)
    if any(i.modelled for i in idle):
        console.print(
            "(model): idle power is the model's idle_watts input plus the little CPU an idle "
            "system uses, not a measurement (docs/measurement.md, The model)",
            markup=False,
            highlight=False,
        )


def _print_wall_checks(console: Console, store: Store, runs: Sequence[Any]) -> None:
    """Per run and host, the energy another instrument saw ÷ the energy at the plug."""
    from rich.table import Table

    from greenflow.report.data import wall_checks

    checks = wall_checks(store, runs)
    if not checks:
        return
    table = Table(
        title="instruments against the wall (energy over MEASURE ÷ the energy at the plug)",
        title_justify="left",
    )
    for head in ("#", "host", "instrument", "wall", "÷ wall"):
        table.add_column(head, justify="right" if head in ("#", "÷ wall") else "left")
    for c in checks:
        table.add_row(str(c.order), c.host, c.instrument, c.wall, f"{c.ratio:.3f}")
    console.print(table)


def _watts(b: BaselineRow | None) -> str:
    if b is None:
        return ""
    return f"{b.mean_watts:.3f} ± {b.stdev_watts:.3f} (n={b.intervals})"


def _settled(b: BaselineRow | None) -> str:
    if b is None or b.settled is None:
        return ""
    waited = f" after {b.settle_s:.0f} s" if b.settle_s is not None else ""
    return f"yes{waited}" if b.settled else f"no (waited {b.settle_s or 0:.0f} s)"


def _print_warnings(console: Console, store: Store, exp_id: int, orders: Mapping[str, int]) -> None:
    """The experiment's warnings, then each run's (by its # in the table)."""
    found = store.warnings(exp_id)
    if not found:
        return
    console.print(f"warnings ({len(found)}):", markup=False, highlight=False)
    # The experiment's first, then the runs' in run order.
    found = sorted(found, key=lambda w: (w.run_id != "", orders.get(w.run_id, -1)))
    for w in found:
        where = ""
        if w.run_id:
            order = orders.get(w.run_id)
            where = f"#{order} " if order is not None else f"run {w.run_id} "
        console.print(f"  {where}{w.code}: {w.message}", markup=False, highlight=False)


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


def _print_summary(store: Store, names: Sequence[str], points: Sequence[PointSummary]) -> None:
    from rich.table import Table

    from greenflow.report.data import run_figures

    console = _console()
    if not names:
        console.print(f"no experiments stored in {store.path.parent} yet")
        return
    for name in names:
        mine = [p for p in points if p.experiment == name]
        exp = store.get_experiment(name)
        runs = store.get_runs(exp.id) if exp is not None else []
        figures = [run_figures(store, r) for r in runs]
        by_point: dict[str, list[RunFigures]] = {}
        for f in figures:
            if f.finished:
                by_point.setdefault(_params_key(f.run.params), []).append(f)
        services, loadgens = _group_names(figures)
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
        _group_columns(table, services, loadgens, unit, dynamic=True)
        table.add_column("energy J", justify="right")
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
            runs_here = by_point.get(_params_key(point.params), [])
            for i, (method, energy, j_unit, dynamic) in enumerate(lines):
                first = i == 0
                no_baseline = no_baseline or (j_unit is not None and dynamic is None)
                shares = _share_stats(runs_here, method)
                table.add_row(
                    *(_cell(point.params.get(k)) if first else "" for k in keys),
                    n if first else "",
                    *(
                        cell
                        for g in services
                        for cell in (
                            _pm(_group_stat(point, g, method)),
                            _pm_percent(shares.get(g)),
                        )
                    ),
                    _pm(j_unit),
                    _pm(dynamic),
                    *(_pm_percent(shares.get(g)) for g in loadgens),
                    _pm(energy),
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
        if exp is not None:
            _print_protocol(
                console, exp, {f.run.run_id: f for f in figures}, unit if unit != "unit" else None
            )
            _print_idle(console, store, exp.id, runs)
            _print_wall_checks(console, store, runs)
            _print_warnings(console, store, exp.id, {r.run_id: r.order for r in runs})


def _params_key(params: Mapping[str, Any]) -> str:
    # How greenflow.stats groups runs into points: by all their parameters.
    import json

    return json.dumps(params, sort_keys=True, default=str)


def _group_stat(point: PointSummary, group: str, method: str) -> Stat | None:
    """A group's J per unit (total over hosts), by the attribution of ``method``."""
    from greenflow.report.data import SHARE_SUFFIX
    from greenflow.stats import find

    per_unit = _per_unit_name(point)
    if per_unit is None or not method:
        return None
    scope = group.split(":", 1)[0] if ":" in group else "other"
    labels = {"scope": scope, "group": group} if ":" in group else {"scope": scope}
    return find(point, per_unit, labels, method + SHARE_SUFFIX)


def _share_stats(runs: Sequence[RunFigures], method: str) -> dict[str, Stat]:
    """Each group's share of its hosts' energy, mean ± CI over the point's finished runs
    whose host energy is by ``method``."""
    from greenflow.report.data import describe_finite

    values: dict[str, list[float]] = {}
    shared = ""
    for f in runs:
        if f.energy is None or f.energy.method != method:
            continue
        for name, g in f.groups.items():
            shared = g.method
            if g.share is not None:
                values.setdefault(name, []).append(g.share)
    out = {}
    for name, found in values.items():
        stat = describe_finite(found, shared)
        if stat is not None:
            out[name] = stat
    return out


def _pm_percent(stat: Stat | None) -> str:
    """A share as ``mean ± half-width %``."""
    if stat is None:
        return ""
    half = stat.half_width
    if half is None:
        return f"{100 * stat.mean:.1f} %"
    return f"{100 * stat.mean:.1f} ± {100 * half:.1f} %"


def _per_unit_name(point: PointSummary) -> str | None:
    return next(
        (
            column.split("[", 1)[0]
            for column in point.stats
            if column.startswith("energy_per_") and not column.startswith("energy_per_mib_")
        ),
        None,
    )


def _energy_lines(
    point: PointSummary,
) -> list[tuple[str, Stat | None, Stat | None, Stat | None]]:
    """(method, host energy, J per unit, dynamic J per unit) per energy method of a point;
    one line per method, since figures of different methods are never mixed."""
    from greenflow.stats import find

    host = {"scope": "host"}
    per_unit = _per_unit_name(point)
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


def _console() -> Any:
    """A terminal's own width; elsewhere (a pipe, a file, CI's log) wide enough that no
    table is squeezed into 80 columns and its cells cut to "…"."""
    import sys

    from rich.console import Console

    return Console() if sys.stdout.isatty() else Console(width=400)
