"""End to end on this machine: the `command` workload on `local`, results stored and labelled."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

PLAN = """
[experiment]
name = "e2e"
repetitions = 2
baseline = "1s"
output = "{out}"

[platform]
type = "local"

[workload]
type = "command"
command = "python3 -c 'import sys; n = int(sys.argv[1]); s = sum(i * i for i in range(n * 200000)); print(\\"processed\\", n * 1000, \\"items\\")' {{n}}"
params = {{ n = [1, 3] }}
units_pattern = "processed (\\\\d+) items"
unit = "item"
"""


def greenflow(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "greenflow", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture
def plan(tmp_path: Path) -> Path:
    p = tmp_path / "plan.toml"
    p.write_text(PLAN.format(out=tmp_path / "out"))
    return p


def test_command_workload_end_to_end(plan: Path, tmp_path: Path) -> None:
    """Runs finish, units come from the output, energy is labelled with its method, and
    `results --json` shows them."""
    run = greenflow("run", str(plan), cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    res = greenflow("results", str(tmp_path / "out"), "--json", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    rows = json.loads(res.stdout)
    assert len(rows) == 4
    assert {r["status"] for r in rows} == {"finished"}
    units = sorted(r["units"] for r in rows)
    assert units == [1000.0, 1000.0, 3000.0, 3000.0]

    from greenflow.store import Store

    with Store.open(tmp_path / "out") as store:
        exp = store.get_experiment("e2e")
        assert exp is not None
        assert exp.provenance["host"]["cpu_logical"] >= 1
        for row in store.get_runs(exp.id):
            metrics = store.metrics(row.run_id)
            host = [
                m for m in metrics if m.name == "energy_joules" and m.labels.get("scope") == "host"
            ]
            assert len(host) == 1 and host[0].value > 0
            # Without RAPL in a VM the model answers, and says so.
            assert host[0].method == "rapl" or host[0].method.startswith("model:")
            per_item = [
                m
                for m in metrics
                if m.name == "energy_per_item_joules" and m.labels.get("scope") == "host"
            ]
            assert per_item and per_item[0].method == host[0].method
            assert {"prepare", "measure", "cooldown", "clean"} <= set(row.phases)
            assert row.phases["prepare"] <= row.phases["measure"] <= row.phases["cooldown"]


def test_rerun_skips_finished_runs(plan: Path, tmp_path: Path) -> None:
    """Running the same plan again repeats nothing; --fresh starts over."""
    assert greenflow("run", str(plan), cwd=tmp_path).returncode == 0
    again = greenflow("run", str(plan), cwd=tmp_path)
    assert again.returncode == 0
    assert "4 run(s) already finished" in again.stderr

    from greenflow.store import Store

    with Store.open(tmp_path / "out") as store:
        exp = store.get_experiment("e2e")
        assert exp is not None
        assert all(r.attempts == 1 for r in store.get_runs(exp.id))


def test_failing_command_marks_run_failed_with_output(tmp_path: Path) -> None:
    """A non-zero exit fails the run with the last lines of output; others still run."""
    p = tmp_path / "plan.toml"
    p.write_text(
        PLAN.format(out=tmp_path / "out").replace(
            'command = "python3', 'command = "test {n} -eq 3 && echo boom-{n} && exit 4; python3'
        )
    )
    run = greenflow("run", str(p), cwd=tmp_path)
    assert run.returncode == 1
    from greenflow.store import RunStatus, Store

    with Store.open(tmp_path / "out") as store:
        exp = store.get_experiment("e2e")
        assert exp is not None
        runs = store.get_runs(exp.id)
        failed = [r for r in runs if r.status == RunStatus.FAILED]
        assert len(failed) == 2
        assert all(
            "exited with 4" in (r.error or "") and "boom-3" in (r.error or "") for r in failed
        )
        assert sum(r.status == RunStatus.FINISHED for r in runs) == 2


def test_dry_run_lists_runs_in_order(plan: Path, tmp_path: Path) -> None:
    """--dry-run prints each run with its parameters, in execution order, and runs nothing."""
    out = greenflow("run", str(plan), "--dry-run", "--json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    runs = json.loads(out.stdout)
    assert [r["order"] for r in runs] == [0, 1, 2, 3]
    assert sorted(r["params"]["params.n"] for r in runs) == [1, 1, 3, 3]
    assert not (tmp_path / "out").exists()
