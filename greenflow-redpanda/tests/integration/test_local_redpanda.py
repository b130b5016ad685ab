"""The ``redpanda`` service on the local platform, with a SIMULATED redpanda binary.

No real Redpanda binary can be installed here, so every test puts
``tests/fake_redpanda/redpanda`` on PATH as ``redpanda``: the redpanda *process* is simulated
(it checks the command line and redpanda.yaml GreenFlow wrote against Redpanda's options and
node-configuration schema, and serves the Admin API's /v1/status/ready), while the Kafka API
behind it is a REAL Apache Kafka broker (KRaft, from the cached Kafka jars) on the configured
``kafka_api`` address. What these tests show is GreenFlow's side: the files and flags, the
process handling (readiness, failure, TERM→KILL, nothing left running), the bootstrap address
and the energy attribution of a real ``greenflow run``; not Redpanda's own behaviour.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import yaml

from greenflow.api import Host, Inventory
from greenflow.builtin.local import LocalConfig, LocalPlatform
from greenflow.errors import ServiceError
from greenflow.testing import make_deploy_context
from greenflow.testing.cli import run_greenflow
from greenflow_kafka import AdminSession
from greenflow_redpanda.service import RedpandaConfig, RedpandaService


def processes_under(root: Path) -> list[str]:
    """Live processes whose command line names a path under ``root`` (the simulated brokers,
    the Kafka JVMs behind them, producers)."""
    found = []
    for p in psutil.process_iter(["pid", "cmdline", "status"]):
        if p.info["status"] == psutil.STATUS_ZOMBIE or p.info["pid"] == os.getpid():
            continue
        cmd = " ".join(p.info["cmdline"] or [])
        if str(root) in cmd:
            found.append(f"pid {p.info['pid']}: {cmd[:160]}")
    return found


def wait_gone(root: Path, grace_s: float = 10.0) -> list[str]:
    deadline = time.monotonic() + grace_s
    while (left := processes_under(root)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


@pytest.fixture
def deploy(tmp_path: Path) -> Iterator[Callable[..., tuple[RedpandaService, list[Any]]]]:
    """Deploys a local redpanda service under tmp_path/ctx; removes whatever it deployed."""
    made: list[RedpandaService] = []

    def run(**config: Any) -> tuple[RedpandaService, list[Any]]:
        states: list[Any] = []
        svc = RedpandaService("redpanda", RedpandaConfig(**config))
        made.append(svc)
        ctx = make_deploy_context(tmp_path / "ctx", record_state=states.append)
        svc.deploy(
            LocalPlatform(LocalConfig()), Inventory([Host("here", "127.0.0.1", ["broker"])]), ctx
        )
        return svc, states

    yield run
    for svc in made:
        svc.remove()


def test_two_brokers_start_get_ready_and_stop_leaving_nothing(
    tmp_path: Path, fake_redpanda: Path, deploy: Any
) -> None:
    """Two brokers start from their own redpanda.yaml, become ready, show both node ids in the
    Kafka metadata of the bootstrap address, are named for attribution, and removal stops
    every process (the simulated brokers and the Kafka JVMs behind them) and their data."""
    svc, states = deploy(brokers=2, write_caching=True)
    assert states and states[-1]["local"] is True
    svc.wait_ready(120)
    bootstrap = svc.endpoints()["bootstrap"]
    assert len(bootstrap.split(",")) == 2
    with AdminSession(bootstrap) as session:
        assert set(session.client.list_topics(timeout=10).brokers) == {0, 1}
    groups = svc.processes()
    assert sorted(groups) == ["broker-0", "broker-1"]
    for (pid,) in groups.values():
        proc = psutil.Process(pid)
        assert proc.is_running()
        # The broker's own children (here the Kafka JVM) are counted with it.
        assert proc.children(recursive=True)
    work = tmp_path / "ctx" / "work" / "redpanda"
    config = yaml.safe_load((work / "broker-1" / "redpanda.yaml").read_text())
    assert config["redpanda"]["node_id"] == 1
    assert yaml.safe_load((work / "broker-1" / ".bootstrap.yaml").read_text()) == {
        "write_caching_default": "true"
    }
    facts = svc.describe()
    assert facts["platform"] == "local" and "fake" in facts["version"]
    assert svc.health() is None
    # Each broker's own /public_metrics, for a Prometheus the user points at this file.
    targets = json.loads(Path(facts["metrics"]["prometheus_file_sd"]).read_text())
    admin_ports = [
        yaml.safe_load((work / f"broker-{i}" / "redpanda.yaml").read_text())["redpanda"]["admin"][
            0
        ]["port"]
        for i in (0, 1)
    ]
    assert [t["targets"] for t in targets] == [[f"127.0.0.1:{p}"] for p in admin_ports]
    assert [t["labels"] for t in targets] == [
        {"service": "redpanda", "process": f"broker-{i}", "__metrics_path__": "/public_metrics"}
        for i in (0, 1)
    ]

    svc.remove()
    assert not wait_gone(tmp_path)
    assert not (work / "broker-0" / "data").exists()
    log = (tmp_path / "ctx" / "logs" / "redpanda" / "broker-0.log").read_text()
    assert log.startswith(f"$ {fake_redpanda / 'redpanda'} --redpanda-cfg ")
    assert "Shutdown complete" in log
    svc.remove()  # idempotent


def test_a_broker_that_fails_to_start_is_reported_with_its_log_tail(
    tmp_path: Path, fake_redpanda: Path, deploy: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When broker-1 exits at startup, wait_ready fails at once naming it, its exit code and
    the end of its log, and removal leaves broker-0 and its JVM stopped too."""
    monkeypatch.setenv("GREENFLOW_FAKE_REDPANDA_FAIL_NODE", "1")
    svc, _ = deploy(brokers=2)
    started = time.monotonic()
    with pytest.raises(ServiceError) as err:
        svc.wait_ready(120)
    assert time.monotonic() - started < 60
    message = str(err.value)
    assert "Redpanda broker-1 exited with code 1" in message
    assert "broker-1.log" in message
    assert "Failure during startup" in message
    assert "broker-1" in (svc.health() or "")
    svc.remove()
    assert not wait_gone(tmp_path)


