"""Idle baselines, warm-up runs and run warnings end to end on `local`, with the built-in
collectors (the model's power comes from the real CPU time of this machine).

The start-up burst is a real busy process, the `busy` service of the test fixture
greenflow-test-plugins (tests/fixtures/test-plugins): busy on one CPU for a few seconds after it is
ready, as a JVM starting up is. Nothing is simulated but the energy itself, which under the
`model` collector is a function of measured CPU time (no RAPL in a VM)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from greenflow.api import Sample
from greenflow.store import BaselineRow, Store
from greenflow.testing.cli import run_greenflow

pytestmark = pytest.mark.timeout(300)

PLAN = """
[experiment]
name = "idle"
repetitions = {reps}
baseline = "{baseline}"
settle = "{settle}"
settle_window = "1s"
output = "{out}"
{extra}

[platform]
type = "local"
{services}

[workload]
type = "command"
command = "{command}"
unit = "run"

[[collectors]]
type = "model"
interval_s = 0.25

[[collectors]]
type = "process"
interval_s = 0.25
"""

BURN = (
    "import sys, time\nend = time.time() + float(sys.argv[1])\nwhile time.time() < end:\n    pass\n"
)


def _plan(tmp_path: Path, **kw: object) -> Path:
    values: dict[str, object] = {
        "reps": 3,
        "baseline": "3s",
        "settle": "40s",
        "out": tmp_path / "out",
        "extra": "",
        "services": "",
        "command": "sleep 1",
    }
    values.update(kw)
    plan = tmp_path / "plan.toml"
    plan.write_text(PLAN.format(**values))
    return plan


#: A service busy on one CPU for 6 s after it is ready.
BUSY_SERVICE = '[[services]]\ntype = "busy"\nburst_s = 6\n'


@pytest.fixture(autouse=True)
def _needs_the_busy_service(request: pytest.FixtureRequest) -> None:
    if "burst" in request.node.name:
        request.getfixturevalue("test_plugins")


#: How close to a phase boundary the collectors' reading there is (they sample right after
#: the runner reads the clock for it).
EDGE_S = 0.05


def _opening(out: Path) -> tuple[BaselineRow, list[Sample]]:
    """The opening baseline and the experiment-level samples inside its window (with the
    readings taken at its edges, a few microseconds after each)."""
    with Store.open(out, create=False) as store:
        (exp,) = store.experiments()
        opening = next(r for r in store.baselines(exp.id) if r.kind == "opening")
        samples = [
            x
            for x in store.samples(exp.id, None)
            if opening.start <= x.timestamp <= opening.end + EDGE_S
        ]
    return opening, samples


def _service_cpu_rate(opening: BaselineRow, samples: list[Sample]) -> float:
    """CPU seconds per second the busy service used over the baseline window."""
    cpu = sorted(
        (x.timestamp, x.value)
        for x in samples
        if x.metric == "cpu_seconds" and x.labels.get("group") == "service:busy"
    )
    return (cpu[-1][1] - cpu[0][1]) / (opening.end - opening.start)


def test_a_baseline_waits_out_a_cpu_burst_and_matches_quiet_idle(tmp_path: Path) -> None:
    """With the service still busy (6 s at one CPU) when it is ready, the opening baseline
    waits until the service is quiet (stored settled, started after the burst, the
    service using no CPU inside it), and its idle power is that of the samples inside its
    window within 1 %: its edges are readings, nothing of the burst is interpolated in."""
    started = time.time()
    # A loose power tolerance: what must hold the baseline back is the service's own CPU,
    # which no other load on the machine (a CI build next door) can fake.
    plan = _plan(tmp_path, reps=3, services=BUSY_SERVICE, extra="settle_tolerance = 0.5")
    run = run_greenflow(tmp_path, "run", str(plan))
    assert run.returncode == 0, run.stderr[-3000:]
    opening, samples = _opening(tmp_path / "out")
    assert opening.settled is True and opening.start >= started + 6.0 - 0.5
    assert _service_cpu_rate(opening, samples) < 0.02
    energy = sorted(
        (x.timestamp, x.value)
        for x in samples
        if x.metric == "energy_joules" and x.labels.get("domain") == "host"
    )
    # The first and last readings are at the window's edges (collectors sample there).
    assert abs(energy[0][0] - opening.start) < EDGE_S
    assert abs(energy[-1][0] - opening.end) < EDGE_S
    quiet_watts = (energy[-1][1] - energy[0][1]) / (energy[-1][0] - energy[0][0])
    assert opening.mean_watts == pytest.approx(quiet_watts, rel=0.01)
    assert opening.intervals >= 10 and opening.stdev_watts >= 0


def test_without_settling_the_burst_is_in_the_baseline(tmp_path: Path) -> None:
    """The same burst with settle = 0: the service burns about one CPU through the opening
    baseline (it gets at least 0.3 CPU-s/s even on a busy machine), which is stored as not
    waited for — what the settling above prevents."""
    plan = _plan(tmp_path, reps=3, settle="0s", services=BUSY_SERVICE)
    run = run_greenflow(tmp_path, "run", str(plan))
    assert run.returncode == 0, run.stderr[-3000:]
    opening, samples = _opening(tmp_path / "out")
    assert opening.settled is None
    assert _service_cpu_rate(opening, samples) > 0.3


def test_the_warm_up_run_is_not_stored_as_measured(tmp_path: Path) -> None:
    """warmup_runs = 1: the workload runs once more than the plan's runs, unmeasured: the
    store holds only the plan's runs, and a warmup phase before the baseline."""
    executions = tmp_path / "executions.log"
    plan = _plan(
        tmp_path,
        reps=3,
        baseline="1s",
        settle="0s",
        extra="warmup_runs = 1",
        command=f"sh -c 'echo run >> {executions}'",
    )
    run = run_greenflow(tmp_path, "run", str(plan))
    assert run.returncode == 0, run.stderr[-3000:]
    assert executions.read_text().count("run") == 4
    with Store.open(tmp_path / "out", create=False) as store:
        (exp,) = store.experiments()
        runs = store.get_runs(exp.id)
        phases = [p for p, _ in store.phases(exp.id)]
    assert len(runs) == 3 and {r.status.value for r in runs} == {"finished"}
    # The warm-up happens before the opening baseline, outside any run.
    assert phases.index("warmup") < phases.index("baseline")


def test_two_repetitions_and_background_load_are_warned_about(tmp_path: Path) -> None:
    """A plan with 2 repetitions gets a repetitions warning, and a run (and a baseline)
    during which a process outside the services and the load generator burns CPU gets a
    background-load warning; all are stored and printed."""
    plan = _plan(tmp_path, reps=2, baseline="2s", settle="0s", command="sleep 3")
    hog = subprocess.Popen([sys.executable, "-c", BURN, "60"])
    try:
        run = run_greenflow(tmp_path, "run", str(plan))
    finally:
        hog.kill()
        hog.wait()
    assert run.returncode == 0, run.stderr[-3000:]
    with Store.open(tmp_path / "out", create=False) as store:
        (exp,) = store.experiments()
        warnings = store.warnings(exp.id)
    codes = {w.code.split(":")[0] for w in warnings}
    assert "repetitions" in codes
    background = [w for w in warnings if w.code.startswith("background-load")]
    assert len({w.run_id for w in background}) == 2, warnings
    assert "busy CPU time" in background[0].message
    # The hog ran through the baselines too: their idle power is said to include it.
    assert any(w.code.startswith("baseline-background-load:opening") for w in warnings)
    assert "repetitions = 2" in run.stderr and "background" in run.stderr
