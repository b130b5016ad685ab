"""Broker metrics of the ``kafka`` service (``metrics = true``) through the Prometheus JMX
exporter's java agent, with real parts.

Local: a real Kafka 4.x broker (cached jars, see conftest) runs the real agent jar (0.20.0
from Maven Central, cached); its ``/metrics`` is read over HTTP, and a real Prometheus
(Debian's ``prometheus``, skipped without it) scrapes it through the ``file_sd`` targets
file the service writes and answers PromQL.

Kubernetes: a real kube-apiserver + etcd (``bash scripts/kube-apiserver``; skipped without
it). Only the API server runs — no kubelet, so no broker starts in a pod and nothing serves
``/metrics`` there; what is proved is that the API server accepts the ConfigMap holding the
real jar's bytes (and refuses one of 1.0.1's size), the StatefulSet that mounts it and a pod
made from its template (the test plays the StatefulSet controller), and that teardown
leaves nothing.
"""

from __future__ import annotations

import base64
import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from greenflow.api import Platform
from greenflow.api.prometheus import PROMETHEUS_TARGETS_FILE
from greenflow.testing import make_deploy_context
from greenflow.testing.prometheus import INSTALL_HINT, PrometheusServer, find_prometheus
from greenflow_kafka import admin
from greenflow_kafka.distribution import (
    JMX_EXPORTER_VERSION,
    JmxExporter,
    KafkaDistribution,
    resolve_jmx_exporter,
)
from greenflow_kafka.errors import KafkaSetupError
from greenflow_kafka.service import KafkaConfig, KafkaService

MESSAGES_IN = "kafka_server_brokertopicmetrics_messagesin_total"


@pytest.fixture(scope="module")
def exporter() -> JmxExporter:
    try:
        return resolve_jmx_exporter()
    except KafkaSetupError as exc:
        pytest.skip(f"no JMX exporter agent here: {exc}")


@pytest.fixture(scope="module")
def broker(
    kafka_distribution: KafkaDistribution,
    exporter: JmxExporter,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[KafkaService]:
    """One real broker deployed by the ``kafka`` service with ``metrics = true`` on the local
    platform, shared by the local tests (each uses its own topic)."""
    from greenflow.plugins import Kind, load

    tmp_path = tmp_path_factory.mktemp("kafka-metrics")
    platform_cls = load(Kind.PLATFORM, "local", where="test_broker_metrics")
    platform: Platform = platform_cls(platform_cls.Config())
    inventory = platform.acquire(make_deploy_context(tmp_path / "platform"))
    svc = KafkaService(
        "kafka",
        KafkaConfig(version=kafka_distribution.version, brokers=1, heap="384m", metrics=True),
    )
    try:
        svc.deploy(platform, inventory, make_deploy_context(tmp_path / "service"))
        svc.wait_ready(120)
        yield svc
    finally:
        svc.remove()
        platform.release()


def _scrape(target: str) -> dict[str, float]:
    """``/metrics`` of ``target`` as {series with labels: value} (comments dropped)."""
    with urllib.request.urlopen(f"http://{target}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    series: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            series[name.replace(",}", "}")] = float(value)
    return series


def _produce(bootstrap: str, topic: str, count: int, *, rate_per_s: float | None = None) -> None:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    start = time.monotonic()
    for i in range(count):
        if rate_per_s is not None:
            ahead = start + i / rate_per_s - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
        producer.produce(topic, b"x" * 100)
        producer.poll(0)
    assert producer.flush(30) == 0


def test_the_broker_serves_counters_that_grow_with_produced_messages(
    broker: KafkaService,
) -> None:
    """The broker's exporter serves BrokerTopicMetrics, request and JVM series, and messages-in
    for a topic grows by exactly the number of messages produced to it."""
    (target,) = broker.endpoints()["metrics"].split(",")
    bootstrap = broker.endpoints()["bootstrap"]
    admin.create_topic(bootstrap, "metered", partitions=1, replication_factor=1)
    before = _scrape(target)
    _produce(bootstrap, "metered", 500)
    topic = f'{MESSAGES_IN}{{topic="metered"}}'
    # Kafka registers a request type's metrics when it first serves one, and the exporter
    # sees new MBeans on a later scrape: under load the first scrape can come too early.
    deadline = time.monotonic() + 15
    while True:
        after = _scrape(target)
        produced = any('request="Produce"' in k for k in after) and after.get(topic) == 500
        if produced or time.monotonic() > deadline:
            break
        time.sleep(0.5)

    assert before.get(topic, 0.0) == 0.0
    assert after[topic] == 500
    assert after[MESSAGES_IN] >= before.get(MESSAGES_IN, 0.0) + 500
    bytes_in = 'kafka_server_brokertopicmetrics_bytesin_total{topic="metered"}'
    assert after[bytes_in] > 500 * 100  # payload plus record-batch overhead
    assert "kafka_server_brokertopicmetrics_bytesout_total" in after
    produce = [
        k
        for k in after
        if k.startswith("kafka_network_requestmetrics_requests_total{") and 'request="Produce"' in k
    ]
    assert produce and sum(after[k] for k in produce) >= 1
    assert 'kafka_network_requestmetrics_totaltime_ms{quantile="0.99",request="Produce"}' in after
    assert any(k.startswith("jvm_memory_bytes_used{") for k in after)
    assert "process_cpu_seconds_total" in after
    assert after["jmx_scrape_error"] == 0
    # Only the MBeans named in the rules are read (no per-partition kafka.log series).
    assert not any(k.startswith("kafka_log_") for k in after)


