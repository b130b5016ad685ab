"""Real Kafka JVMs on loopback: start, produce with Kafka's perf tool, count, stop, recover.

Heaps are kept small (256 MiB) so a 3-broker cluster fits a 2-core, CI-sized machine.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path

import psutil
import pytest

from greenflow_kafka import admin
from greenflow_kafka.cluster import LocalKafkaCluster, kill_pids
from greenflow_kafka.distribution import KafkaDistribution
from greenflow_kafka.errors import KafkaClusterError
from greenflow_kafka.perf import run_end_to_end_latency, run_producer_perf


def _gone(pids: Iterable[int]) -> list[int]:
    """Pids from ``pids`` that still exist as live (non-zombie) processes."""
    left = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                left.append(pid)
        except psutil.NoSuchProcess:
            continue
    return left


def _java_under(path: Path) -> list[str]:
    """Processes whose command line mentions ``path`` (format tools included), as text."""
    found = []
    for proc in psutil.process_iter(["pid", "cmdline", "status"]):
        cmd = proc.info["cmdline"] or []
        if proc.info["status"] != psutil.STATUS_ZOMBIE and any(str(path) in arg for arg in cmd):
            found.append(f"{proc.info['pid']}: {' '.join(cmd)[:200]}")
    return found


def _wait_for(check: object, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():  # type: ignore[operator]  # a zero-argument callable
        assert time.monotonic() < deadline, "condition not reached before the deadline"
        time.sleep(0.1)


def test_single_broker_roundtrip(kafka_distribution: KafkaDistribution, tmp_path: Path) -> None:
    """One combined broker takes 2000 msg/s from the perf tool; offsets match its count; stop leaves nothing."""
    cluster = LocalKafkaCluster(
        kafka_distribution, tmp_path / "work", tmp_path / "logs", brokers=1, heap="256m"
    )
    try:
        t0 = time.monotonic()
        cluster.start()
        cluster.wait_ready(timeout_s=90)
        print(f"1-broker cluster ready in {time.monotonic() - t0:.1f}s")
        assert list(cluster.processes()) == ["broker-0"]
        assert cluster.is_alive() and cluster.health() is None
        bootstrap = cluster.bootstrap_servers

        admin.create_topic(bootstrap, "ingest", partitions=2, replication_factor=1)
        assert admin.topic_exists(bootstrap, "ingest")
        result = run_producer_perf(
            kafka_distribution,
            bootstrap_servers=bootstrap,
            topic="ingest",
            rate_per_s=2000,
            warmup_s=2,
            duration_s=5,
            record_size=100,
            output_path=tmp_path / "logs" / "producer-perf.out",
            heap="256m",
        )
        assert result.complete and result.output.errors == ()
        total, steady = result.output.total, result.output.steady
        assert total is not None and steady is not None
        assert (total.records, steady.records) == (14000, 10000)
        print(
            f"asked 2000 msg/s, achieved {steady.records_per_s:.1f} msg/s (p99 {steady.p99_ms} ms)"
        )
        # Kafka's throttler aims at the cumulative rate since the tool started: after a stall
        # (a first send waiting 2 s for metadata on a loaded machine) it sends faster than
        # asked until it has caught up, so the steady-state rate may exceed the asked one;
        # the whole run's rate cannot.
        assert total.records_per_s <= 2000 * 1.05, result.output
        assert steady.records_per_s >= 2000 * 0.75, result.output
        assert (
            0
            <= steady.p50_ms
            <= steady.p95_ms
            <= steady.p99_ms
            <= steady.p999_ms
            <= steady.max_latency_ms
        )

        assert admin.end_offsets(bootstrap, "ingest") == total.records

        probe = run_end_to_end_latency(
            kafka_distribution,
            bootstrap_servers=bootstrap,
            topic="ingest",
            num_records=300,
            record_size=100,
            output_path=tmp_path / "logs" / "e2e.out",
        )
        assert 0 <= probe.p50_ms <= probe.p99_ms <= probe.p999_ms and probe.avg_ms > 0
        print(
            f"end-to-end latency over 300 records: avg {probe.avg_ms:.2f} ms, p99 {probe.p99_ms} ms"
        )
        assert admin.end_offsets(bootstrap, "ingest") == total.records + 300
        admin.delete_topic(bootstrap, "ingest")
        assert not admin.topic_exists(bootstrap, "ingest")
    finally:
        pids = cluster.pids()
        codes = cluster.stop()
    assert codes == {"broker-0": 143}  # the JVM's exit after a handled SIGTERM: a clean stop
    assert _gone(pids) == []
    assert _java_under(tmp_path) == []
    assert not (tmp_path / "work" / "broker-0" / "data").exists()
    assert cluster.stop() == codes  # idempotent


def test_three_brokers_replicate_detect_a_killed_broker_and_stop(
    kafka_distribution: KafkaDistribution, tmp_path: Path
) -> None:
    """A controller and 3 brokers start, hold an RF=3 topic, report a broker killed by kill_pids, and stop."""
    cluster = LocalKafkaCluster(
        kafka_distribution, tmp_path / "work", tmp_path / "logs", brokers=3, heap="256m"
    )
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        t0 = time.monotonic()
        cluster.start()
        cluster.wait_ready(timeout_s=150)
        print(f"3-broker cluster ready in {time.monotonic() - t0:.1f}s")
        procs = cluster.processes()
        assert sorted(procs) == ["broker-0", "broker-1", "broker-2", "controller-0"]
        assert len(cluster.bootstrap_servers.split(",")) == 3

        admin.create_topic(
            cluster.bootstrap_servers, "replicated", partitions=3, replication_factor=3
        )
        with pytest.raises(Exception, match="INVALID_REPLICATION_FACTOR"):
            admin.create_topic(cluster.bootstrap_servers, "too-wide", replication_factor=4)

        # kill_pids is what `greenflow down` uses: it must stop our broker and leave the
        # unrelated process and a pid that does not exist alone.
        victim = procs["broker-2"]
        assert kill_pids([victim, sleeper.pid, 2**22 + 4321]) == [victim]
        assert sleeper.poll() is None
        _wait_for(lambda: "broker-2" in cluster.dead_processes(), timeout_s=15)
        assert cluster.dead_processes() == {"broker-2": 143}
        assert not cluster.is_alive()
        health = cluster.health()
        assert health is not None and "broker-2" in health and "broker-2.log" in health
    finally:
        pids = cluster.pids()
        codes = cluster.stop()
        sleeper.kill()
        sleeper.wait()
    # Survivors shut down on SIGTERM within the deadline (143), none needed SIGKILL (-9).
    assert codes == {"controller-0": 143, "broker-0": 143, "broker-1": 143, "broker-2": 143}
    assert _gone(pids) == []
    assert _java_under(tmp_path) == []


def test_wait_ready_reports_a_broker_that_died(
    kafka_distribution: KafkaDistribution, tmp_path: Path
) -> None:
    """If the broker dies before it is ready, wait_ready fails at once naming it, its exit code and its log."""
    cluster = LocalKafkaCluster(
        kafka_distribution, tmp_path / "work", tmp_path / "logs", heap="256m"
    )
    try:
        cluster.start()
        os.kill(cluster.processes()["broker-0"], signal.SIGKILL)
        t0 = time.monotonic()
        with pytest.raises(KafkaClusterError) as info:
            cluster.wait_ready(timeout_s=60)
        assert time.monotonic() - t0 < 10  # noticed, not waited out
        msg = str(info.value)
        assert "broker-0 exited with code -9" in msg
        assert "waiting for 1 broker(s) [0]" in msg
        assert f"lines of {tmp_path / 'logs' / 'broker-0.log'}" in msg
        assert "kafka.Kafka" in msg  # the log tail holds at least the command line
    finally:
        cluster.stop()
    assert _java_under(tmp_path) == []


def test_bad_override_fails_formatting_with_the_tool_output(
    kafka_distribution: KafkaDistribution, tmp_path: Path
) -> None:
    """An invalid server property stops start() at the storage format step, quoting Kafka's complaint."""
    cluster = LocalKafkaCluster(
        kafka_distribution,
        tmp_path / "work",
        tmp_path / "logs",
        overrides={"num.partitions": "many"},
    )
    with pytest.raises(KafkaClusterError) as info:
        cluster.start()
    msg = str(info.value)
    assert "formatting the storage of Kafka broker-0" in msg
    assert "num.partitions" in msg
    assert cluster.pids() == []
    cluster.stop()
    assert _java_under(tmp_path) == []
