"""`greenflow run` with `[remote_write]`: samples reach a real VictoriaMetrics labelled
with experiment, run id, phase and method, and the local store keeps them too; with the
endpoint down, the run still finishes and nothing local is lost."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from greenflow.api import wait_until
from greenflow.store import Store
from greenflow.testing.prometheus import VictoriaMetricsServer, find_victoria_metrics

PLAN = """
[experiment]
name = "remote"
baseline = "1s"
output = "{out}"

[platform]
type = "local"

[workload]
type = "command"
command = "python3 -c 'import time; time.sleep(1.5); print(\\"did 7 things\\")'"
units_pattern = "did (\\\\d+) things"

[remote_write]
url = "{url}"
labels = {{ campaign = "test" }}
"""


@pytest.fixture(scope="module")
def vm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VictoriaMetricsServer]:
    if find_victoria_metrics() is None:
        pytest.skip("victoria-metrics is not installed (bash scripts/setup-system installs it)")
    with VictoriaMetricsServer(tmp_path_factory.mktemp("vm")) as server:
        yield server


def _run(tmp_path: Path, url: str) -> subprocess.CompletedProcess[str]:
    plan = tmp_path / "plan.toml"
    plan.write_text(PLAN.format(out=tmp_path / "out", url=url))
    return subprocess.run(
        [sys.executable, "-m", "greenflow", "run", str(plan)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_samples_are_remote_written_with_labels(tmp_path: Path, vm: VictoriaMetricsServer) -> None:
    """Energy counters of the run arrive in VictoriaMetrics per phase, with their method."""
    result = _run(tmp_path, vm.write_url)
    assert result.returncode == 0, result.stderr
    with Store.open(tmp_path / "out") as store:
        exp = store.get_experiment("remote")
        assert exp is not None
        (run,) = store.get_runs(exp.id)
        local = store.samples(exp.id, run.run_id, metric="energy_joules")
    assert local
    series: list[dict[str, object]] = []

    def arrived() -> tuple[bool, str]:
        # VictoriaMetrics makes the newest points searchable shortly after they arrive.
        series[:] = vm.export('{__name__="energy_joules",experiment="remote"}')
        n = sum(len(s["values"]) for s in series if s["metric"].get("run_id") == run.run_id)
        return n >= len(local), f"{n} of {len(local)} points"

    wait_until(arrived, what="the run's samples in VictoriaMetrics", timeout_s=30, interval_s=0.5)
    phases = {s["metric"].get("phase") for s in series if s["metric"].get("run_id") == run.run_id}
    assert "measure" in phases
    baseline = [s for s in series if s["metric"].get("phase") == "baseline"]
    assert baseline
    for s in series:
        assert s["metric"]["campaign"] == "test"
        assert s["metric"]["method"] == local[0].method
    remote_points = sum(len(s["values"]) for s in series if s["metric"].get("run_id") == run.run_id)
    assert remote_points == len(local)


def test_down_endpoint_loses_nothing_locally(tmp_path: Path) -> None:
    """With nothing listening at the URL, the run finishes and the store has its samples."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = _run(tmp_path, f"http://127.0.0.1:{port}/api/v1/write")
    assert result.returncode == 0, result.stderr
    assert "remote_write.failed" in result.stderr
    with Store.open(tmp_path / "out") as store:
        exp = store.get_experiment("remote")
        assert exp is not None
        (run,) = store.get_runs(exp.id)
        assert run.status.value == "finished"
        assert store.samples(exp.id, run.run_id, metric="energy_joules")
