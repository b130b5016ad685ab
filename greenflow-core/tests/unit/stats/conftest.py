"""The "sweep" experiment the statistics tests summarise."""

from __future__ import annotations

from pathlib import Path

import pytest
from stats_helpers import add_run, rep_metrics, result

from greenflow.store import RunStatus, Store


@pytest.fixture
def sweep_dir(tmp_path: Path) -> Path:
    """Experiment "sweep" over rate, built with the Store API:

    * rate 1000: three finished repetitions (node-1 energy 10, 12, 14; node-2 5, 6, 7;
      idle 4 J on node-1 and 2 J on node-2; 1000 messages; rate 100, 110, 120;
      p99 8, 9, 13);
    * rate 2000: a finished run by RAPL (node-1 20 J), one by the model (node-1 30 J),
      a failed run (with a stray figure stored) and an aborted one;
    * rate 500: a single finished repetition, without a baseline on node-2;
    * rate 4000: only a failed run.
    """
    out = tmp_path / "greenflow-output"
    with Store.open(out) as store:
        exp = store.upsert_experiment("sweep", "plan.toml", 'name = "sweep"\n', 1)
        one = {"rate": 1000, "size": 512}
        for rep, (e1, e2, rate, p99) in enumerate(
            [(10, 5, 100, 8), (12, 6, 110, 9), (14, 7, 120, 13)]
        ):
            add_run(
                store,
                exp,
                f"a{rep}",
                one,
                rep,
                RunStatus.FINISHED,
                rep_metrics(e1, e2, 1000),
                result(1000, rate, p99),
            )
        two = {"rate": 2000, "size": 512}
        add_run(
            store,
            exp,
            "b0",
            two,
            0,
            RunStatus.FINISHED,
            rep_metrics(20, 10, 2000),
            result(2000, 200, 10),
        )
        add_run(
            store,
            exp,
            "b1",
            two,
            1,
            RunStatus.FINISHED,
            rep_metrics(30, 15, 2000, "model:linear"),
            result(2000, 190, 12),
        )
        add_run(
            store,
            exp,
            "b2",
            two,
            2,
            RunStatus.FAILED,
            rep_metrics(1e9, 1e9, 1),
            result(1, 1e9, 1e9),
        )
        add_run(store, exp, "b3", two, 3, RunStatus.ABORTED)
        add_run(
            store,
            exp,
            "c0",
            {"rate": 500, "size": 512},
            0,
            RunStatus.FINISHED,
            rep_metrics(7, 3, 500, idle2=None),
            result(500, 50, 5),
        )
        add_run(store, exp, "d0", {"rate": 4000, "size": 512}, 0, RunStatus.FAILED)
        # A run registered but never started counts nowhere.
        store.add_run(exp, "d1", {"rate": 4000, "size": 512}, 1, 99, group="g")
    return out
