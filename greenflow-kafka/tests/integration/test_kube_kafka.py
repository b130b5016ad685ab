"""The ``kafka`` service and ``kafka-ingest`` on Kubernetes, against a real kube-apiserver + etcd.

The binaries come from ``bash scripts/kube-apiserver`` (cached; docs/kubernetes-testing.md);
without them these tests skip with that command. Only the API server runs: no kubelet,
scheduler or controllers, so no pod starts by itself. What these tests prove is what the
API server does with what GreenFlow sends — validation of the StatefulSet, Service and Job
manifests, idempotent server-side apply, placement rules, label-based teardown — and how
GreenFlow reacts to the statuses a controller would report. Where a controller would act the
test plays it and says so (:func:`greenflow_kubernetes.testing.cluster.set_statefulset_ready`,
:class:`greenflow_kubernetes.testing.cluster.JobController`).

Three Node objects carry role labels: ``broker-a`` and ``broker-b`` (broker), ``worker-a``
(worker). The namespace is made by the test, so releasing the platform deletes every object
of the experiment but not the namespace (whose deletion needs the namespace controller).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from greenflow.errors import ReadinessTimeout, ServiceError, WorkloadError
from greenflow.plan.durations import Duration
from greenflow.testing import make_deploy_context, make_run_context
from greenflow_kafka.errors import KafkaSetupError
from greenflow_kafka.generator import GENERATOR_JAR, GENERATOR_MAIN, bucket_bounds, bucket_of
from greenflow_kafka.generator import resolve_generator as _resolve_generator
from greenflow_kafka.ingest import KafkaIngestConfig, KafkaIngestWorkload
from greenflow_kafka.ingest.jobs import GENERATOR_MOUNT, JOB_LABEL
from greenflow_kafka.service import KafkaConfig, KafkaService
from greenflow_kafka.testing import empty_topic_read, generator_log
from greenflow_kubernetes.testing import (
    ClaimProtectionController,
    JobController,
    KubeCluster,
    ScriptedLogs,
    by_component,
    oom_killed,
    set_statefulset_ready,
    succeeded,
)

pytest.importorskip(
    "kubernetes", reason='the kubernetes client is not installed: pip install "kubernetes>=30,<38"'
)

NAMESPACE = "gf-kafka-it"
BROKER_SELECTOR = {"node.kubernetes.io/broker": "true"}


@pytest.fixture(autouse=True, scope="module")
def _generator_jar() -> None:
    """kafka-ingest ships the load generator's jar to the producer pods: it must be built."""
    try:
        _resolve_generator()
    except KafkaSetupError as exc:
        pytest.skip(f"the load generator cannot be built here: {exc}")


def _deploy(cluster: KubeCluster, tmp_path: Path, **config: Any) -> KafkaService:
    svc = KafkaService("kafka", KafkaConfig(**config))
    svc.deploy(cluster.platform, cluster.inventory, make_deploy_context(tmp_path / "svc"))
    return svc


def _sts(cluster: KubeCluster, name: str = "kafka") -> dict[str, Any]:
    obj = cluster.session.get("StatefulSet", name)
    assert obj is not None
    return obj


def test_manifests_are_accepted_and_apply_is_idempotent(
    cluster: KubeCluster, tmp_path: Path
) -> None:
    """The StatefulSet (with a volume claim template) and its headless Service pass the API
    server's validation, and applying them again changes nothing."""
    svc = _deploy(
        cluster,
        tmp_path,
        brokers=2,
        controllers=2,
        cpu="2",
        memory="4Gi",
        storage="fast-ssd",
        storage_size="20Gi",
        overrides={"num.network.threads": "4"},
    )
    try:
        before = _sts(cluster)
        service = cluster.session.get("Service", "kafka-headless")
        assert service is not None and service["spec"]["clusterIP"] == "None"
        assert service["spec"]["publishNotReadyAddresses"] is True
        claim = before["spec"]["volumeClaimTemplates"][0]
        assert claim["spec"]["storageClassName"] == "fast-ssd"
        assert claim["spec"]["resources"]["requests"]["storage"] == "20Gi"
        assert svc._kube is not None
        svc._kube.apply()
        after = _sts(cluster)
        assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
        assert after["metadata"]["generation"] == before["metadata"]["generation"]
        assert svc.endpoints()["bootstrap"] == (
            f"kafka-0.kafka-headless.{NAMESPACE}.svc:9092,"
            f"kafka-1.kafka-headless.{NAMESPACE}.svc:9092"
        )
    finally:
        svc.remove()


