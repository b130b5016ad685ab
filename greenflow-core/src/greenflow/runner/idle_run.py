"""The workload of a protocol's idle run: MEASURE with the services up and no load."""

from __future__ import annotations

import attrs

from greenflow.api import Phase, RunContext, Workload, WorkloadResult


class IdleRun(Workload):
    """A protocol's idle run: MEASURE with the services up and no load at all."""

    Config = attrs.make_class("IdleRunConfig", {})

    def __init__(self, duration_s: float) -> None:
        super().__init__(None)
        self.duration_s = duration_s

    def prepare(self, ctx: RunContext) -> None:
        """Nothing to prepare: no load."""

    def execute(self, ctx: RunContext) -> WorkloadResult:
        ctx.phases.enter(Phase.MEASURE)
        ctx.sleep(self.duration_s)
        ctx.phases.enter(Phase.COOLDOWN)
        return WorkloadResult(units=0.0, unit="run")

    def clean(self, ctx: RunContext) -> None:
        """Nothing to clean."""
