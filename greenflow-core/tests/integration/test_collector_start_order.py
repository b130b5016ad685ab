"""When the runner starts collectors: before deploying, except those whose source the
plan's own services may provide (``start_after_deploy``, e.g. the scaphandre collector
reading a Prometheus deployed on the cluster), which start once the first deployment is
ready and before the idle baseline, so that the baseline is measured by them too.

A real ``greenflow`` runner on the local platform with the ``command`` workload; the two
collectors are the ``model`` collector's class with the flag set either way, so that each
records when it was started."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, ClassVar

import attrs

from greenflow.api import CollectorContext
from greenflow.builtin.collectors import ModelCollector
from greenflow.plan import expand, load_plan
from greenflow.runner import Runner
from greenflow.store import Store

STARTED: dict[str, float] = {}


class EarlyCollector(ModelCollector):
    start_after_deploy: ClassVar[bool] = False

    def start(self, ctx: CollectorContext) -> None:
        STARTED[self.name] = time.time()
        super().start(ctx)


class AfterDeployCollector(EarlyCollector):
    start_after_deploy: ClassVar[bool] = True


PLAN = """\
[experiment]
name = "order"
repetitions = 1
baseline = "1s"
cooldown = "0s"
output = "{out}"

[platform]
type = "local"

[workload]
type = "command"
command = "sleep 0.5"

[[collectors]]
type = "model"
name = "early"

[[collectors]]
type = "model"
name = "late"
"""


def test_collectors_reading_deployed_services_start_after_deploy(tmp_path: Path) -> None:
    path = tmp_path / "plan.toml"
    path.write_text(PLAN.format(out=tmp_path / "out"))
    plan = load_plan(path)
    expansion = expand(plan)
    classes: dict[str, Any] = {"early": EarlyCollector, "late": AfterDeployCollector}
    expansion = attrs.evolve(
        expansion,
        collector_configs=tuple(
            (attrs.evolve(section, cls=classes[section.name]), config)
            for section, config in expansion.collector_configs
        ),
    )
    STARTED.clear()
    with Store.open(plan.output_dir) as store:
        outcome = Runner(plan, expansion, store).run()
        assert len(outcome.finished) == 1, outcome
        exp = store.get_experiment("order")
        assert exp is not None
        phases = store.phases(exp.id)
        provenance = exp.provenance
    deploy = min(at for phase, at in phases if phase == "deploy")
    baseline = min(at for phase, at in phases if phase == "baseline")
    assert STARTED["early"] < deploy
    assert deploy <= STARTED["late"] <= baseline
    # The provenance record, written before deploying, is rewritten with both.
    assert set(provenance["collectors"]) == {"early", "late"}
