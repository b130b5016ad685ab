"""The Workload interface: one point of the parameter space, driven against services."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection, Mapping
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
        """Local pids of the load generator while it runs, for energy attribution.

        A group named ``service:<name>`` holds processes that are part of the system under
        test though the workload runs them (Theodolite's stream-processing app): the
        runner attributes it as a service (scope ``service``); every other group is the
        load generator (``loadgen:<workload type>``). The runner also records all of them
        in the store as they appear, so that ``greenflow down`` can stop them after a crash
        (see :meth:`clean_recorded`)."""
        return {}

    def targets(self, services: Collection[str]) -> Collection[str]:
        """Names of the services this run needs (default: all of them).

        Only these are deployed for the run; with a list-valued target (a sweep axis over
        services) one plan compares systems, each run deploying only what it targets."""
        return services

    @classmethod
    def clean_recorded(cls, config: Any, state: Mapping[str, Any]) -> None:
        """Clean up after a run whose process is gone (``greenflow down``).

        ``state["pids"]`` holds the load generator's processes as recorded by the runner
        (``[pid, create_time]``); the default stops them with their children."""
        from greenflow.api.processes import kill_recorded

        kill_recorded(state.get("pids", []))
