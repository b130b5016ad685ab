"""``greenflow shell PLAN``: a Python shell with the plan's objects in scope, for manual steps."""

from __future__ import annotations

import code
from pathlib import Path
from typing import Any

import click

from greenflow.cli._app import App, error_boundary

BANNER = """GreenFlow shell for {name}
  plan, expansion   the plan and its runs (expansion.runs, expansion.groups())
  store             the results store ({output})
  platform          the plan's platform (not acquired: platform.acquire(ctx) to use it)
  services          services left up by `greenflow up`, attached by name (empty if none)
  results           greenflow.results (results.load(output), results.summary(output))
"""


@click.command()
@click.argument("plan", type=click.Path(path_type=Path))
@click.option("-c", "command", default=None, help="Run this Python code instead of a shell.")
@click.pass_obj
def shell(app: App, plan: Path, command: str | None) -> None:
    """A Python shell with the plan's platform, services and store in scope."""
    from greenflow import results
    from greenflow.plan import expand, load_plan
    from greenflow.plan.converter import converter
    from greenflow.store import Store

    with error_boundary(app):
        p = load_plan(plan)
        expansion = expand(p)
        store = Store.open(p.output_dir)
        services: dict[str, Any] = {}
        exp = store.get_experiment(p.experiment.name)
        for entry in store.live_state(exp.id) if exp is not None else []:
            if entry["kind"] != "service":
                continue
            section = next((s for s in p.services if s.name == entry["name"]), None)
            if section is None:
                continue
            config = converter.structure(entry["config"], section.cls.Config)
            svc = section.cls.attach(entry["name"], config, entry["state"])
            if svc is not None:
                services[entry["name"]] = svc
        scope = {
            "plan": p,
            "expansion": expansion,
            "store": store,
            "results": results,
            "platform": p.platform.cls(expansion.platform_config),
            "services": services,
            "output": p.output_dir,
        }
        try:
            if command is not None:
                # The user's own code, as `python -c` runs it.
                exec(compile(command, "<greenflow shell -c>", "exec"), scope)
            else:
                code.interact(
                    banner=BANNER.format(name=p.experiment.name, output=p.output_dir),
                    local=scope,
                    exitmsg="",
                )
        finally:
            store.close()
