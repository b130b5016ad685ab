"""The ``redpanda`` service on Kubernetes, and ``kafka-ingest`` against it, on a real
kube-apiserver + etcd.

The binaries come from ``bash scripts/kube-apiserver`` (docs/kubernetes-testing.md); without
them these tests skip with that command. Only the API server runs — no kubelet, scheduler or
controllers — so these tests prove what the API server does with the manifests (validation,
idempotent server-side apply, placement, label-based teardown) and how GreenFlow reacts to
the statuses a controller would report; the test plays the StatefulSet and Job controllers
and the kubelet where needed (greenflow_kubernetes.testing.cluster) and says so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from greenflow.errors import ReadinessTimeout, ServiceError, WorkloadError
from greenflow.plan.durations import Duration
from greenflow.testing import make_deploy_context, make_run_context
from greenflow_kafka import KafkaIngestConfig, KafkaIngestWorkload
from greenflow_kafka.testing import empty_topic_read, shorten_start_timeout
from greenflow_kubernetes.testing import (
    JobController,
    KubeCluster,
    ScriptedLogs,
    by_component,
    set_statefulset_ready,
    succeeded,
)
from greenflow_redpanda.service import RedpandaConfig, RedpandaService

pytest.importorskip(
    "kubernetes", reason='the kubernetes client is not installed: pip install "kubernetes>=30,<38"'
)

NAMESPACE = "gf-redpanda-it"


def _deploy(cluster: KubeCluster, tmp_path: Path, **config: Any) -> RedpandaService:
    svc = RedpandaService("redpanda", RedpandaConfig(**config))
    svc.deploy(cluster.platform, cluster.inventory, make_deploy_context(tmp_path / "svc"))
    return svc


def test_manifests_are_accepted_placed_and_idempotent(cluster: KubeCluster, tmp_path: Path) -> None:
    """The ConfigMap, headless Service and StatefulSet pass validation; brokers go one per
    broker node with whole cores and memory as requests = limits; re-applying changes
    nothing; removal leaves nothing."""
    svc = _deploy(
        cluster, tmp_path, brokers=2, cores=2, memory="4Gi", write_caching=True, storage="fast-ssd"
    )
    try:
        sts = cluster.session.get("StatefulSet", "redpanda")
        assert sts is not None
        pod = sts["spec"]["template"]["spec"]
        assert pod["nodeSelector"] == {"node.kubernetes.io/broker": "true"}
        assert pod["tolerations"] == [{"key": "node.kubernetes.io/broker", "operator": "Exists"}]
        (term,) = pod["affinity"]["podAntiAffinity"][
            "requiredDuringSchedulingIgnoredDuringExecution"
        ]
        assert term["topologyKey"] == "kubernetes.io/hostname"
        (container,) = pod["containers"]
        assert (
            container["resources"]["requests"]
            == container["resources"]["limits"]
            == {"cpu": "2", "memory": "4Gi"}
        )
        assert "--smp=2" in container["command"][2]
        cm = cluster.session.get("ConfigMap", "redpanda-bootstrap")
        assert cm is not None and '"write_caching_default": "true"' in cm["data"][".bootstrap.yaml"]
        assert sts["spec"]["volumeClaimTemplates"][0]["spec"]["storageClassName"] == "fast-ssd"
        version = sts["metadata"]["resourceVersion"]
        assert svc._kube is not None
        svc._kube.apply()
        again = cluster.session.get("StatefulSet", "redpanda")
        assert again is not None and again["metadata"]["resourceVersion"] == version
        assert svc.endpoints()["bootstrap"] == (
            f"redpanda-0.redpanda-headless.{NAMESPACE}.svc:9092,"
            f"redpanda-1.redpanda-headless.{NAMESPACE}.svc:9092"
        )
    finally:
        svc.remove()
    assert cluster.session.get("ConfigMap", "redpanda-bootstrap") is None


def test_more_brokers_than_broker_nodes_is_refused(cluster: KubeCluster, tmp_path: Path) -> None:
    """Three brokers on two broker nodes fail at deploy, with nothing applied."""
    with pytest.raises(ServiceError, match=r"2 such node\(s\)"):
        _deploy(cluster, tmp_path, brokers=3)
    assert cluster.session.get("StatefulSet", "redpanda") is None


def test_wait_ready_follows_the_statefulset_status(cluster: KubeCluster, tmp_path: Path) -> None:
    """wait_ready times out with the blocking condition, then passes once the StatefulSet
    reports every broker ready (the test plays its controller)."""
    svc = _deploy(cluster, tmp_path, brokers=1)
    try:
        with pytest.raises(ReadinessTimeout, match="readyReplicas 0/1"):
            svc.wait_ready(1.0)
        set_statefulset_ready(cluster.api, NAMESPACE, "redpanda", 1)
        svc.wait_ready(10.0)
        assert svc.health() is None
        assert svc.describe()["seastar_memory_mib"] == 1638
    finally:
        svc.remove()


def test_kafka_ingest_targets_redpanda_unchanged(
    cluster: KubeCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """kafka-ingest with target "redpanda" runs its topic Job and producer Job from the
    apache/kafka tools image against Redpanda's bootstrap address; an unschedulable producer
    (the test plays the Job controller, the kubelet's logs for the first offsets read and the
    scheduler's verdict) fails the run at the start deadline with the blocking condition, and
    clean removes every Job and pod of the run."""
    shorten_start_timeout(monkeypatch, 2.0)
    svc = _deploy(cluster, tmp_path, brokers=1)
    set_statefulset_ready(cluster.api, NAMESPACE, "redpanda", 1)
    workload = KafkaIngestWorkload(
        KafkaIngestConfig(
            load=500, producers=1, target="redpanda", warmup=Duration(1), duration=Duration(2)
        )
    )
    assert workload.validate({"redpanda": svc.config}) is None
    ctx = make_run_context(
        tmp_path / "run",
        inventory=cluster.inventory,
        services={"redpanda": svc},
        run_id="00000000000000aa",
    )
    assert svc._kube is not None
    scripted = ScriptedLogs(svc._kube.session)
    svc._kube.session = scripted

    def unschedulable(_pod: Any) -> dict[str, Any]:
        return {
            "phase": "Pending",
            "conditions": [
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "message": "0/3 nodes are available: 3 Insufficient memory.",
                }
            ],
        }

    outcome = by_component(
        topic_create=succeeded,
        topic_delete=succeeded,
        offsets_warmup=empty_topic_read(scripted, "greenflow-00000000000000aa"),
        producer=unschedulable,
    )
    try:
        with JobController(cluster.api, NAMESPACE, outcome) as jobs:
            workload.prepare(ctx)
            with pytest.raises(WorkloadError) as err:
                workload.execute(ctx)
            workload.clean(ctx)
        message = str(err.value)
        assert "timed out after 2s waiting for all 1 producer(s)" in message
        assert "Unschedulable: 0/3 nodes are available: 3 Insufficient memory." in message
        producer = jobs.jobs["gf-00000000000000aa-producers"]["spec"]["template"]["spec"]
        command = producer["containers"][0]["command"]
        assert producer["containers"][0]["image"] == "apache/kafka:4.3.1"
        assert command[command.index("--bootstrap-server") + 1] == svc.endpoints()["bootstrap"]
        topic = jobs.jobs["gf-00000000000000aa-topic-create"]["spec"]["template"]["spec"]
        assert svc.endpoints()["bootstrap"] in topic["containers"][0]["command"]
        assert cluster.session.list_objects("Job") == []
        assert cluster.session.list_objects("Pod", {"app.kubernetes.io/name": "kafka-ingest"}) == []
    finally:
        svc.remove()
