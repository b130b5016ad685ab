"""Faults on a real local broker (issue 16): `greenflow run` killed with SIGKILL then run
again, two runs on one output directory, a full file system, SIGHUP. In each case no wrong
result is stored as finished and no process is left behind.

Real parts: Kafka brokers and producers (jars from Maven Central), `greenflow` as a
subprocess, a real tmpfs of a few MiB for the full file system (root only).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from test_ingest_runs import LOAD, PLAN, Experiment, _wait_for_measure

from greenflow_kafka.distribution import KafkaDistribution

pytestmark = pytest.mark.timeout(600)


@pytest.fixture
def experiment(tmp_path: Path, kafka_distribution: KafkaDistribution) -> Callable[..., Experiment]:
    """A 1-broker kafka-ingest plan under tmp_path, with no warm-up run and no baseline:
    these tests are about failures, not figures."""

    def write(name: str, duration: str) -> Experiment:
        plan = tmp_path / "plan.toml"
        text = PLAN.format(
            name=name,
            repetitions=1,
            output=str(tmp_path / "out"),
            version=kafka_distribution.version,
            brokers=1,
            heap="384m",
            load=LOAD,
            replication=1,
            warmup="1s",
            duration=duration,
        )
        plan.write_text(text.replace('baseline = "1s"', 'baseline = "0s"\nwarmup_runs = 0'))
        return Experiment(tmp_path, plan, tmp_path / "out")

    return write


def _reap(proc: subprocess.Popen[str]) -> str:
    """Wait for ``proc`` and close its pipes; its stderr."""
    _out, err = proc.communicate(timeout=300)
    return err


def _achieved_ratios(exp: Experiment) -> list[float]:
    done = exp.greenflow("results", str(exp.output), "--json")
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    return [r["achieved_rate"] / LOAD for r in rows if r["status"] == "finished"]


def test_a_rerun_after_sigkill_releases_the_orphans_and_measures_clean(
    experiment: Callable[..., Experiment],
) -> None:
    """`greenflow run` killed with SIGKILL in MEASURE leaves its broker and producer
    running; a plain re-run releases them before deploying (warning), measures the run
    again at the asked rate (not the orphan's plus its own), and leaves nothing."""
    exp = experiment("killed", duration="8s")
    proc = exp.start("run", str(exp.plan))
    _wait_for_measure(exp, proc)
    proc.send_signal(signal.SIGKILL)
    _reap(proc)
    assert exp.kafka_processes(), "the broker and producer survive their parent's SIGKILL"
    rerun = exp.greenflow("run", str(exp.plan), timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "orphans-released" in rerun.stderr
    assert [r.status.value for r in exp.runs()] == ["finished"]
    (ratio,) = _achieved_ratios(exp)
    assert ratio == pytest.approx(1.0, abs=0.1)
    assert exp.wait_no_kafka_processes() == []


def test_a_second_run_on_the_same_output_is_refused_naming_the_first(
    experiment: Callable[..., Experiment],
) -> None:
    """While a run holds the output directory, a second `greenflow run` (or `down`) is
    refused at once with the holder's pid and host; the first finishes undisturbed."""
    exp = experiment("twice", duration="6s")
    first = exp.start("run", str(exp.plan))
    _wait_for_measure(exp, first)
    second = exp.greenflow("run", str(exp.plan), timeout=60)
    assert second.returncode == 1
    assert f"is in use by `greenflow run` (pid {first.pid} on" in second.stderr
    down = exp.greenflow("down", str(exp.plan), timeout=60)
    assert down.returncode == 1 and "is in use" in down.stderr
    err = _reap(first)
    assert first.returncode == 0, err[-3000:]
    assert [r.status.value for r in exp.runs()] == ["finished"]
    (ratio,) = _achieved_ratios(exp)
    assert ratio == pytest.approx(1.0, abs=0.1)
    assert exp.wait_no_kafka_processes() == []


def test_sighup_tears_down_like_sigterm(experiment: Callable[..., Experiment]) -> None:
    """SIGHUP (a closed terminal, a dropped SSH session) in MEASURE: the run is stored
    aborted, nothing is left running, and a re-run resumes and finishes it."""
    exp = experiment("hangup", duration="8s")
    proc = exp.start("run", str(exp.plan))
    _wait_for_measure(exp, proc)
    proc.send_signal(signal.SIGHUP)
    _reap(proc)
    assert proc.returncode == 130
    assert [r.status.value for r in exp.runs()] == ["aborted"]
    assert exp.wait_no_kafka_processes() == []
    rerun = exp.greenflow("run", str(exp.plan), timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert [r.status.value for r in exp.runs()] == ["finished"]


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 200 MiB tmpfs mounted for the test (root only), unmounted after."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount = tmp_path / "small"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=200m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_file_system_does_not_stop_the_teardown(
    experiment: Callable[..., Experiment], small_tmpfs: Path
) -> None:
    """The output directory's file system fills up in MEASURE: the run is not stored as
    finished, the producer and the broker are stopped anyway (teardown goes on without
    the store), and once space is freed `greenflow down` works."""
    exp = experiment("full", duration="10s")
    output = small_tmpfs / "out"
    exp.plan.write_text(exp.plan.read_text().replace(str(exp.output), str(output)))
    exp = Experiment(exp.root, exp.plan, output)
    proc = exp.start("run", str(exp.plan))
    _wait_for_measure(exp, proc)
    filler = small_tmpfs / "filler"
    subprocess.run(
        ["dd", "if=/dev/zero", f"of={filler}", "bs=1M"], capture_output=True, check=False
    )
    err = _reap(proc)
    assert proc.returncode != 0
    left = exp.wait_no_kafka_processes(grace_s=30)
    filler.unlink()
    assert left == [], err[-3000:]
    assert "finished" not in [r.status.value for r in exp.runs()]
    down = exp.greenflow("down", str(exp.plan), timeout=120)
    assert down.returncode == 0, down.stderr[-3000:]
    time.sleep(0.5)
    assert exp.kafka_processes() == []
