"""Plugins resolve the relative file names a plan gives them against the plan's directory
(``DeployContext.plan_path``), whatever the current directory: an inventory or a key next to
the plan is found when ``greenflow run`` starts elsewhere.

A real runner on the local platform with the ``command`` workload; the platform is the
``local`` platform's class, which records the context it was acquired with."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import pytest

from greenflow.api import DeployContext, Inventory
from greenflow.builtin.local import LocalPlatform
from greenflow.plan import expand, load_plan
from greenflow.runner import Runner
from greenflow.store import Store

SEEN: list[DeployContext] = []


class RecordingPlatform(LocalPlatform):
    def acquire(self, ctx: DeployContext) -> Inventory:
        SEEN.append(ctx)
        return super().acquire(ctx)


PLAN = """\
[experiment]
name = "plan-dir"
baseline = "0s"
cooldown = "0s"
output = "{out}"

[platform]
type = "local"

[workload]
type = "command"
command = "true"
"""


def test_a_platform_sees_the_plan_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plans = tmp_path / "plans"
    plans.mkdir()
    path = plans / "plan.toml"
    path.write_text(PLAN.format(out=tmp_path / "out"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    plan = load_plan(Path("../plans/plan.toml"))
    expansion = expand(plan)
    plan = attrs.evolve(plan, platform=attrs.evolve(plan.platform, cls=RecordingPlatform))
    SEEN.clear()
    with Store.open(plan.output_dir) as store:
        outcome: Any = Runner(plan, expansion, store).run()
    assert len(outcome.finished) == 1, outcome
    assert [ctx.plan_path for ctx in SEEN] == [path.resolve()]
