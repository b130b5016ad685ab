"""A results directory on a read-only file system is read like any other.

The file system is real: a read-only bind mount of the test's directory, in a mount
namespace of its own (``unshare --mount``), so nothing outside the test sees it. Needs
root (or CAP_SYS_ADMIN) and util-linux's ``unshare``; skips saying so otherwise.
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from greenflow.api.context import Metric, WorkloadResult
from greenflow.store import RunStatus, Store


def _read_only(directory: Path, *command: str) -> subprocess.CompletedProcess[str]:
    """Run ``command`` with ``directory`` mounted read-only over itself."""
    d = shlex.quote(str(directory))
    script = (
        f"mount --bind {d} {d} && mount -o remount,bind,ro {d} && "
        f"{{ touch {d}/probe 2>/dev/null && echo 'still writable' >&2 && exit 97 || true; }} && "
        + shlex.join(command)
    )
    return subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def results(tmp_path: Path) -> Path:
    """An output directory holding one finished run, closed cleanly (no -wal, no -shm)."""
    out = tmp_path / "greenflow-output"
    with Store.open(out) as store:
        exp = store.upsert_experiment("e", "plan.toml", 'name = "e"\n', 1)
        store.add_run(exp, "r1", {"rate": 10}, 0, 0)
        store.set_run_status("r1", RunStatus.RUNNING)
        store.set_result("r1", WorkloadResult(units=100, unit="message"))
        store.add_metrics(
            "r1", [Metric("energy_joules", 5.0, "joules", "rapl", {"scope": "host", "host": "h"})]
        )
        store.set_run_status("r1", RunStatus.FINISHED)
    if shutil.which("unshare") is None:
        pytest.skip("needs util-linux's unshare to mount a read-only file system")
    probe = _read_only(out, "true")
    if probe.returncode != 0:
        pytest.skip(
            f"cannot mount a read-only file system here (needs root): {probe.stderr.strip()}"
        )
    return out


def test_results_reads_a_store_on_a_read_only_file_system(results: Path) -> None:
    """`greenflow results --json` reads a store it cannot write, instead of 'not a GreenFlow store'."""
    done = _read_only(results, sys.executable, "-m", "greenflow", "results", str(results), "--json")
    assert done.returncode == 0, done.stderr
    (row,) = json.loads(done.stdout)
    assert (row["run_id"], row["status"], row["units"]) == ("r1", "finished", 100.0)
    assert row["energy_joules[host/h]"] == 5.0
    assert sorted(p.name for p in results.iterdir()) == ["greenflow.sqlite"]


def test_writing_to_a_read_only_store_is_a_store_error(results: Path) -> None:
    """A write to a store opened read-only fails with a StoreError naming the store."""
    code = (
        "from greenflow.errors import StoreError\n"
        "from greenflow.store import Store\n"
        f"store = Store.open({str(results)!r}, create=False)\n"
        "try:\n"
        "    store.upsert_experiment('x', 'plan.toml', '', 1)\n"
        "except StoreError as exc:\n"
        "    print(exc)\n"
    )
    done = _read_only(results, sys.executable, "-c", code)
    assert done.returncode == 0, done.stderr
    assert "readonly database" in done.stdout and str(results) in done.stdout
