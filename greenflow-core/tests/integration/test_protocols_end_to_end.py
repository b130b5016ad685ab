"""Protocols end to end on `local` with a `command` workload that emulates a system with a
known capacity (it completes at most CAPACITY units per second, whatever it is asked)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from greenflow.builtin.protocols import sustained
from greenflow.store import RunStatus, Store

CAPACITY = 3000
PLAN = """
[experiment]
name = "adaptive"
baseline = 0
output = "{out}"
repetitions = {reps}

[platform]
type = "local"

[workload]
type = "command"
# Works for one second at min(asked, capacity) units per second.
command = "python3 -c 'import sys, time; l = float(sys.argv[1]); time.sleep(1.0); print(\\"processed\\", int(min(l, {cap})))' {{load}}"
params = {{ load = 1 }}
units_pattern = "processed (\\\\d+)"
unit = "item"

[protocol]
{protocol}
"""


def _run(tmp_path: Path, protocol: str, reps: int = 1) -> subprocess.CompletedProcess[str]:
    plan = tmp_path / "plan.toml"
    plan.write_text(PLAN.format(out=tmp_path / "out", cap=CAPACITY, protocol=protocol, reps=reps))
    return subprocess.run(
        [sys.executable, "-m", "greenflow", "run", str(plan)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _probes(tmp_path: Path) -> tuple[list[tuple[float, float | None, str]], dict]:
    with Store.open(tmp_path / "out") as store:
        exp = store.get_experiment("adaptive")
        assert exp is not None
        out = []
        for row in store.get_runs(exp.id):
            result = store.result(row.run_id)
            rate = result.achieved_rate if result else None
            out.append((float(row.params["params.load"]), rate, row.status.value))
        return out, exp.provenance["protocol"]


def test_max_throughput_brackets_the_capacity(tmp_path: Path) -> None:
    """The bracket found contains the first asked rate whose achieved/asked drops below
    the threshold, checked from the stored probes; every probe is a stored run."""
    proto = 'type = "max-throughput"\naxis = "params.load"\nstart = 1000\nthreshold = 0.8\n'
    run = _run(tmp_path, proto)
    assert run.returncode == 0, run.stderr
    probes, record = _probes(tmp_path)
    assert len(probes) >= 4 and all(s == "finished" for _, _, s in probes)
    conclusion = record["conclusions"][0]
    low, high = conclusion["max_sustained"], conclusion["first_unsustained"]
    assert low is not None and high is not None
    assert (high - low) / high <= 0.05
    # From the stored probes: everything up to `low` sustained, `high` did not.
    ratios = {load: rate / load for load, rate, _ in probes if rate is not None}
    assert ratios[low] >= 0.8 > ratios[high]
    assert all(r >= 0.8 for load, r in ratios.items() if load <= low)
    assert all(r < 0.8 for load, r in ratios.items() if load >= high)
    # The emulated system cannot do more than its capacity.
    assert low <= CAPACITY / 0.8


def test_rerun_replays_probes_from_the_store(tmp_path: Path) -> None:
    """A second run of the same plan repeats no probe and reaches the same conclusion."""
    proto = 'type = "max-throughput"\naxis = "params.load"\nstart = 2000\nthreshold = 0.8\n'
    assert _run(tmp_path, proto).returncode == 0
    first, rec1 = _probes(tmp_path)
    assert _run(tmp_path, proto).returncode == 0
    second, rec2 = _probes(tmp_path)
    assert len(first) == len(second)
    assert rec1["conclusions"] == rec2["conclusions"]


def test_proportionality_runs_levels_of_a_given_maximum(tmp_path: Path) -> None:
    """Levels are percentages of the maximum, each repeated."""
    proto = (
        'type = "proportionality"\naxis = "params.load"\nmaximum = 2000\nlevels = [25, 50, 100]\n'
    )
    run = _run(tmp_path, proto, reps=2)
    assert run.returncode == 0, run.stderr
    probes, _ = _probes(tmp_path)
    assert sorted(load for load, _, _ in probes) == [500, 500, 1000, 1000, 2000, 2000]


def test_idle_protocol_measures_without_load(tmp_path: Path) -> None:
    """An idle run never starts the workload and still stores energy over MEASURE."""
    run = _run(tmp_path, 'type = "idle"\nduration = "1s"\n')
    assert run.returncode == 0, run.stderr
    with Store.open(tmp_path / "out") as store:
        exp = store.get_experiment("adaptive")
        assert exp is not None
        (row,) = store.get_runs(exp.id)
        assert row.status == RunStatus.FINISHED and row.params.get("protocol") == "idle"
        names = {m.name for m in store.metrics(row.run_id)}
        assert "energy_joules" in names


def test_sustained_needs_a_finished_run() -> None:
    """A failed probe never counts as sustained, whatever its ratio."""
    from greenflow.api import Probe, WorkloadResult

    ok = WorkloadResult(units=100, achieved_rate=100.0)
    assert sustained(Probe(100, 0, "finished", ok), 0.95)
    assert not sustained(Probe(100, 0, "failed", ok), 0.95)
    assert not sustained(Probe(200, 0, "finished", ok), 0.95)
