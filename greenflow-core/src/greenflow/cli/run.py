"""``greenflow run PLAN`` and ``greenflow up PLAN``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from greenflow.cli._app import App, error_boundary


def _print_dry_run(console: Console, expansion: Any, as_json: bool) -> None:
    if expansion.protocol is not None:
        _print_adaptive(console, expansion, as_json)
        return
    runs = expansion.runs
    if as_json:
        out = [
            {
                "order": r.order,
                "run_id": r.run_id,
                "repetition": r.repetition,
                "group": r.group,
                "params": dict(r.params),
            }
            for r in runs
        ]
        click.echo(json.dumps(out, indent=2, default=str))
        return
    table = Table(title=f"{len(runs)} runs in execution order")
    table.add_column("#", justify="right")
    table.add_column("rep", justify="right")
    axes = [a.name for a in expansion.axes]
    for a in axes:
        table.add_column(a)
    table.add_column("run id")
    for r in runs:
        table.add_row(str(r.order), str(r.repetition), *(str(r.params[a]) for a in axes), r.run_id)
    console.print(table)


def _print_cost(console: Console, plan: Any, expansion: Any, as_json: bool) -> None:
    """What the platform says the plan will cost (``greenflow.api.Costed``), on stderr."""
    from greenflow.api import Costed

    platform = plan.platform.cls(expansion.platform_config)
    if isinstance(platform, Costed) and not as_json:
        console.print(f"cost: {escape(platform.cost())}")


def _print_adaptive(console: Console, expansion: Any, as_json: bool) -> None:
    protocol = expansion.protocol
    axes = [a.name for a in expansion.axes]
    bases = [dict(zip(axes, b, strict=True)) for b in expansion.bases]
    first = [s.value for s in protocol.next_steps([], 1)]
    if as_json:
        click.echo(
            json.dumps(
                {
                    "protocol": type(protocol).__name__,
                    "axis": protocol.axis,
                    "first_values": first,
                    "bases": bases,
                },
                default=str,
            )
        )
        return
    console.print(
        f"adaptive: {type(protocol).__name__} sets {protocol.axis or 'nothing'} run "
        f"by run (first: {first}); runs are decided from the results, for each of "
        f"{len(bases)} point(s) of the other axes:"
    )
    for b in bases:
        console.print("  " + (" ".join(f"{k}={v}" for k, v in b.items()) or "(no other axes)"))


def _summary(console: Console, store: Any, exp_id: int, outcome: Any) -> None:
    from greenflow.store.export import rows

    exp = next(e for e in store.experiments() if e.id == exp_id)
    data = [r for r in rows(store, exp.name)]
    table = Table(title=f"experiment {exp.name}: results")
    for col in ("#", "status", "params", "units", "energy J", "J/unit", "method"):
        table.add_column(col)
    for row in data:
        energy = _metric(store, row["run_id"], "energy_joules", "host")
        per_unit = next(
            (
                m
                for m in store.metrics(row["run_id"])
                if m.name.startswith("energy_per_")
                and m.name != "energy_per_mib_joules"
                and m.labels.get("scope") == "host"
            ),
            None,
        )
        params = " ".join(
            f"{k.removeprefix('param.')}={v}" for k, v in row.items() if k.startswith("param.")
        )
        units = row.get("units")
        table.add_row(
            str(row["order"]),
            row["status"],
            params,
            f"{units:g}" if isinstance(units, float | int) else "",
            f"{energy.value:.1f}" if energy else "",
            f"{per_unit.value:.3g}" if per_unit else "",
            energy.method if energy else "",
        )
    console.print(table)
    parts = [
        f"{len(outcome.finished)} finished",
        f"{len(outcome.failed)} failed",
        f"{len(outcome.aborted)} aborted",
        f"{len(outcome.skipped)} already done",
    ]
    console.print(", ".join(parts))


def _metric(store: Any, run_id: str, name: str, scope: str) -> Any:
    for m in store.metrics(run_id):
        if m.name == name and m.labels.get("scope") == scope:
            return m
    return None


def _execute(
    app: App, plan_path: Path, *, dry_run: bool, as_json: bool, fresh: bool, leave_up: bool
) -> None:
    from greenflow.cli.progress import RichObserver
    from greenflow.plan import expand, load_plan
    from greenflow.runner import Runner, check_capabilities, output_lock
    from greenflow.store import Store

    console = Console(stderr=True)
    with error_boundary(app):
        plan = load_plan(plan_path)
        check_capabilities(plan)
        expansion = expand(plan)
        if dry_run:
            _print_dry_run(Console(), expansion, as_json)
            _print_cost(console, plan, expansion, as_json)
            return
        with (
            output_lock(plan.output_dir, "up" if leave_up else "run"),
            Store.open(plan.output_dir) as store,
        ):
            observer = RichObserver(console, enabled=not app.quiet and not app.log_json)
            runner = Runner(plan, expansion, store, observer=observer, fresh=fresh)
            outcome = runner.up() if leave_up else runner.run()
            if leave_up and outcome.left_up:
                console.print(
                    f"[green]{plan.experiment.name} is up[/green]; "
                    f"`greenflow run {plan_path}` reuses it, "
                    f"`greenflow down {plan_path}` ends it."
                )
            if not app.quiet and not leave_up:
                _summary(Console(), store, outcome.experiment_id, outcome)
            console.print(f"results: {plan.output_dir / 'greenflow.sqlite'}")
        if outcome.stopped:
            console.print(
                f"[yellow]stopped[/yellow]: {escape(outcome.stopped)}\nFinished runs are kept; "
                "run the same command again to resume."
            )
            sys.exit(3)
        if outcome.interrupted:
            console.print(
                "[yellow]interrupted[/yellow]: finished runs are kept; run the same "
                "command again to resume."
            )
            sys.exit(130)
        if outcome.failed:
            sys.exit(1)


@click.command()
@click.argument("plan", type=click.Path(path_type=Path))
@click.option("--dry-run", is_flag=True, help="Print the runs in execution order and exit.")
@click.option("--json", "as_json", is_flag=True, help="With --dry-run: print JSON.")
@click.option("--fresh", is_flag=True, help="Forget finished runs and start over.")
@click.pass_obj
def run(app: App, plan: Path, dry_run: bool, as_json: bool, fresh: bool) -> None:
    """Run the whole experiment; re-running resumes where it stopped."""
    _execute(app, plan, dry_run=dry_run, as_json=as_json, fresh=fresh, leave_up=False)


@click.command()
@click.argument("plan", type=click.Path(path_type=Path))
@click.pass_obj
def up(app: App, plan: Path) -> None:
    """Provision and deploy, and leave it up for later `run`s (`down` ends it)."""
    _execute(app, plan, dry_run=False, as_json=False, fresh=False, leave_up=True)
