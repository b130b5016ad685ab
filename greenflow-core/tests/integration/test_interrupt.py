"""SIGINT mid-run (real process, real signal): teardown runs, the run is stored aborted,
finished runs are kept, and running the plan again resumes without repeating them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

PLAN = """
[experiment]
name = "interrupt"
repetitions = 3
baseline = 0
output = "{out}"
shuffle = false

[platform]
type = "local"

[workload]
type = "command"
warmup_command = "{warmup}"
command = "{measure}; echo {{run_id}} >> {dir}/ran.txt; echo did 5 things"
units_pattern = "did (\\\\d+) things"
params = {{ token = "{token}" }}
"""

# Blocks once one run has finished (ran.txt is not empty) while `armed` exists.
BLOCK = "if [ -e {dir}/armed ] && [ -s {dir}/ran.txt ]; then exec sleep 120 {{token}}; fi"


def _start(tmp_path: Path, where: str) -> tuple[Path, str]:
    token = f"9{os.getpid()}{int(time.time() * 1000) % 100000}"
    block = BLOCK.format(dir=tmp_path)
    plan = tmp_path / "plan.toml"
    plan.write_text(
        PLAN.format(
            out=tmp_path / "out",
            dir=tmp_path,
            token=token,
            warmup=block if where == "warmup" else "true",
            measure=block if where == "measure" else "true",
        )
    )
    return plan, token


def _status(tmp_path: Path) -> tuple[list[str], dict[str, str]]:
    from greenflow.store import Store

    if not (tmp_path / "out" / "greenflow.sqlite").exists():
        return [], {}
    with Store.open(tmp_path / "out") as store:
        exp = store.get_experiment("interrupt")
        if exp is None:
            return [], {}
        runs = store.get_runs(exp.id)
        current = {r.run_id: max(r.phases, key=lambda p: r.phases[p]) for r in runs if r.phases}
        return [r.status.value for r in runs], current


def _sleepers(token: str) -> list[psutil.Process]:
    out = []
    for p in psutil.process_iter(["cmdline"]):
        if token in " ".join(p.info["cmdline"] or []) and "sleep" in (p.info["cmdline"] or [""])[0]:
            out.append(p)
    return out


@pytest.mark.parametrize(
    ("where", "sig"),
    [("warmup", signal.SIGINT), ("measure", signal.SIGINT), ("measure", signal.SIGTERM)],
)
def test_sigint_aborts_run_tears_down_and_resumes(
    tmp_path: Path, where: str, sig: signal.Signals
) -> None:
    """Ctrl-C (or SIGTERM) during warm-up or MEASURE: aborted run, no process left, re-run
    resumes."""
    plan, token = _start(tmp_path, where)
    (tmp_path / "armed").touch()
    proc = subprocess.Popen(
        [sys.executable, "-m", "greenflow", "run", str(plan)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            _statuses, phases = _status(tmp_path)
            if _sleepers(token) and where in phases.values():
                break
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.1)
        else:
            pytest.fail(f"never reached {where}: {_status(tmp_path)}")
        proc.send_signal(sig)
        _out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    statuses, _ = _status(tmp_path)
    assert statuses.count("finished") == 1
    assert statuses.count("aborted") == 1
    assert statuses.count("pending") == 1
    assert "Traceback" not in err
    # Teardown ran: the blocked command's process group is gone.
    time.sleep(0.2)
    assert _sleepers(token) == []
    ran_before = (tmp_path / "ran.txt").read_text().split()
    assert len(ran_before) == 1

    (tmp_path / "armed").unlink()
    again = subprocess.run(
        [sys.executable, "-m", "greenflow", "run", str(plan)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert again.returncode == 0, again.stderr
    statuses, _ = _status(tmp_path)
    assert statuses == ["finished"] * 3
    ran = (tmp_path / "ran.txt").read_text().split()
    assert len(ran) == 3 and ran[0] == ran_before[0]
    assert len(set(ran)) == 3  # the first finished run was not repeated


def test_down_cleans_up_after_a_crash(tmp_path: Path) -> None:
    """SIGKILL (no teardown possible) mid-MEASURE: `greenflow down` stops the recorded
    load-generator processes and marks the run aborted; a re-run then finishes it."""
    plan, token = _start(tmp_path, "measure")
    (tmp_path / "armed").touch()
    proc = subprocess.Popen(
        [sys.executable, "-m", "greenflow", "run", str(plan)],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            _statuses, phases = _status(tmp_path)
            if _sleepers(token) and "measure" in phases.values():
                time.sleep(1.5)  # the process collector records pids at its next sample
                break
            time.sleep(0.1)
        else:
            pytest.fail(f"never reached measure: {_status(tmp_path)}")
        proc.kill()
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert _sleepers(token), "the command should survive its parent's SIGKILL"
    statuses, _ = _status(tmp_path)
    assert "running" in statuses

    down = subprocess.run(
        [sys.executable, "-m", "greenflow", "down", str(plan)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert down.returncode == 0, down.stderr
    assert "released the load generator of command" in down.stdout
    time.sleep(0.2)
    assert _sleepers(token) == []
    statuses, _ = _status(tmp_path)
    assert "running" not in statuses and statuses.count("aborted") == 1

    (tmp_path / "armed").unlink()
    again = subprocess.run(
        [sys.executable, "-m", "greenflow", "run", str(plan)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert again.returncode == 0, again.stderr
    assert _status(tmp_path)[0] == ["finished"] * 3
