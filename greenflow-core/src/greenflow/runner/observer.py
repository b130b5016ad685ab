"""What the runner tells its caller: progress as it goes (:class:`Observer`) and what one
invocation did (:class:`Outcome`)."""

from __future__ import annotations

import attrs

from greenflow.plan import RunSpec


class Observer:
    """What the runner tells the screen; the CLI gives a rich progress display."""

    def start(self, total: int, skipped: int) -> None: ...
    def phase(self, phase: str, detail: str = "") -> None: ...
    def run_started(self, run: RunSpec) -> None: ...
    def run_ended(self, run: RunSpec, status: str, error: str | None) -> None: ...
    def stop(self) -> None: ...


@attrs.define
class Outcome:
    """What one invocation did."""

    experiment_id: int
    finished: list[str] = attrs.field(factory=list)
    failed: list[str] = attrs.field(factory=list)
    aborted: list[str] = attrs.field(factory=list)
    skipped: list[str] = attrs.field(factory=list)
    interrupted: bool = False
    #: Why the runs stopped early when no one asked (the platform ran out of time).
    stopped: str | None = None
    left_up: bool = False
