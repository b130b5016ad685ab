"""A platform held for a limited time (``greenflow.api.TimeLimited``, a Grid'5000 job's
walltime) is asked before each run whether its hosts stay long enough; when they do not,
the runner stops before that run, keeps the finished runs, tears down, and a second
invocation resumes where it stopped.

A real runner on the local platform with the ``command`` workload; what is simulated is
the time left: the platform's class is the local platform's, with a budget of runs in place
of a walltime."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import attrs

from greenflow.api import Inventory
from greenflow.builtin.local import LocalPlatform
from greenflow.errors import OutOfTime
from greenflow.plan import expand, load_plan
from greenflow.runner import Runner
from greenflow.runner.execution import FIRST_RUN_ESTIMATE_S
from greenflow.store import RunStatus, Store

PLAN = """\
[experiment]
name = "walltime"
baseline = "0s"
cooldown = "0s"
shuffle = false
output = "{out}"

[platform]
type = "local"

[workload]
type = "command"
command = "true"
params = {{ n = [1, 2, 3, 4, 5] }}
"""


class BudgetPlatform(LocalPlatform):
    """Holds its host for ``budget`` more runs; records what each check asked."""

    budget: ClassVar[int] = 2
    asked: ClassVar[list[float]] = []
    released: ClassVar[int] = 0

    def ensure_time(self, needed_s: float) -> None:
        type(self).asked.append(needed_s)
        if len(type(self).asked) > type(self).budget:
            raise OutOfTime("the job ends in 4 min; the next run needs 10 min")

    def release(self) -> None:
        type(self).released += 1
        super().release()

    def acquire(self, ctx: Any) -> Inventory:
        type(self).asked = []
        return super().acquire(ctx)


def _run(tmp_path: Path) -> Any:
    path = tmp_path / "plan.toml"
    path.write_text(PLAN.format(out=tmp_path / "out"))
    plan = load_plan(path)
    plan = attrs.evolve(plan, platform=attrs.evolve(plan.platform, cls=BudgetPlatform))
    with Store.open(plan.output_dir) as store:
        outcome = Runner(plan, expand(plan), store).run()
        statuses = [r.status for r in store.get_runs(outcome.experiment_id)]
    return outcome, statuses


def test_a_run_that_would_not_fit_is_not_started_and_the_next_invocation_resumes(
    tmp_path: Path,
) -> None:
    BudgetPlatform.released = 0
    outcome, statuses = _run(tmp_path)
    assert outcome.stopped == "the job ends in 4 min; the next run needs 10 min"
    assert outcome.interrupted and len(outcome.finished) == 2 and not outcome.failed
    assert statuses.count(RunStatus.FINISHED) == 2
    assert statuses.count(RunStatus.PENDING) == 3  # not started, not failed
    assert BudgetPlatform.released == 1  # torn down as after any stop
    # Before the first run nothing was timed: the guard assumes FIRST_RUN_ESTIMATE_S; then
    # the longest run so far (a `true` takes well under that).
    first, second, *_ = BudgetPlatform.asked
    assert first == FIRST_RUN_ESTIMATE_S and 0 < second < FIRST_RUN_ESTIMATE_S

    outcome, statuses = _run(tmp_path)
    assert len(outcome.skipped) == 2 and len(outcome.finished) == 2 and outcome.stopped
    outcome, statuses = _run(tmp_path)
    assert outcome.stopped is None and not outcome.interrupted
    assert statuses.count(RunStatus.FINISHED) == 5