def test_one_broker_per_broker_node_with_guaranteed_resources(
    cluster: KubeCluster, tmp_path: Path
) -> None:
    """Broker pods go to broker nodes, at most one per node, with requests equal to limits
    and a heap of half the memory."""
    svc = _deploy(cluster, tmp_path, brokers=2, cpu="1500m", memory="3Gi")
    try:
        pod = _sts(cluster)["spec"]["template"]
        spec = pod["spec"]
        assert spec["nodeSelector"] == BROKER_SELECTOR
        assert spec["tolerations"] == [{"key": "node.kubernetes.io/broker", "operator": "Exists"}]
        (term,) = spec["affinity"]["podAntiAffinity"][
            "requiredDuringSchedulingIgnoredDuringExecution"
        ]
        assert term["topologyKey"] == "kubernetes.io/hostname"
        assert term["labelSelector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
        (container,) = spec["containers"]
        assert (
            container["resources"]["requests"]
            == container["resources"]["limits"]
            == {"cpu": "1500m", "memory": "3Gi"}
        )
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env["KAFKA_HEAP_OPTS"] == "-Xms1536m -Xmx1536m"
        assert spec["volumes"] == [{"name": "data", "emptyDir": {"sizeLimit": "10Gi"}}]
        assert spec["enableServiceLinks"] is False
        assert pod["metadata"]["labels"]["greenflow.io/experiment"] == cluster.experiment
    finally:
        svc.remove()


def test_more_brokers_than_broker_nodes_is_refused_before_anything_is_applied(
    cluster: KubeCluster, tmp_path: Path
) -> None:
    """Three brokers on two broker nodes fail at deploy, naming the nodes, with nothing
    applied."""
    svc = KafkaService("kafka", KafkaConfig(brokers=3))
    with pytest.raises(
        ServiceError, match=r"3 broker\(s\).*2 such node\(s\) \(broker-a, broker-b\)"
    ):
        svc.deploy(cluster.platform, cluster.inventory, make_deploy_context(tmp_path))
    assert cluster.session.get("StatefulSet", "kafka") is None


def test_wait_ready_follows_the_statefulset_status(cluster: KubeCluster, tmp_path: Path) -> None:
    """wait_ready times out with the blocking condition while no replica is ready, and
    returns once the StatefulSet reports every broker ready (the test plays its controller)."""
    svc = _deploy(cluster, tmp_path, brokers=2)
    try:
        with pytest.raises(ReadinessTimeout) as err:
            svc.wait_ready(1.0)
        assert "readyReplicas 0/2" in str(err.value)
        assert "no pod matches" in str(err.value)
        assert svc.health() is not None
        set_statefulset_ready(cluster.api, NAMESPACE, "kafka", 2)
        svc.wait_ready(10.0)
        assert svc.health() is None
        assert svc.describe()["heap_mib"] == 1024
    finally:
        svc.remove()


def test_remove_deletes_pods_and_claims_made_from_the_templates(
    cluster: KubeCluster, tmp_path: Path
) -> None:
    """Removing the service deletes its pods and volume claims too (the test creates them from
    the templates as the StatefulSet controller would, and plays the pvc-protection
    controller), and nothing of it is left."""
    import kubernetes

    svc = _deploy(cluster, tmp_path, brokers=1, storage="standard")
    sts = _sts(cluster)
    core = kubernetes.client.CoreV1Api(cluster.api)
    claim = sts["spec"]["volumeClaimTemplates"][0]
    core.create_namespaced_persistent_volume_claim(
        NAMESPACE,
        {
            "metadata": {"name": "data-kafka-0", "labels": claim["metadata"]["labels"]},
            "spec": claim["spec"],
        },
    )
    pod_spec = {
        **sts["spec"]["template"]["spec"],
        "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data-kafka-0"}}],
    }
    core.create_namespaced_pod(
        NAMESPACE,
        {
            "metadata": {
                "name": "kafka-0",
                "labels": sts["spec"]["template"]["metadata"]["labels"],
            },
            "spec": pod_spec,
        },
    )
    with ClaimProtectionController(cluster.api, NAMESPACE) as claims:
        svc.remove()
    assert claims.released == ["data-kafka-0"]
    assert core.list_namespaced_pod(NAMESPACE).items == []
    assert core.list_namespaced_persistent_volume_claim(NAMESPACE).items == []
    assert cluster.session.get("StatefulSet", "kafka") is None
    svc.remove()  # idempotent


