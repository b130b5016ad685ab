"""``greenflow validate PLAN``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from greenflow.cli._app import App, error_boundary


def _check_platform(p: Any, expansion: Any) -> None:
    """Roles the services need against what the platform has, then each service's own
    check of the platform: read-only (a Kubernetes platform lists its nodes); a platform
    that cannot be reached only gets a warning."""
    from greenflow.api import Preflight
    from greenflow.errors import GreenFlowError, PlanError
    from greenflow.runner import required_roles, service_configs

    platform = p.platform.cls(expansion.platform_config)
    if isinstance(platform, Preflight):
        problems = list(platform.preflight(p.path.resolve()))
        if problems:
            raise PlanError(
                f"{p.path.name} [platform]: not ready:\n"
                + "\n".join(f"  {line}" for line in problems)
                + "\n(greenflow validate --offline skips these checks)"
            )
    try:
        reason = platform.check_roles(required_roles(p, expansion))
    except (GreenFlowError, OSError) as exc:
        from greenflow.store.redact import redact_text

        # A platform's error may quote its API's URL, token and all.
        click.echo(
            f"warning: could not check the platform's roles: {redact_text(str(exc))}", err=True
        )
        return
    if reason:
        raise PlanError(f"{p.path.name} [platform]: {reason}")
    for section, config in service_configs(p, expansion):
        reason = section.cls.check_platform(config, platform)
        if reason:
            raise PlanError(f"{section.where}: {reason}")


@click.command()
@click.argument("plan", type=click.Path(path_type=Path))
@click.option(
    "--offline",
    is_flag=True,
    help="Don't reach the platform (SSH to its hosts, a cluster's node list, an API) to "
    "check hosts, roles and services.",
)
@click.pass_obj
def validate(app: App, plan: Path, offline: bool) -> None:
    """Check a plan without changing anything.

    Besides the plan itself, the platform checks that what the plan names is there (hosts
    answer over SSH, sudo works, an API accepts the credentials), the roles its services
    need are checked against it, and each service checks what it needs there (a local
    binary), all read-only (a Kubernetes platform lists its nodes); --offline skips that."""
    from greenflow.plan import expand, load_plan
    from greenflow.runner import check_capabilities

    with error_boundary(app):
        p = load_plan(plan)
        check_capabilities(p)
        expansion = expand(p)
        if not offline:
            _check_platform(p, expansion)
        axes = ", ".join(f"{a.name} ({len(a.values)})" for a in expansion.axes) or "none"
        if expansion.protocol is not None:
            click.echo(
                f"{plan}: ok — adaptive ({p.protocol.type if p.protocol else ''}) over "
                f"{len(expansion.bases)} point(s) of the other axes (sweep axes: {axes})"
            )
            return
        click.echo(
            f"{plan}: ok — {len(expansion.runs)} runs "
            f"({p.experiment.repetitions} repetition(s); sweep axes: {axes})"
        )
