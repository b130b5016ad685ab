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
    from greenflow.runner import output_lock
    from greenflow.store import Store

    with error_boundary(app):
        names: list[str] | None = None
        if target and Path(target).is_file():
            name, plan_output = _name_and_output(Path(target))
            names = [name]
            output = output or plan_output
        elif target:
            names = [target]
        output = output or Path("greenflow-output")
        if not (output / "greenflow.sqlite").exists():
            click.echo(f"nothing to bring down: no results store in {output}")
            return
        with output_lock(output, "down"), Store.open(output) as store:
            for name in names or [e.name for e in store.experiments()]:
                released = bring_down(store, name)
                if released:
                    click.echo(f"{name}: released " + ", ".join(released))
                else:
                    click.echo(f"{name}: nothing was up")


def _name_and_output(plan: Path) -> tuple[str, Path]:
    """The experiment's name and output directory from a plan file, read as plain TOML:
    what was recorded is released from the store alone, so a plan that no longer
    validates (a plugin uninstalled, a key renamed) can still be brought down."""
    import tomllib

    from greenflow.errors import PlanError

    try:
        experiment = tomllib.loads(plan.read_text(encoding="utf-8")).get("experiment", {})
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise PlanError(
            f"{plan}: cannot read it as TOML ({exc}); pass the experiment's name"
        ) from None
    name = experiment.get("name") if isinstance(experiment, dict) else None
    if not isinstance(name, str):
        raise PlanError(f"{plan} [experiment] name: missing; pass the experiment's name instead")
    output = experiment.get("output", "greenflow-output")
    return name, Path(output if isinstance(output, str) else "greenflow-output")