def _ingest(**overrides: Any) -> KafkaIngestWorkload:
    config = {
        "load": 2000,
        "producers": 2,
        "partitions": 3,
        "message_size": 512,
        "warmup": Duration(1),
        "duration": Duration(2),
        "producer_heap": "256m",
        **overrides,
    }
    return KafkaIngestWorkload(KafkaIngestConfig(**config))


def test_oom_killed_producer_is_reported_and_clean_leaves_nothing(
    cluster: KubeCluster, tmp_path: Path
) -> None:
    """The topic, offsets and producer Jobs and the generator's ConfigMap are accepted; a
    producer pod reported OOMKilled (the test plays the Job controller, the kubelet and its
    logs) fails the run with the reason, and clean deletes every Job, pod and ConfigMap of
    the run, after deleting the topic by a Job."""
    svc = _deploy(cluster, tmp_path, brokers=2)
    set_statefulset_ready(cluster.api, NAMESPACE, "kafka", 2)
    assert svc._kube is not None
    scripted = ScriptedLogs(svc._kube.session)
    svc._kube.session = scripted
    workload = _ingest()
    ctx = make_run_context(
        tmp_path / "run",
        inventory=cluster.inventory,
        services={"kafka": svc},
        run_id="0123456789abcdef",
        experiment=cluster.experiment,
    )

    first_read = empty_topic_read(scripted, "greenflow-0123456789abcdef")
    outcome = by_component(
        topic_create=succeeded,
        topic_delete=succeeded,
        offsets_warmup=first_read,
        producer=oom_killed,
    )
    try:
        with JobController(cluster.api, NAMESPACE, outcome) as jobs:
            workload.prepare(ctx)
            with pytest.raises(WorkloadError) as err:
                workload.execute(ctx)
            workload.clean(ctx)
            workload.clean(ctx)  # idempotent
        message = str(err.value)
        assert "OOMKilled" in message and "exit code 137" in message
        assert "gf-0123456789abcdef-producers" in message
        producers = jobs.jobs["gf-0123456789abcdef-producers"]
        spec = producers["spec"]
        assert spec["parallelism"] == spec["completions"] == 2
        assert spec["completionMode"] == "Indexed" and spec["backoffLimit"] == 0
        pod = spec["template"]["spec"]
        assert pod["nodeSelector"] == {"node.kubernetes.io/worker": "true"}
        assert pod["tolerations"] == [{"key": "node.kubernetes.io/worker", "operator": "Exists"}]
        command = pod["containers"][0]["command"]
        assert command[:2] == ["/opt/kafka/bin/kafka-run-class.sh", GENERATOR_MAIN]
        assert command[command.index("--rate") + 1] == "1000.000000"
        assert command[command.index("--ramp-seconds") + 1] == "0.5"
        assert command[command.index("--bootstrap-server") + 1] == svc.endpoints()["bootstrap"]
        env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
        assert env["CLASSPATH"] == f"{GENERATOR_MOUNT}/{GENERATOR_JAR}"
        (volume,) = pod["volumes"]
        assert volume["configMap"]["name"] == "gf-0123456789abcdef-generator"
        assert pod["containers"][0]["volumeMounts"][0]["mountPath"] == GENERATOR_MOUNT
        assert pod["containers"][0]["image"] == "apache/kafka:4.3.1"
        resources = pod["containers"][0]["resources"]
        assert resources["requests"]["memory"] == resources["limits"]["memory"] == "512Mi"
        assert {"gf-0123456789abcdef-topic-create", "gf-0123456789abcdef-topic-delete"} <= set(
            jobs.jobs
        )
        assert cluster.session.list_objects("Job") == []
        assert (
            cluster.session.list_objects("Pod", {JOB_LABEL: "gf-0123456789abcdef-producers"}) == []
        )
        assert cluster.session.get("ConfigMap", "gf-0123456789abcdef-generator") is None
    finally:
        svc.remove()


def _sending(rate: float = 1000.0) -> str:
    """A running producer's log: its reports of the last second, on schedule at ``rate``."""
    import time

    now = time.time()
    return generator_log(rate, now - 1.0, now, done=False)


