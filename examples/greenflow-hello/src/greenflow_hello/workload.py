"""The ``hello`` workload: hash a greeting ``count`` times, paced over ``duration``."""

from __future__ import annotations

import hashlib
import time
from typing import ClassVar

import attrs

from greenflow.api import Phase, RunContext, Workload, WorkloadResult
from greenflow.plan import Duration
from greenflow.plan.validators import at_least, positive

#: SHA-256 rounds per greeting: enough CPU per unit that energy per unit is measurable.
ROUNDS_PER_UNIT = 200
#: Pacing steps per second of MEASURE.
STEPS_PER_S = 50


@attrs.frozen
class HelloConfig:
    """``[workload] type = "hello"``.

    Any field may be a list in the plan, which makes it a sweep axis, e.g.
    ``count = [1000, 10000, 100000]`` runs one point per value. The validators come from
    :mod:`greenflow.plan.validators`, so that a bad value reads like any plan error:
    ``plan.toml [workload] duration: expected a number > 0, got 0.0``. A run's length is a
    ``Duration`` named ``duration``, as in every workload: the plan writes ``"2s"``,
    ``"500ms"``, ``"1m30s"`` or seconds.
    """

    greeting: str = "hello"
    #: Greetings to hash during MEASURE (the units of work).
    count: int = attrs.field(default=1000, validator=at_least(0))
    #: How long MEASURE is paced over: the asked rate is count / duration.
    duration: Duration = attrs.field(default=Duration(1), validator=positive)


class HelloWorkload(Workload):
    """Hashes ``greeting`` ``count`` times in this process, spread evenly over ``duration``.

    When the machine cannot keep up, MEASURE lasts longer and the achieved rate says so.
    Ctrl-C (``ctx.cancel``) stops it within one pacing step, busy or not.
    """

    Config: ClassVar[type] = HelloConfig
    config: HelloConfig

    def __init__(self, config: HelloConfig) -> None:
        super().__init__(config)
        self.last_digest: bytes | None = None

    def prepare(self, ctx: RunContext) -> None:
        # Something to undo in clean(), as a topic would be for a broker workload.
        (ctx.work_dir / "greeting.txt").write_text(self.config.greeting)

    def execute(self, ctx: RunContext) -> WorkloadResult:
        count, duration = self.config.count, float(self.config.duration)
        payload = self.config.greeting.encode()
        steps = max(1, int(duration * STEPS_PER_S))
        digest = payload
        done = 0
        start = ctx.phases.enter(Phase.MEASURE)
        for step in range(1, steps + 1):
            if ctx.cancel.is_set():  # a machine that cannot keep up never reaches ctx.sleep
                raise KeyboardInterrupt
            while done < count * step // steps:
                for _ in range(ROUNDS_PER_UNIT):
                    digest = hashlib.sha256(digest + payload).digest()
                done += 1
            due = start + duration * step / steps
            delay = due - time.time()
            if delay > 0:
                ctx.sleep(delay)  # wakes up (KeyboardInterrupt) when the run is cancelled
        end = ctx.phases.enter(Phase.COOLDOWN)
        self.last_digest = digest
        return WorkloadResult(
            units=done,  # counted inside MEASURE, not count asked
            unit="greeting",
            payload_bytes=float(done * len(payload)),
            achieved_rate=done / (end - start) if end > start else None,
            metrics={"asked_rate_per_s": count / duration},
        )

    def clean(self, ctx: RunContext) -> None:
        (ctx.work_dir / "greeting.txt").unlink(missing_ok=True)
