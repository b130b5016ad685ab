"""`greenflow run` of kafka-ingest plans as a real subprocess against real brokers: counts,
energy attribution, topic clean-up, a broker killed mid-MEASURE, Ctrl-C, and 3 brokers."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import psutil
import pytest

from greenflow.store import Store
from greenflow.store.db import RunRow
from greenflow_kafka.admin import AdminSession
from greenflow_kafka.cluster import PROCESS_MARKER, is_greenflow_kafka_cmdline
from greenflow_kafka.distribution import KafkaDistribution

LOAD = 1000
PLAN = """\
[experiment]
name = "{name}"
repetitions = {repetitions}
seed = 7
output = "{output}"
on_error = "continue"
baseline = "1s"
cooldown = "0s"

[platform]
type = "local"

[[services]]
type = "kafka"
version = "{version}"
brokers = {brokers}
heap = "{heap}"

[workload]
type = "kafka-ingest"
load = {load}
message_size = 1024
replication = {replication}
warmup = "{warmup}"
duration = "{duration}"
tail = "1s"
producer_heap = "256m"
"""


@attrs.frozen
class Experiment:
    """A plan written under a test's tmp_path and its results directory."""

    root: Path
    plan: Path
    output: Path

    def greenflow(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "greenflow", *args],
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def start(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "greenflow", *args],
            cwd=self.root,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def runs(self) -> list[RunRow]:
        with Store.open(self.output, create=False) as store:
            return [r for e in store.experiments() for r in store.get_runs(e.id)]

    def kafka_processes(self) -> list[str]:
        """Greenflow Kafka JVMs (brokers, controllers, producers) started for this experiment."""
        run_ids = (
            [f"greenflow-{r.run_id}" for r in self.runs()]
            if (self.output / "greenflow.sqlite").exists()
            else []
        )
        found = []
        for p in psutil.process_iter(["pid", "cmdline"]):
            cmd = p.info["cmdline"] or []
            if not is_greenflow_kafka_cmdline(cmd):
                continue
            text = " ".join(cmd)
            if str(self.root) in text or any(t in text for t in run_ids):
                found.append(
                    f"pid {p.info['pid']}: {next(a for a in cmd if a.startswith(PROCESS_MARKER))}"
                )
        return found

    def wait_no_kafka_processes(self, grace_s: float = 15.0) -> list[str]:
        deadline = time.monotonic() + grace_s
        while (left := self.kafka_processes()) and time.monotonic() < deadline:
            time.sleep(0.2)
        return left


@pytest.fixture
def experiment(tmp_path: Path, kafka_distribution: KafkaDistribution) -> Callable[..., Experiment]:
    """Writes a kafka-ingest plan under tmp_path; keyword arguments fill the template."""

    def write(name: str, **kw: Any) -> Experiment:
        values: dict[str, Any] = {
            "name": name,
            "repetitions": 1,
            "output": str(tmp_path / "out"),
            "version": kafka_distribution.version,
            "brokers": 1,
            "heap": "384m",
            "load": LOAD,
            "replication": 1,
            "warmup": "1s",
            "duration": "3s",
        }
        values.update(kw)
        plan = tmp_path / "plan.toml"
        plan.write_text(PLAN.format(**values))
        return Experiment(tmp_path, plan, tmp_path / "out")

    return write


def _output(proc: subprocess.CompletedProcess[str] | Any) -> str:
    return f"exit {proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"


def _latest_phase(run: RunRow) -> str | None:
    return max(run.phases, key=lambda p: run.phases[p]) if run.phases else None