def _finish_producers(cluster: KubeCluster, scripted: ScriptedLogs) -> None:
    """Play the producers ending their schedule, after the end of MEASURE: each pod's log has
    its reports of the last 8 s at 1000 msg/s (producer-i's messages acknowledged 2+i ms
    after they were due) and its totals, and its status says Succeeded."""
    import time

    import kubernetes

    core = kubernetes.client.CoreV1Api(cluster.api)
    time.sleep(0.5)
    # One clock for every producer: their reports fall on the same instants, so MEASURE
    # holds as many of each whatever time the API calls below take (a `now` per pod let a
    # busy machine shift one producer's reports across the window's edge).
    now = time.time()
    for pod in core.list_namespaced_pod(
        NAMESPACE, label_selector="app.kubernetes.io/component=producer"
    ).items:
        i = int(pod.metadata.labels["batch.kubernetes.io/job-completion-index"])
        scripted.logs[pod.metadata.name] = generator_log(
            1000, now - 8, now, latency_us=(2 + i) * 1000
        )
        body = cluster.api.sanitize_for_serialization(pod)
        core.patch_namespaced_pod_status(pod.metadata.name, NAMESPACE, {"status": succeeded(body)})


def test_a_run_counts_messages_between_the_boundary_reads(
    cluster: KubeCluster, tmp_path: Path
) -> None:
    """A whole run on the real API server: the Jobs run (the test plays the Job controller,
    the kubelet and its logs: producers report, offsets Jobs print end offsets with their
    clock), MEASURE is bounded by the start and end reads, messages are the difference of
    their offsets, and the producers' reports inside MEASURE give latency and schedule."""
    import threading
    import time

    from greenflow.api import Phase, PhaseRecorder

    svc = _deploy(cluster, tmp_path, brokers=2)
    set_statefulset_ready(cluster.api, NAMESPACE, "kafka", 2)
    assert svc._kube is not None
    scripted = ScriptedLogs(svc._kube.session)
    svc._kube.session = scripted
    topic = "greenflow-00000000000000bb"
    ends = {"offsets-warmup": 400, "offsets-start": 1500, "offsets-end": 5500}

    def outcome(job: Any, pod: Any, index: int) -> dict[str, Any] | None:
        component = job["metadata"]["labels"]["app.kubernetes.io/component"]
        name = pod["metadata"]["name"]
        if component == "producer":
            scripted.logs[name] = _sending()
            return {
                "phase": "Running",
                "containerStatuses": [
                    {
                        "name": "tool",
                        "image": "x",
                        "imageID": "",
                        "ready": True,
                        "restartCount": 0,
                        "state": {"running": {}},
                    }
                ],
            }
        if component.startswith("offsets-"):
            now = time.time()
            per_partition = ends[component] // 2
            scripted.logs[name] = (
                f"greenflow-read-start {now - 0.8:.6f}\n{topic}:0:{per_partition}\n"
                f"{topic}:1:{per_partition}\ngreenflow-read-end {now:.6f}\n"
            )
        return succeeded(pod)

    finisher = threading.Thread(target=_finish_producers, args=(cluster, scripted), daemon=True)
    phases = PhaseRecorder(on_enter=lambda p, _t: finisher.start() if p is Phase.COOLDOWN else None)
    workload = _ingest(partitions=2, warmup=Duration(1), duration=Duration(2))
    ctx = make_run_context(
        tmp_path / "run",
        inventory=cluster.inventory,
        services={"kafka": svc},
        run_id="00000000000000bb",
        phases=phases,
    )
    try:
        with JobController(cluster.api, NAMESPACE, outcome) as jobs:
            workload.prepare(ctx)
            try:
                result = workload.execute(ctx)
            finally:
                workload.clean(ctx)
        finisher.join(timeout=10)
        assert [p for p, _ in phases] == [Phase.WARMUP, Phase.MEASURE, Phase.COOLDOWN]
        window = phases.window(Phase.MEASURE)
        assert window is not None and 1.5 <= window.duration_s <= 3.0
        assert result.units == 4000 and result.unit == "message"
        assert result.achieved_rate == pytest.approx(4000 / window.duration_s)
        # The stamps the reads printed lie between creating their Jobs and seeing them
        # complete, so MEASURE is entered at them: the energy window is the counting window.
        assert result.metrics["boundaries_on_read_clock"] == 1
        assert result.metrics["producers_settled"] == 1  # every report at the asked 1000/s
        assert result.metrics["measure_window_minus_read_interval_s"] == pytest.approx(0, abs=1e-6)
        assert result.payload_bytes == 4000 * 512
        # Both producers' reports in MEASURE merged: 2 ms and 3 ms, as many of each.
        assert result.latency_ms["avg"] == pytest.approx(2.5)
        low, high = bucket_bounds(bucket_of(3000))
        assert result.latency_ms["p99"] == pytest.approx(min((low + high) / 2, 3000) / 1000)
        assert result.metrics["producer_records_total"] == 16000
        assert result.metrics["schedule_lag_trend_s_per_s"] == pytest.approx(0, abs=1e-9)
        assert result.metrics["producer_missed_sends"] == 0
        assert "offsets_read_interval_s" in result.metrics
        assert {
            "gf-00000000000000bb-offsets-warmup",
            "gf-00000000000000bb-offsets-start",
            "gf-00000000000000bb-offsets-end",
        } <= set(jobs.jobs)
        assert cluster.session.list_objects("Job") == []
    finally:
        svc.remove()