def test_describe_and_state_record_the_metrics_endpoint(broker: KafkaService) -> None:
    """describe() names the agent, its version and each JVM's target, and the service writes
    a Prometheus file_sd file listing them."""
    facts = broker.describe()["metrics"]
    assert facts["exporter"] == "jmx_prometheus_javaagent"
    assert facts["version"] == JMX_EXPORTER_VERSION
    assert facts["targets"] == {"broker-0": broker.endpoints()["metrics"]}
    groups = json.loads(Path(facts["prometheus_file_sd"]).read_text())
    assert Path(facts["prometheus_file_sd"]).name == PROMETHEUS_TARGETS_FILE
    assert groups == [
        {
            "targets": [broker.endpoints()["metrics"]],
            "labels": {"service": "kafka", "process": "broker-0"},
        }
    ]


def test_prometheus_scrapes_the_broker_and_promql_gives_its_messages_in_rate(
    broker: KafkaService, tmp_path: Path
) -> None:
    """A real Prometheus reading the service's file_sd file scrapes the broker every second,
    and rate() of messages-in over the producing interval is the rate produced (±30 %)."""
    binary = find_prometheus()
    if binary is None:
        pytest.skip(f"no prometheus binary; install it with: {INSTALL_HINT}")
    targets_file = broker.describe()["metrics"]["prometheus_file_sd"]
    bootstrap = broker.endpoints()["bootstrap"]
    admin.create_topic(bootstrap, "rated", partitions=1, replication_factor=1)
    job = {"job_name": "kafka", "file_sd_configs": [{"files": [targets_file]}]}
    with PrometheusServer(
        tmp_path, scrape_configs=[job], scrape_interval_s=1.0, binary=binary
    ) as prom:
        prom.wait_for_series("kafka_server_brokertopicmetrics_messagesin_total", timeout_s=30)
        rate, seconds = 1000.0, 8.0
        start = time.time()
        _produce(bootstrap, "rated", int(rate * seconds), rate_per_s=rate)
        end = time.time()
        # One more scrape after the last message, so the counter's final value is stored.
        prom.wait_for_series(
            f'{MESSAGES_IN}{{topic="rated"}} >= {int(rate * seconds)}', timeout_s=10
        )
        at = end - 1.0  # a window inside the producing interval: no ramp at its edges
        window = int(at - start - 1.0)
        (series,) = prom.query(
            f'rate({MESSAGES_IN}{{topic="rated",service="kafka",process="broker-0"}}[{window}s])',
            at=at,
        )
    got = float(series["value"][1])
    print(f"PromQL messages-in rate {got:.0f}/s over {window}s, produced at {rate:.0f}/s")
    assert 0.7 * rate <= got <= 1.3 * rate


def test_every_jvm_of_a_multi_broker_cluster_serves_its_own_metrics(
    kafka_distribution: KafkaDistribution, exporter: JmxExporter, tmp_path: Path
) -> None:
    """With 2 brokers and a dedicated controller, each of the 3 JVMs serves /metrics on its
    own port: the controller reports itself active, each broker its BrokerTopicMetrics."""
    from greenflow_kafka.cluster import LocalKafkaCluster

    with LocalKafkaCluster(
        kafka_distribution,
        tmp_path / "work",
        tmp_path / "logs",
        brokers=2,
        heap="256m",
        metrics=exporter,
    ) as cluster:
        cluster.start()
        cluster.wait_ready(120)
        targets = cluster.metrics_targets
        assert sorted(targets) == ["broker-0", "broker-1", "controller-0"]
        ports = {t.rpartition(":")[2] for t in targets.values()}
        assert len(ports) == 3
        assert not ports & {t.rpartition(":")[2] for t in cluster.bootstrap_servers.split(",")}
        assert cluster.state()["metrics_targets"] == targets
        controller = _scrape(targets["controller-0"])
        assert controller["kafka_controller_kafkacontroller_activecontrollercount"] == 1
        for broker in ("broker-0", "broker-1"):
            assert MESSAGES_IN in _scrape(targets[broker])