def test_down_stops_brokers_left_up_from_their_recorded_state(
    tmp_path: Path, fake_redpanda: Path, deploy: Any
) -> None:
    """A broker left up (detached, as by `greenflow up`) is attached to from its recorded
    state, and removing that state (`greenflow down`) stops it and its JVM."""
    svc, states = deploy(brokers=1)
    svc.wait_ready(120)
    svc.detach()
    state = states[-1]
    again = RedpandaService.attach("redpanda", RedpandaConfig(), state)
    assert again is not None
    assert again.endpoints() == svc.endpoints()
    assert again.processes() == svc.processes()
    assert again.health() is None
    RedpandaService.remove_recorded(RedpandaConfig(), state)
    assert not wait_gone(tmp_path)
    assert RedpandaService.attach("redpanda", RedpandaConfig(), state) is None


def test_a_broker_that_ignores_sigterm_is_killed_at_the_deadline(
    tmp_path: Path, fake_redpanda: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A broker that does not exit on SIGTERM is SIGKILLed when the stop deadline passes,
    and nothing of it is left."""
    import shutil

    from greenflow_redpanda.local import LocalRedpandaCluster, LocalRedpandaSpec

    monkeypatch.setenv("GREENFLOW_FAKE_REDPANDA_IGNORE_TERM", "1")
    binary = shutil.which("redpanda")
    assert binary == str(fake_redpanda / "redpanda")
    cluster = LocalRedpandaCluster(
        LocalRedpandaSpec(binary=binary), tmp_path / "work", tmp_path / "logs"
    )
    cluster.start()
    try:
        cluster.wait_ready(120)
        started = time.monotonic()
        codes = cluster.stop(timeout_s=3)
        took = time.monotonic() - started
    finally:
        cluster.stop()
    assert codes == {"broker-0": -9}
    assert 3 <= took < 20
    assert not wait_gone(tmp_path)


PLAN = """\
[experiment]
name = "local-redpanda"
repetitions = 1
seed = 7
output = "{output}"
baseline = "1s"
cooldown = "0s"

[platform]
type = "local"

[[services]]
type = "redpanda"
brokers = 1

[workload]
type = "kafka-ingest"
target = "redpanda"
load = 500
message_size = 512
warmup = "1s"
duration = "{duration}"
tail = "1s"
producer_heap = "256m"
# These tests check GreenFlow's side of a run, not how fast this (shared) host is.
min_achieved_ratio = 0.0
"""


def _output(proc: subprocess.CompletedProcess[str]) -> str:
    return f"exit {proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"


def test_greenflow_run_against_local_redpanda_stores_joules_per_message(
    tmp_path: Path, fake_redpanda: Path
) -> None:
    """A real `greenflow run` of a local plan with kafka-ingest targeting redpanda finishes
    its run, stores messages, energy per message and energy for service:redpanda, and leaves
    no process behind."""
    from greenflow.store import Store

    plan = tmp_path / "plan.toml"
    plan.write_text(PLAN.format(output=tmp_path / "out", duration="3s"))
    proc = run_greenflow(tmp_path, "run", str(plan))
    assert proc.returncode == 0, _output(proc)
    with Store.open(tmp_path / "out", create=False) as store:
        (exp,) = store.experiments()
        (run,) = store.get_runs(exp.id)
        result = store.result(run.run_id)
        metrics = store.metrics(run.run_id)
    assert run.status.value == "finished", (run.status, run.error)
    assert result is not None and result.unit == "message" and result.units > 0
    per_message = [
        m
        for m in metrics
        if m.name == "energy_per_message_joules" and m.labels.get("scope") == "host"
    ]
    assert per_message and all(m.value > 0 for m in per_message), [m.name for m in metrics]
    groups = {m.labels.get("group") for m in metrics if m.name == "energy_joules"}
    assert "service:redpanda" in groups, groups
    assert not wait_gone(tmp_path)


def test_greenflow_run_without_a_redpanda_binary_says_what_to_install(tmp_path: Path) -> None:
    """Without a redpanda on PATH, `greenflow run` of a local plan fails at deploy with the
    install hint, no traceback, and starts nothing."""
    path = os.pathsep.join(
        d
        for d in os.environ.get("PATH", "").split(os.pathsep)
        if d and not (Path(d) / "redpanda").exists()
    )
    plan = tmp_path / "plan.toml"
    plan.write_text(PLAN.format(output=tmp_path / "out", duration="3s"))
    proc = run_greenflow(tmp_path, "run", str(plan), env={**os.environ, "PATH": path})
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0, _output(proc)
    assert "needs a `redpanda` binary on PATH" in text, _output(proc)
    assert "Traceback" not in text
    assert not processes_under(tmp_path)


def test_validate_says_what_to_install_before_any_run(tmp_path: Path, fake_redpanda: Path) -> None:
    """`greenflow validate` of a local plan names the missing binary, the [[services]] table
    and the install hint (exit 1, no traceback); with the binary on PATH the plan is ok."""
    without = os.pathsep.join(
        d
        for d in os.environ.get("PATH", "").split(os.pathsep)
        if d and not (Path(d) / "redpanda").exists()
    )
    plan = tmp_path / "plan.toml"
    plan.write_text(PLAN.format(output=tmp_path / "out", duration="3s"))
    refused = run_greenflow(tmp_path, "validate", str(plan), env={**os.environ, "PATH": without})
    text = refused.stdout + refused.stderr
    assert refused.returncode == 1, _output(refused)
    assert "plan.toml [services.0]: service 'redpanda'" in text, text
    assert "needs a `redpanda` binary on PATH" in text, text
    assert "linux.pkg.redpanda.com" in text and "Traceback" not in text
    accepted = run_greenflow(
        tmp_path,
        "validate",
        str(plan),
        env={**os.environ, "PATH": os.pathsep.join([str(fake_redpanda), without])},
    )
    assert accepted.returncode == 0, _output(accepted)
    assert "ok" in accepted.stdout


def test_ctrl_c_during_measure_leaves_no_redpanda_process(
    tmp_path: Path, fake_redpanda: Path
) -> None:
    """SIGINT during MEASURE makes `greenflow run` exit 130 with the run aborted and every
    broker process (and the JVM behind it) gone."""
    from greenflow.store import Store

    plan = tmp_path / "plan.toml"
    plan.write_text(PLAN.format(output=tmp_path / "out", duration="30s"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "greenflow", "run", str(plan)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 150
        measuring = False
        while not measuring and time.monotonic() < deadline and proc.poll() is None:
            if (tmp_path / "out" / "greenflow.sqlite").exists():
                with Store.open(tmp_path / "out", create=False) as store:
                    runs = [r for e in store.experiments() for r in store.get_runs(e.id)]
                measuring = any(
                    r.phases and max(r.phases, key=lambda p: r.phases[p]) == "measure" for r in runs
                )
            time.sleep(0.2)
        assert measuring, f"no run reached MEASURE (greenflow exit {proc.poll()})"
        assert processes_under(tmp_path / "out"), "no broker process while measuring"
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, f"exit {proc.returncode}\n{stdout}\n{stderr}"
    with Store.open(tmp_path / "out", create=False) as store:
        (run,) = [r for e in store.experiments() for r in store.get_runs(e.id)]
    assert run.status.value == "aborted", (run.status, run.error)
    assert not wait_gone(tmp_path, grace_s=5)


def test_up_run_down_reuses_the_brokers_and_stops_them(tmp_path: Path, fake_redpanda: Path) -> None:
    """`greenflow up` leaves the broker running, `greenflow run` loads that same broker (its
    pid unchanged), and `greenflow down` stops it and everything behind it."""
    from greenflow.store import Store

    plan = tmp_path / "plan.toml"
    plan.write_text(PLAN.format(output=tmp_path / "out", duration="2s"))
    try:
        up = run_greenflow(tmp_path, "up", str(plan))
        assert up.returncode == 0, _output(up)
        brokers_up = sorted(p for p in processes_under(tmp_path / "out") if "redpanda-cfg" in p)
        assert len(brokers_up) == 1, brokers_up
        run = run_greenflow(tmp_path, "run", str(plan))
        assert run.returncode == 0, _output(run)
        with Store.open(tmp_path / "out", create=False) as store:
            (exp,) = store.experiments()
            (row,) = store.get_runs(exp.id)
        assert row.status.value == "finished", (row.status, row.error)
        assert (
            sorted(p for p in processes_under(tmp_path / "out") if "redpanda-cfg" in p)
            == brokers_up
        )
    finally:
        down = run_greenflow(tmp_path, "down", str(plan))
    assert down.returncode == 0, _output(down)
    assert not wait_gone(tmp_path)


def test_a_broker_that_never_answers_times_out_with_what_was_seen(tmp_path: Path) -> None:
    """A redpanda that runs but never serves its Admin API makes wait_ready raise
    ReadinessTimeout at the deadline, naming the endpoint, the last answer and the log's end;
    stop() then ends it. (The binary here is a shell script that prints and sleeps.)"""
    from greenflow.errors import ReadinessTimeout
    from greenflow_redpanda.local import LocalRedpandaCluster, LocalRedpandaSpec

    binary = tmp_path / "redpanda"
    binary.write_text("#!/bin/sh\necho 'INFO starting the controller'\nexec sleep 600\n")
    binary.chmod(0o755)
    cluster = LocalRedpandaCluster(
        LocalRedpandaSpec(binary=str(binary)), tmp_path / "work", tmp_path / "logs"
    )
    cluster.start()
    try:
        with pytest.raises(ReadinessTimeout) as err:
            cluster.wait_ready(1.5)
    finally:
        codes = cluster.stop(timeout_s=5)
    message = str(err.value)
    assert "timed out after 1.5s waiting for /v1/status/ready of broker-0" in message
    assert "Connection refused" in message
    assert "INFO starting the controller" in message
    assert codes == {"broker-0": -15}
    assert not wait_gone(tmp_path)