class _CatchingUpLogs(ScriptedLogs):
    """Pod logs as ScriptedLogs, except a running producer's, whose last report is its
    current rate, ``records_per_s`` (plays a producer above its rate: Kafka's perf tool
    catching up after a slow start did that; GreenFlow's generator never does, and settling
    still guards MEASURE against any load generator that would)."""

    def __init__(self, session: Any, records_per_s: float) -> None:
        super().__init__(session)
        self.records_per_s = records_per_s

    def pod_logs(self, name: str, **kw: Any) -> str:
        if name in self.logs or "-producers-" not in name:
            return super().pod_logs(name, **kw)
        return _sending(self.records_per_s)


@pytest.mark.parametrize("catches_up_after_s", [2.0, None], ids=["settles", "never-settles"])
def test_measure_waits_for_producers_catching_up(
    cluster: KubeCluster, tmp_path: Path, catches_up_after_s: float | None
) -> None:
    """After warm-up each producer's last reported second (read from its pod log) is 1700/s
    against the asked 1000/s: the tool catching up after a slow start. The start read — and
    so MEASURE — waits until they report their rate (producers_settled 1); if they never do,
    the run goes on after `settle` and says so (producers_settled 0). The test plays the Job
    controller and the kubelet's logs."""
    import threading
    import time

    from greenflow.api import Phase, PhaseRecorder

    svc = _deploy(cluster, tmp_path, brokers=2)
    set_statefulset_ready(cluster.api, NAMESPACE, "kafka", 2)
    assert svc._kube is not None
    logs = _CatchingUpLogs(svc._kube.session, records_per_s=1700.0)
    svc._kube.session = logs
    topic = "greenflow-00000000000000dd"
    ends = {"offsets-warmup": 0, "offsets-start": 1000, "offsets-end": 4000}
    created: dict[str, float] = {}
    caught_up: list[float] = []

    def outcome(job: Any, pod: Any, _index: int) -> dict[str, Any] | None:
        component = job["metadata"]["labels"]["app.kubernetes.io/component"]
        if component not in created and component == "producer" and catches_up_after_s:
            threading.Thread(target=catch_up, daemon=True).start()
        created.setdefault(component, time.monotonic())
        if component == "producer":
            return {
                "phase": "Running",
                "containerStatuses": [
                    {
                        "name": "tool",
                        "image": "x",
                        "imageID": "",
                        "ready": True,
                        "restartCount": 0,
                        "state": {"running": {}},
                    }
                ],
            }
        if component.startswith("offsets-"):
            now = time.time()
            logs.logs[pod["metadata"]["name"]] = (
                f"greenflow-read-start {now - 0.1:.6f}\n{topic}:0:{ends[component]}\n"
                f"greenflow-read-end {now:.6f}\n"
            )
        return succeeded(pod)

    def catch_up() -> None:
        assert catches_up_after_s is not None
        time.sleep(catches_up_after_s)
        caught_up.append(time.monotonic())
        logs.records_per_s = 1000.0

    def on_enter(phase: Phase, _t: float) -> None:
        if phase is Phase.COOLDOWN:
            threading.Thread(target=_finish_producers, args=(cluster, logs), daemon=True).start()

    settle = 5.0 if catches_up_after_s is not None else 1.0
    workload = _ingest(
        partitions=1,
        warmup=Duration(0.5),
        duration=Duration(1.5),
        settle=Duration(settle),
        min_achieved_ratio=0.5,
    )
    ctx = make_run_context(
        tmp_path / "run",
        inventory=cluster.inventory,
        services={"kafka": svc},
        run_id="00000000000000dd",
        phases=PhaseRecorder(on_enter=on_enter),
    )
    try:
        with JobController(cluster.api, NAMESPACE, outcome):
            workload.prepare(ctx)
            try:
                result = workload.execute(ctx)
            finally:
                workload.clean(ctx)
        if catches_up_after_s is not None:
            assert result.metrics["producers_settled"] == 1
            # The start read was created only once the producers reported their rate.
            assert caught_up and created["offsets-start"] >= caught_up[0]
        else:
            assert result.metrics["producers_settled"] == 0
            # ... and waited for the whole settle budget before giving up.
            assert created["offsets-start"] - created["producer"] >= settle
        assert result.units == 3000
    finally:
        svc.remove()


