"""Broker metrics without a JVM: the agent option, the pinned jar's checks, the manifests."""

from __future__ import annotations

from pathlib import Path

import pytest

from greenflow_kafka import kube
from greenflow_kafka.distribution import (
    JMX_EXPORTER_JAR_ENV,
    JMX_EXPORTER_SHA256,
    JmxExporter,
    resolve_jmx_exporter,
)
from greenflow_kafka.errors import KafkaSetupError
from greenflow_kafka.service import KafkaConfig


def _exporter(tmp_path: Path) -> JmxExporter:
    jar = tmp_path / "agent.jar"
    jar.write_bytes(b"not really a jar")
    config = tmp_path / "rules.yaml"
    config.write_text("rules: []\n")
    return JmxExporter("0.20.0", jar, config, JMX_EXPORTER_SHA256)


def test_agent_option_binds_the_given_host_or_every_address(tmp_path: Path) -> None:
    """The -javaagent option is jar=[host:]port:config, with IPv6 hosts in brackets."""
    e = _exporter(tmp_path)
    assert e.agent_option(9404) == f"-javaagent:{e.jar}=9404:{e.config}"
    assert e.agent_option(9404, "127.0.0.1") == f"-javaagent:{e.jar}=127.0.0.1:9404:{e.config}"
    assert e.agent_option(9404, "::1") == f"-javaagent:{e.jar}=[::1]:9404:{e.config}"


def test_a_given_jar_with_another_checksum_is_refused(tmp_path: Path) -> None:
    """$GREENFLOW_JMX_EXPORTER_JAR must be the pinned jar: anything else is refused, naming it."""
    jar = tmp_path / "other.jar"
    jar.write_bytes(b"something else")
    with pytest.raises(KafkaSetupError, match="SHA-256"):
        resolve_jmx_exporter(env={JMX_EXPORTER_JAR_ENV: str(jar)})


def test_without_mvn_and_a_cold_cache_the_error_says_how_to_go_on(tmp_path: Path) -> None:
    """No cached jar and no mvn: the error names Maven, metrics = false and the env variable."""
    env = {"PATH": str(tmp_path), "HOME": str(tmp_path)}
    with pytest.raises(KafkaSetupError) as err:
        resolve_jmx_exporter(cache_dir=tmp_path / "cache", env=env)
    text = str(err.value)
    assert "mvn" in text and "metrics = false" in text and JMX_EXPORTER_JAR_ENV in text


def test_metrics_are_off_unless_asked() -> None:
    """A kafka service runs its brokers as shipped unless the plan says metrics = true."""
    assert KafkaConfig().metrics is False
    assert KafkaConfig(metrics=True).metrics is True


def _spec(metrics: JmxExporter | None) -> kube.KafkaKubeSpec:
    return kube.KafkaKubeSpec(
        name="kafka",
        namespace="ns",
        version="4.3.1",
        brokers=2,
        voters=1,
        cpu="1",
        memory="2Gi",
        metrics=metrics,
    )


def test_without_metrics_the_manifests_have_no_exporter() -> None:
    """No ConfigMap, no KAFKA_OPTS, no annotations, no metrics endpoint when metrics are off."""
    spec = _spec(None)
    objects = kube.manifests(spec)
    assert [o["kind"] for o in objects] == ["Service", "StatefulSet"]
    template = objects[-1]["spec"]["template"]
    assert "annotations" not in template["metadata"]
    (container,) = template["spec"]["containers"]
    assert "KAFKA_OPTS" not in {e["name"] for e in container["env"]}
    assert spec.metrics_targets == []


def test_a_changed_rule_set_changes_the_pod_template(tmp_path: Path) -> None:
    """The pod template carries a hash of the exporter's ConfigMap, so new rules roll the pods."""
    e = _exporter(tmp_path)
    first = kube.statefulset(_spec(e))["spec"]["template"]["metadata"]["annotations"]
    e.config.write_text("rules: [{pattern: '.*'}]\n")
    second = kube.statefulset(_spec(e))["spec"]["template"]["metadata"]["annotations"]
    assert first[kube.METRICS_HASH_ANNOTATION] != second[kube.METRICS_HASH_ANNOTATION]
    assert first["prometheus.io/port"] == str(kube.METRICS_PORT)
