"""``greenflow down [NAME]``."""

from __future__ import annotations

from pathlib import Path

import click

from greenflow.cli._app import App, error_boundary


@click.command()
@click.argument("target", required=False)
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    default=None,
    help="Results directory (default: the plan's, or ./greenflow-output).",
)
@click.pass_obj
def down(app: App, target: str | None, output: Path | None) -> None:
    """Release what an experiment left up (after `up`, a crash or a second Ctrl-C).

    TARGET is a plan file or an experiment name; without it, every experiment in the
    results directory is brought down.
    """
    from greenflow.runner import down as bring_down
    from greenflow.store import Store

    with error_boundary(app):
        names: list[str] | None = None
        if target and Path(target).is_file():
            from greenflow.plan import load_plan

            plan = load_plan(target)
            names = [plan.experiment.name]
            output = output or plan.output_dir
        elif target:
            names = [target]
        output = output or Path("greenflow-output")
        if not (output / "greenflow.sqlite").exists():
            click.echo(f"nothing to bring down: no results store in {output}")
            return
        with Store.open(output) as store:
            for name in names or [e.name for e in store.experiments()]:
                released = bring_down(store, name)
                if released:
                    click.echo(f"{name}: released " + ", ".join(released))
                else:
                    click.echo(f"{name}: nothing was up")