def test_a_boundary_read_that_does_not_fit_fails_at_once_with_the_schedulers_reason(
    cluster: KubeCluster, tmp_path: Path
) -> None:
    """On a full worker node the start read stays Pending (Unschedulable, Insufficient cpu):
    the run fails at once saying so and what to change, instead of waiting until the
    producers end and free room — which on a real 2-CPU node made the run fail much later
    as "producer finished before MEASURE ended". The test plays the Job controller, the
    kubelet and the scheduler's verdict."""
    svc = _deploy(cluster, tmp_path, brokers=2)
    set_statefulset_ready(cluster.api, NAMESPACE, "kafka", 2)
    assert svc._kube is not None
    scripted = ScriptedLogs(svc._kube.session)
    svc._kube.session = scripted
    topic = "greenflow-00000000000000cc"

    first_read = empty_topic_read(scripted, topic)

    def producing(pod: Any) -> dict[str, Any]:
        scripted.logs[pod["metadata"]["name"]] = _sending()
        return {
            "phase": "Running",
            "containerStatuses": [
                {
                    "name": "tool",
                    "image": "x",
                    "imageID": "",
                    "ready": True,
                    "restartCount": 0,
                    "state": {"running": {}},
                }
            ],
        }

    def no_room(_pod: Any) -> dict[str, Any]:
        return {
            "phase": "Pending",
            "conditions": [
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "message": "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) didn't match "
                    "Pod's node affinity/selector.",
                }
            ],
        }

    outcome = by_component(
        topic_create=succeeded,
        topic_delete=succeeded,
        offsets_warmup=first_read,
        producer=producing,
        offsets_start=no_room,
    )
    workload = _ingest(partitions=1, warmup=Duration(0.5), duration=Duration(2))
    ctx = make_run_context(
        tmp_path / "run",
        inventory=cluster.inventory,
        services={"kafka": svc},
        run_id="00000000000000cc",
        experiment=cluster.experiment,
    )
    try:
        with JobController(cluster.api, NAMESPACE, outcome):
            workload.prepare(ctx)
            with pytest.raises(WorkloadError) as err:
                workload.execute(ctx)
            workload.clean(ctx)
        message = str(err.value)
        assert "cannot be scheduled" in message and "Insufficient cpu" in message
        assert "gf-00000000000000cc-offsets-start" in message
        assert "Lower the cpu" in message
        assert "timed out" not in message  # at once, not after START_TIMEOUT_S
        assert cluster.session.list_objects("Job") == []
    finally:
        svc.remove()


def test_a_cluster_without_worker_nodes_is_refused_before_any_job(
    cluster: KubeCluster, tmp_path: Path
) -> None:
    """Without a node carrying the worker role, prepare fails naming the nodes, and no Job
    is created."""
    from greenflow.api import Inventory

    svc = _deploy(cluster, tmp_path, brokers=1)
    set_statefulset_ready(cluster.api, NAMESPACE, "kafka", 1)
    brokers_only = Inventory([h for h in cluster.inventory.hosts if "worker" not in h.roles])
    ctx = make_run_context(
        tmp_path / "run", inventory=brokers_only, services={"kafka": svc}, run_id="00000000000000cc"
    )
    workload = _ingest(producers=1)
    try:
        with pytest.raises(
            WorkloadError, match=r"role 'worker' and no node has it \(nodes: broker-a"
        ):
            workload.prepare(ctx)
        workload.clean(ctx)
        assert cluster.session.list_objects("Job") == []
    finally:
        svc.remove()