def _wait_for_measure(
    exp: Experiment, proc: subprocess.Popen[str], timeout_s: float = 120
) -> RunRow:
    """Poll the store (WAL: safe to read while the runner writes) until a run is in MEASURE."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.poll() is None:
        if (exp.output / "greenflow.sqlite").exists():
            for run in exp.runs():
                if _latest_phase(run) == "measure":
                    return run
        time.sleep(0.1)
    raise AssertionError(
        f"no run reached MEASURE within {timeout_s:g}s (greenflow exit {proc.poll()})"
    )


# -- a 1-broker experiment brought up, run twice and brought down ----------------------------


@attrs.frozen
class UpRunDown:
    exp: Experiment
    up: subprocess.CompletedProcess[str]
    run: subprocess.CompletedProcess[str]
    down: subprocess.CompletedProcess[str]
    runs: list[RunRow]
    results: dict[str, Any]
    metrics: dict[str, list[Any]]
    topics_after_run: list[str]
    processes_after_down: list[str]


@pytest.fixture(scope="module")
def up_run_down(
    tmp_path_factory: pytest.TempPathFactory, kafka_distribution: KafkaDistribution
) -> Iterator[UpRunDown]:
    """`greenflow up`, `greenflow run` (2 runs) against the broker left up, list its topics,
    then `greenflow down`."""
    root = tmp_path_factory.mktemp("up-run-down")
    exp = Experiment(root, root / "plan.toml", root / "out")
    exp.plan.write_text(
        PLAN.format(
            name="ingest-two-runs",
            repetitions=2,
            output=str(exp.output),
            version=kafka_distribution.version,
            brokers=1,
            heap="384m",
            load=LOAD,
            replication=1,
            warmup="1s",
            duration="3s",
        )
    )
    up = exp.greenflow("up", str(exp.plan))
    try:
        assert up.returncode == 0, _output(up)
        run = exp.greenflow("run", str(exp.plan))
        with Store.open(exp.output, create=False) as store:
            (row,) = store.experiments()
            state = {
                s["name"]: s["state"] for s in store.live_state(row.id) if s["kind"] == "service"
            }
            runs = store.get_runs(row.id)
            results = {r.run_id: store.result(r.run_id) for r in runs}
            metrics = {r.run_id: store.metrics(r.run_id) for r in runs}
        assert "kafka" in state, (
            f"the broker was not left up after `greenflow run`: {state}\n{_output(run)}"
        )
        with AdminSession(state["kafka"]["bootstrap_servers"]) as session:
            topics = sorted(
                t
                for t in session.client.list_topics(timeout=10).topics
                if t.startswith("greenflow-")
            )
    finally:
        down = exp.greenflow("down", str(exp.plan))
    yield UpRunDown(
        exp, up, run, down, runs, results, metrics, topics, exp.wait_no_kafka_processes()
    )


def test_two_runs_finish_against_a_broker_left_up(up_run_down: UpRunDown) -> None:
    """Both runs of a 1-broker plan finish and `greenflow run` exits 0."""
    res = up_run_down
    assert res.run.returncode == 0, _output(res.run)
    assert [r.status.value for r in res.runs] == ["finished", "finished"], [
        (r.status, r.error) for r in res.runs
    ]
    assert "Traceback" not in res.run.stderr


def test_messages_in_measure_match_the_asked_load(up_run_down: UpRunDown) -> None:
    """Messages counted in MEASURE are within 10 % of load × the measured MEASURE duration."""
    for run in up_run_down.runs:
        result = up_run_down.results[run.run_id]
        window = run.window("measure")
        assert result is not None and window is not None, (
            f"run {run.run_id}: no result or MEASURE window"
        )
        assert result.unit == "message"
        expected = LOAD * window.duration_s
        assert abs(result.units - expected) <= 0.1 * expected, (
            f"run {run.run_id}: {result.units:g} messages in a {window.duration_s:.2f}s MEASURE, "
            f"expected {expected:.0f} ± 10 % at {LOAD} msg/s"
        )
        assert result.achieved_rate == pytest.approx(result.units / window.duration_s, rel=0.01)


def test_energy_is_attributed_to_the_broker_and_the_load_generator(up_run_down: UpRunDown) -> None:
    """Each run stores energy per message (rapl or a model) and energy for service:kafka and loadgen."""
    for run in up_run_down.runs:
        metrics = up_run_down.metrics[run.run_id]
        per_message = [
            m
            for m in metrics
            if m.name == "energy_per_message_joules" and m.labels.get("scope") == "host"
        ]
        assert per_message, (
            f"run {run.run_id}: no host energy_per_message_joules in {[m.name for m in metrics]}"
        )
        for m in per_message:
            assert m.method == "rapl" or m.method.startswith("model:"), m
            assert m.value > 0
        energy = {
            (m.labels.get("scope"), m.labels.get("group")): m
            for m in metrics
            if m.name == "energy_joules"
        }
        assert ("service", "service:kafka") in energy, sorted(energy, key=str)
        assert ("loadgen", "loadgen:kafka-ingest") in energy, sorted(energy, key=str)
        # Attributed energy is a CPU share of the *active* energy (host minus idle), which
        # is reported raw and may be slightly negative when the run was barely busier than
        # the baseline: a share has the sign of the active energy it divides.
        (active,) = [
            m.value
            for m in metrics
            if m.name == "active_energy_joules" and m.labels.get("scope") == "host"
        ]
        for key in (("service", "service:kafka"), ("loadgen", "loadgen:kafka-ingest")):
            assert energy[key].value * active >= 0, (energy[key], active)
            assert abs(energy[key].value) <= abs(active) + 1e-9


def test_each_runs_topic_is_deleted_after_the_run(up_run_down: UpRunDown) -> None:
    """After `greenflow run` against a broker left up, no greenflow-<run_id> topic remains on it."""
    run_topics = {f"greenflow-{r.run_id}" for r in up_run_down.runs}
    assert not run_topics & set(up_run_down.topics_after_run), up_run_down.topics_after_run


def test_down_leaves_no_kafka_process(up_run_down: UpRunDown) -> None:
    """`greenflow down` after `up` + `run` stops every Kafka JVM of the experiment."""
    assert up_run_down.down.returncode == 0, _output(up_run_down.down)
    assert "kafka" in up_run_down.down.stdout, _output(up_run_down.down)
    assert not up_run_down.processes_after_down


# -- failures ------------------------------------------------------------------------------


def _kill_broker_in_measure(
    exp: Experiment, proc: subprocess.Popen[str], killed: dict[str, Any]
) -> None:
    try:
        run = _wait_for_measure(exp, proc)
        for p in psutil.process_iter(["pid", "cmdline"]):
            cmd = p.info["cmdline"] or []
            if f"{PROCESS_MARKER}broker-0" in cmd and str(exp.root) in " ".join(cmd):
                p.send_signal(signal.SIGKILL)
                killed.update(run_id=run.run_id, pid=p.info["pid"])
                return
        killed["error"] = "no broker-0 JVM of this experiment found"
    except BaseException as exc:  # reported by the test
        killed["error"] = repr(exc)


def test_broker_killed_in_measure_fails_that_run_and_the_next_one_finishes(
    experiment: Callable[..., Experiment],
) -> None:
    """SIGKILL of the broker mid-MEASURE fails that run naming the service; the runner redeploys
    and the other run finishes; exit code 1 and no Kafka JVM left."""
    exp = experiment("broker-killed", repetitions=2)
    proc = exp.start("run", str(exp.plan))
    killed: dict[str, Any] = {}
    watcher = threading.Thread(
        target=_kill_broker_in_measure, args=(exp, proc, killed), daemon=True
    )
    watcher.start()
    try:
        stdout, stderr = proc.communicate(timeout=200)
    finally:
        if proc.poll() is None:
            proc.kill()
    watcher.join(5)
    out = f"exit {proc.returncode}\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    assert "run_id" in killed, f"{killed}\n{out}"
    assert proc.returncode == 1, out
    runs = {r.run_id: r for r in exp.runs()}
    victim = runs.pop(killed["run_id"])
    assert victim.status.value == "failed", (victim.status, victim.error)
    assert victim.error and ("kafka" in victim.error.lower() or "broker" in victim.error.lower()), (
        victim.error
    )
    (other,) = runs.values()
    assert other.status.value == "finished", (other.status, other.error)
    assert "Traceback" not in stderr
    assert not exp.wait_no_kafka_processes()


def test_sigint_in_measure_leaves_no_java_process(experiment: Callable[..., Experiment]) -> None:
    """SIGINT during MEASURE makes `greenflow run` exit 130 with every Kafka JVM gone."""
    exp = experiment("interrupted", duration="10s")
    proc = exp.start("run", str(exp.plan))
    try:
        _wait_for_measure(exp, proc)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, f"exit {proc.returncode}\n{stdout}\n{stderr}"
    (run,) = exp.runs()
    assert run.status.value == "aborted", (run.status, run.error)
    assert not exp.wait_no_kafka_processes(grace_s=5)


def test_three_brokers_with_replication_three_finish_a_run(
    experiment: Callable[..., Experiment],
) -> None:
    """A 3-broker service (replication 3, 256m heaps) runs one short run to finished."""
    exp = experiment("three-brokers", brokers=3, replication=3, heap="256m")
    proc = exp.greenflow("run", str(exp.plan), timeout=200)
    assert proc.returncode == 0, _output(proc)
    (run,) = exp.runs()
    assert run.status.value == "finished", (run.status, run.error)
    assert not exp.wait_no_kafka_processes()