# -- Kubernetes: the real API server ----------------------------------------------------------

NAMESPACE = "gf-kafka-metrics-it"


def test_kube_configmap_carries_the_real_agent_jar_and_the_pods_load_it(
    cluster: Any, exporter: JmxExporter, tmp_path: Path
) -> None:
    """With metrics = true the API server stores a ConfigMap with the agent jar's exact bytes
    and the rules, and a StatefulSet whose pod template mounts it, loads it through KAFKA_OPTS,
    declares a ``metrics`` port and carries the prometheus.io scrape annotations; a pod made
    from that template (the test plays the StatefulSet controller) is accepted; removal
    deletes all of it."""
    import kubernetes

    from greenflow_kubernetes.testing import set_statefulset_ready

    svc = KafkaService("kafka", KafkaConfig(brokers=2, metrics=True))
    ctx = make_deploy_context(tmp_path / "svc")
    svc.deploy(cluster.platform, cluster.inventory, ctx)
    try:
        core = kubernetes.client.CoreV1Api(cluster.api)
        cm = core.read_namespaced_config_map("kafka-jmx-exporter", NAMESPACE)
        jar = exporter.jar.read_bytes()
        assert len(jar) < 2**20
        assert base64.b64decode(cm.binary_data["jmx_prometheus_javaagent.jar"]) == jar
        assert cm.data["kafka.yaml"] == exporter.config.read_text()
        assert cm.metadata.labels["greenflow.io/experiment"] == cluster.experiment

        sts = cluster.session.get("StatefulSet", "kafka")
        template = sts["spec"]["template"]
        annotations = template["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true"
        assert annotations["prometheus.io/port"] == "9404"
        assert annotations["prometheus.io/path"] == "/metrics"
        (container,) = template["spec"]["containers"]
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env["KAFKA_OPTS"] == (
            "-javaagent:/opt/greenflow/jmx-exporter/jmx_prometheus_javaagent.jar="
            "9404:/opt/greenflow/jmx-exporter/kafka.yaml"
        )
        assert {"name": "metrics", "containerPort": 9404, "protocol": "TCP"} in container["ports"]
        assert {
            "name": "jmx-exporter",
            "mountPath": "/opt/greenflow/jmx-exporter",
            "readOnly": True,
        } in container["volumeMounts"]
        assert {
            "name": "jmx-exporter",
            "configMap": {"name": "kafka-jmx-exporter", "defaultMode": 420},
        } in template["spec"]["volumes"]
        assert svc.endpoints()["metrics"] == (
            f"kafka-0.kafka-headless.{NAMESPACE}.svc:9404,"
            f"kafka-1.kafka-headless.{NAMESPACE}.svc:9404"
        )
        assert svc.describe()["metrics"]["version"] == JMX_EXPORTER_VERSION
        # A later run attaching to the deployment (`greenflow up`) still has the endpoint.
        set_statefulset_ready(cluster.api, NAMESPACE, "kafka", 2)
        state = ctx.record_state.state  # type: ignore[attr-defined]  # the StateRecorder
        attached = KafkaService.attach("kafka", svc.config, state)
        assert attached is not None
        assert attached.endpoints()["metrics"] == svc.endpoints()["metrics"]

        core.create_namespaced_pod(
            NAMESPACE,
            {
                "metadata": {
                    "name": "kafka-0",
                    "labels": template["metadata"]["labels"],
                    "annotations": annotations,
                },
                "spec": template["spec"],
            },
        )
        assert svc._kube is not None
        svc._kube.apply()  # idempotent with the jar in it
        assert (
            cluster.session.get("StatefulSet", "kafka")["metadata"]["generation"]
            == sts["metadata"]["generation"]
        )
    finally:
        svc.remove()
    assert cluster.session.get("ConfigMap", "kafka-jmx-exporter") is None


@pytest.mark.parametrize(
    ("size", "refusal"),
    [
        (2**20 + 1, "may not be more than 1048576 bytes"),  # the ConfigMap limit itself
        (2_886_599, "Request entity too large"),  # jmx_prometheus_javaagent-1.0.1.jar
    ],
)
def test_kube_refuses_a_configmap_larger_than_1_mib(cluster: Any, size: int, refusal: str) -> None:
    """The API server refuses a ConfigMap of one byte over 1 MiB, and one holding as many
    bytes as the 1.0.1 agent jar: that limit is why 0.20.0 (576,924 bytes) is pinned."""
    from greenflow.errors import GreenFlowError

    body = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "too-big"},
        "binaryData": {"agent.jar": base64.b64encode(bytes(size)).decode()},
    }
    with pytest.raises(GreenFlowError, match=refusal):
        cluster.session.apply(body)
    assert cluster.session.get("ConfigMap", "too-big") is None
