"""Plugins written the wrong way meet one failure policy: a deadline on every step, the
plugin and the step named in one line, a failed run (never a finished one without energy),
and their processes gone after teardown.

The plugins are the test fixture greenflow-test-plugins (tests/fixtures/test-plugins):
real processes and real hangs, nothing simulated.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from greenflow.store import Store

pytestmark = [pytest.mark.timeout(300), pytest.mark.usefixtures("test_plugins")]

HEAD = """
[experiment]
name = "faults"
repetitions = {reps}
baseline = "0s"
output = "{out}"
{experiment}

[platform]
type = "local"
"""


def _run(tmp_path: Path, body: str, *, reps: int = 1, experiment: str = "") -> tuple[int, str]:
    plan = tmp_path / "plan.toml"
    plan.write_text(
        HEAD.format(reps=reps, out=tmp_path / "out", experiment=experiment) + body,
        encoding="utf-8",
    )
    done = subprocess.run(
        [sys.executable, "-m", "greenflow", "run", str(plan)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    return done.returncode, done.stdout + done.stderr


def _runs(tmp_path: Path) -> list[dict[str, object]]:
    done = subprocess.run(
        [sys.executable, "-m", "greenflow", "results", str(tmp_path / "out"), "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    rows: list[dict[str, object]] = json.loads(done.stdout)
    return rows


def _leftover_servers(before: set[int]) -> list[int]:
    return [
        p.pid
        for p in psutil.process_iter(["cmdline"])
        if p.pid not in before and "time.sleep(3600)" in " ".join(p.info["cmdline"] or [])
    ]


def _existing_servers() -> set[int]:
    return set(_leftover_servers(set()))


WORKLOAD = """
[workload]
type = "buggy"
bug = "none"
"""


def test_a_deploy_that_hangs_hits_its_deadline_and_its_server_is_removed(tmp_path: Path) -> None:
    """A service whose deploy never returns fails at timeouts.deploy with one line naming
    the service, its place in the plan and the step; its server process is gone."""
    before = _existing_servers()
    code, out = _run(
        tmp_path,
        '[[services]]\ntype = "hang"\nhang_in = "deploy"\n' + WORKLOAD,
        experiment='timeouts = { deploy = "3s" }',
    )
    assert code != 0
    assert "service 'hang' (plan.toml [services.0]) deploy did not return within 3 s" in out
    assert "timeouts.deploy" in out and "Traceback" not in out
    assert "service.deploying" in out  # the log names the service being deployed
    assert _leftover_servers(before) == []


def test_a_wait_ready_that_ignores_its_timeout_is_stopped(tmp_path: Path) -> None:
    """wait_ready sleeping past its timeout is stopped at timeouts.wait_ready, named."""
    before = _existing_servers()
    code, out = _run(
        tmp_path,
        '[[services]]\ntype = "hang"\nhang_in = "wait_ready"\n' + WORKLOAD,
        experiment='ready_timeout = "1s"\ntimeouts = { wait_ready = "3s" }',
    )
    assert code != 0
    assert "service 'hang' (plan.toml [services.0]) wait_ready did not return within 3 s" in out
    assert _leftover_servers(before) == []


def test_a_bug_in_a_workload_fails_its_run_naming_plugin_step_and_line(tmp_path: Path) -> None:
    """A KeyError in execute: the run fails with the workload, its step and the file and
    line of the bug on one line; the stored error keeps the traceback."""
    code, out = _run(tmp_path, '[workload]\ntype = "buggy"\n', reps=2)
    assert code == 1
    runs = _runs(tmp_path)
    assert [r["status"] for r in runs] == ["failed", "failed"]
    error = str(runs[0]["error"])
    first = error.splitlines()[0]
    assert first.startswith("workload 'buggy' (plan.toml [workload]) execute failed: KeyError")
    assert "'no-such-key'" in first and "workloads.py:" in first and "in execute" in first
    assert "Traceback" in error
    assert "execute failed: KeyError" in out and "Traceback" not in out


def test_a_run_judged_failed_keeps_the_figures_it_measured(tmp_path: Path) -> None:
    """A WorkloadError carrying a result (kafka-ingest's overload): the run fails with the
    workload's message, and its achieved rate is stored with it — no energy figure."""
    code, _ = _run(tmp_path, '[workload]\ntype = "buggy"\nbug = "short"\n')
    assert code == 1
    (run,) = _runs(tmp_path)
    assert run["status"] == "failed"
    assert str(run["error"]).startswith(
        "workload 'buggy' (plan.toml [workload]) execute failed: achieved 2 run/s"
    )
    assert run["achieved_rate"] == 2.0 and run["achieved_runs_per_s"] == 2.0
    assert not any("_joules" in str(name) for name in run), run


def test_a_bug_in_collect_fails_the_run_not_the_experiment(tmp_path: Path) -> None:
    """A collector whose collect() raises: each run is stored failed ("energy missing",
    which a re-run redoes), the experiment goes on to its other runs."""
    code, out = _run(tmp_path, WORKLOAD + '\n[[collectors]]\ntype = "buggy"\n', reps=2)
    assert code == 1 and "Traceback" not in out
    runs = _runs(tmp_path)
    assert [r["status"] for r in runs] == ["failed", "failed"]
    assert str(runs[0]["error"]).startswith(
        "energy missing: collector 'buggy' (plan.toml [collectors.0]) collect failed: "
        "ZeroDivisionError"
    )


def test_a_collector_whose_sampling_thread_dies_is_restarted(tmp_path: Path) -> None:
    """The fragile collector's thread ends after 3 samples: between runs the runner sees it
    unhealthy, warns and starts it again, and the runs are measured."""
    code, out = _run(
        tmp_path,
        WORKLOAD + '\n[[collectors]]\ntype = "fragile"\ninterval_s = 0.2\ndie_after = 3\n',
        reps=3,
    )
    assert code == 0, out[-3000:]
    assert "collector-restarted:fragile" in out
    with Store.open(tmp_path / "out", create=False) as store:
        (exp,) = store.experiments()
        assert [w.code for w in store.warnings(exp.id)].count("collector-restarted:fragile") == 1
        for run in store.get_runs(exp.id):
            assert any(m.name == "energy_joules" for m in store.metrics(run.run_id))
