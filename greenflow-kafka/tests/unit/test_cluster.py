"""Cluster pieces that need no JVM: argument checks, ids, pid safety (free ports and log
tails are greenflow.api's, tested in greenflow-core)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import attrs
import pytest

from greenflow_kafka.cluster import (
    LocalKafkaCluster,
    is_greenflow_kafka_cmdline,
    kill_pids,
    random_cluster_id,
)
from greenflow_kafka.distribution import KafkaDistribution
from greenflow_kafka.errors import KafkaClusterError

DIST = KafkaDistribution(
    version="4.3.1",
    classpath=["/nonexistent/libs/*"],
    java=Path("/usr/bin/java"),
    java_version="17",
    source="maven",
    home=Path("/nonexistent"),
    libs_dir=Path("/nonexistent/libs"),
)


def test_topology_keys_cannot_be_overridden(tmp_path: Path) -> None:
    """Overriding a key the cluster derives from its topology is refused, naming the key."""
    with pytest.raises(KafkaClusterError, match=r"\['listeners', 'node.id'\]"):
        LocalKafkaCluster(
            DIST,
            tmp_path,
            tmp_path,
            overrides={"node.id": "7", "listeners": "x", "num.io.threads": "2"},
        )


def test_at_least_one_broker(tmp_path: Path) -> None:
    """A cluster of zero brokers is refused before anything starts."""
    with pytest.raises(KafkaClusterError, match="at least 1 broker"):
        LocalKafkaCluster(DIST, tmp_path, tmp_path, brokers=0)


def test_unstarted_cluster_says_so(tmp_path: Path) -> None:
    """Asking an unstarted cluster for its endpoint is an error; stopping it is a no-op."""
    cluster = LocalKafkaCluster(DIST, tmp_path, tmp_path)
    with pytest.raises(KafkaClusterError, match="call start"):
        _ = cluster.bootstrap_servers
    assert cluster.stop() == {}
    assert cluster.pids() == [] and not cluster.is_alive()


def test_cluster_ids_look_like_kafka_uuids() -> None:
    """Cluster ids are 22 URL-safe base64 characters, never starting with '-'."""
    ids = {random_cluster_id() for _ in range(200)}
    assert len(ids) == 200
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{22}", i) and not i.startswith("-") for i in ids)


def test_marker_recognises_only_our_java() -> None:
    """Only a java command line carrying the greenflow marker counts as ours."""
    assert is_greenflow_kafka_cmdline(
        ["/usr/bin/java", "-Dgreenflow.kafka.process=broker-0", "kafka.Kafka"]
    )
    assert not is_greenflow_kafka_cmdline(["/usr/bin/java", "kafka.Kafka"])
    assert not is_greenflow_kafka_cmdline(["/bin/sleep", "-Dgreenflow.kafka.process=broker-0"])
    assert not is_greenflow_kafka_cmdline([])


def test_kill_pids_leaves_foreign_processes_alone() -> None:
    """A recorded pid now held by another program (pid reuse) is not signalled."""
    proc = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)", "-Dgreenflow.kafka.process=x"]
    )
    try:
        assert kill_pids([proc.pid, 2**22 + 12345], timeout_s=1) == []
        assert proc.poll() is None
    finally:
        proc.kill()
        proc.wait()


def test_missing_java_at_start_is_a_cluster_error(tmp_path: Path) -> None:
    """If the recorded java vanished, start() says which step could not run, and stop() is clean."""
    gone = attrs.evolve(DIST, java=tmp_path / "no-such-jdk" / "bin" / "java")
    cluster = LocalKafkaCluster(gone, tmp_path / "work", tmp_path / "logs")
    with pytest.raises(KafkaClusterError, match="could not start the storage format of broker-0"):
        cluster.start()
    assert cluster.pids() == []
    assert cluster.stop() == {}
