"""``greenflow validate PLAN``."""

from __future__ import annotations

from pathlib import Path

import click

from greenflow.cli._app import App, error_boundary


@click.command()
@click.argument("plan", type=click.Path(path_type=Path))
@click.pass_obj
def validate(app: App, plan: Path) -> None:
    """Check a plan without touching anything."""
    from greenflow.plan import expand, load_plan
    from greenflow.runner import check_capabilities

    with error_boundary(app):
        p = load_plan(plan)
        check_capabilities(p)
        expansion = expand(p)
        axes = ", ".join(f"{a.name} ({len(a.values)})" for a in expansion.axes) or "none"
        if expansion.protocol is not None:
            click.echo(f"{plan}: ok — adaptive ({p.protocol.type if p.protocol else ''}) over "
                       f"{len(expansion.bases)} point(s) of the other axes (sweep axes: {axes})")
            return
        click.echo(f"{plan}: ok — {len(expansion.runs)} runs "
                   f"({p.experiment.repetitions} repetition(s); sweep axes: {axes})")
