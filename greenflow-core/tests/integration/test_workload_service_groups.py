"""A workload that runs part of the system under test itself (Theodolite's stream app)
names those processes ``service:<name>``: the runner attributes them as a service, and
only the rest as the load generator; all of them are recorded for ``greenflow down``."""

from __future__ import annotations

from pathlib import Path

from greenflow.api import ProcessGroups
from greenflow.builtin.command import CommandWorkload
from greenflow.plan import expand, load_plan
from greenflow.runner import Runner
from greenflow.store import Store

PLAN = """\
[experiment]
name = "groups"
output = "{out}"

[platform]
type = "local"

[workload]
type = "command"
command = "true"
"""


class TwoGroups(CommandWorkload):
    def processes(self) -> ProcessGroups:
        return {"generator": [101, 102], "service:stream-app": [201], "other": [103]}


def test_service_named_groups_are_services_the_rest_is_load(tmp_path: Path) -> None:
    path = tmp_path / "plan.toml"
    path.write_text(PLAN.format(out=tmp_path / "out"))
    plan = load_plan(path)
    with Store.open(plan.output_dir) as store:
        runner = Runner(plan, expand(plan), store)
        runner.workload = TwoGroups(expand(plan).runs[0].workload_config)
        groups = runner.process_groups()
    assert groups["service:stream-app"] == [201]
    assert sorted(groups["loadgen:command"]) == [101, 102, 103]
    assert set(groups) == {"service:stream-app", "loadgen:command"}
