"""The Workload interface: one point of the parameter space, driven against services."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar

from greenflow.api.context import Capability, ProcessGroups, RunContext, WorkloadResult


class Workload(ABC):
    """Drives load for one run and reports the work done during MEASURE.

    ``Config`` is a frozen attrs class for the plan's ``[workload]`` table (minus
    ``type``). A list value for a scalar field is a sweep axis; each instance is built
    for one run with scalar values. Lifecycle per run, in the runner's order:
    ``prepare`` → ``execute`` → ``clean`` (always, even after a failure or Ctrl-C).
    """

    Config: ClassVar[type]
    requires: ClassVar[frozenset[Capability]] = frozenset()

    def __init__(self, config: Any) -> None:
        self.config = config

    def validate(self, services: Mapping[str, Any]) -> str | None:
        """Return why this point cannot run against these service configs, or None.

        Called at validation for every run (e.g. replication > brokers)."""
        return None

    @abstractmethod
    def prepare(self, ctx: RunContext) -> None:
        """**REQUIRED.** Set up what this run needs (e.g. create a topic). Not measured."""

    @abstractmethod
    def execute(self, ctx: RunContext) -> WorkloadResult:
        """**REQUIRED.** Drive the load and return what MEASURE achieved.

        Must call ``ctx.phases.enter(Phase.MEASURE)`` exactly once when the measured
        window starts and ``ctx.phases.enter(Phase.COOLDOWN)`` when it ends, optionally
        ``Phase.WARMUP`` before MEASURE. Units of work are counted at those boundaries.
        Raise ``WorkloadError`` with the reason (and the last lines of output) on
        failure. Long waits use ``ctx.sleep`` so Ctrl-C interrupts them.
        """

    @abstractmethod
    def clean(self, ctx: RunContext) -> None:
        """**REQUIRED.** Undo ``prepare`` and stop any load generator. Idempotent."""

    def processes(self) -> ProcessGroups:
        """Local pids of the load generator while it runs, for energy attribution."""
        return {}
