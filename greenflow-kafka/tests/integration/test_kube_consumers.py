"""``kafka-ingest`` consumers and its end-to-end latency probe on Kubernetes, against a real
kube-apiserver + etcd.

The binaries come from ``bash scripts/kube-apiserver`` (cached; docs/kubernetes-testing.md);
without them the API-server tests skip with that command. Only the API server runs: no
kubelet, scheduler or controllers, and no broker. What these tests prove is what the API server
does with the consumer, group-check and probe Jobs GreenFlow sends (validation, labels,
teardown), and what GreenFlow makes of the statuses and logs those pods would have. The tests
play the Job controller and the kubelet (:class:`greenflow_kubernetes.testing.cluster.JobController`: pods
made from the templates, their status set), the scheduler where a node must be named (a pod
bound to ``worker-a`` through the binding subresource), and the kubelet's log endpoint
(:class:`ScriptedLogs`). Each test's docstring says which.

The canned tool output is the shape Kafka 4.3.1 prints: ``kafka-consumer-perf-test.sh
--show-detailed-stats`` and ``EndToEndLatency`` as in the local parsers' tests, and
``kafka-consumer-groups.sh --describe [--state]`` as captured from that version's
``ConsumerGroupCommand`` against a real broker (column widths included).
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from greenflow.api import Host, Inventory, Phase, PhaseRecorder
from greenflow.errors import WorkloadError
from greenflow.plan.durations import Duration
from greenflow.testing import make_deploy_context, make_run_context
from greenflow_kafka.consumer import consumer_perf_args
from greenflow_kafka.ingest import KafkaIngestConfig, KafkaIngestWorkload, jobs, kube
from greenflow_kafka.ingest.jobs import INSTANCE_ENV, JOB_LABEL, probe_args
from greenflow_kafka.ingest.kube import KubeIngestRun
from greenflow_kafka.ingest.parse import last_group_check, parse_group_output, parse_probe_output
from greenflow_kafka.service import KafkaConfig, KafkaService
from greenflow_kafka.testing import generator_log
from greenflow_kubernetes.testing import (
    JobController,
    KubeCluster,
    ScriptedLogs,
    container_status,
    oom_killed,
    set_statefulset_ready,
    succeeded,
)

NAMESPACE = "gf-kafka-consumers-it"
WORKER_SELECTOR = {"node.kubernetes.io/worker": "true"}
RUN_ID = "00000000000000dd"
TOPIC = GROUP = f"greenflow-{RUN_ID}"


@pytest.fixture(autouse=True, scope="module")
def _generator_jar() -> None:
    """kafka-ingest ships the load generator's jar to the producer pods: it must be built."""
    from greenflow_kafka.errors import KafkaSetupError
    from greenflow_kafka.generator import resolve_generator

    try:
        resolve_generator()
    except KafkaSetupError as exc:
        pytest.skip(f"the load generator cannot be built here: {exc}")


#: What the local run stores for consumers and the probe (workload.py), and so must this one.
LOCAL_CONSUMER_METRICS = {
    "consumed_messages",
    "consumed_messages_per_s",
    "consumed_ratio",
    "consumer_lag_messages",
    "consumer_records_total",
    "e2e_latency_avg_ms",
    "e2e_latency_p50_ms",
    "e2e_latency_p99_ms",
    "e2e_latency_p999_ms",
    "e2e_probe_records",
    "e2e_probe_coverage_ratio",
    "e2e_probe_overrun_s",
    "e2e_probe_first_record_ms",
}

# -- canned tool output (Kafka 4.3.1 shapes) ---------------------------------------------------

_CONSUMER_HEADER = (
    "time, threadId, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, "
    "rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec"
)


def consumer_log(records: int) -> str:
    """kafka-consumer-perf-test.sh --show-detailed-stats after reading ``records`` in all."""
    return (
        "\n".join(
            [
                _CONSUMER_HEADER,
                "2026-11-23T21:08:37.304Z, 0, 0.0001, 0.0000, 1, 0.0481, 1169, 19614, 0.0000, 0.0510",
                "2026-11-23T21:08:38.307Z, 0, 0.0667, 0.0664, 699, 695.9123, 0, 1003, 0.0664, 695.9123",
                f"2026-11-23T21:08:39.370Z, 0, 0.1116, 0.0423, {records}, 443.0856, 0, 1063, 0.0423, 443.0856",
            ]
        )
        + "\n"
    )


_GROUP_NOT_FOUND = (
    f"\nError: Executing consumer group command failed due to org.apache.kafka.common.errors."
    f"GroupIdNotFoundException: Group {GROUP} not found.\n"
    f"java.util.concurrent.ExecutionException: org.apache.kafka.common.errors."
    f"GroupIdNotFoundException: Group {GROUP} not found.\n"
    "\tat java.base/java.util.concurrent.CompletableFuture.reportGet(CompletableFuture.java:396)\n"
    f"Caused by: org.apache.kafka.common.errors.GroupIdNotFoundException: Group {GROUP} not found.\n"
)


def group_state(state: str = "Stable", members: int = 3) -> str:
    """kafka-consumer-groups.sh --describe --state (ConsumerGroupCommand's column widths)."""
    return (
        f"\n{'GROUP':<26} {'COORDINATOR (ID)':<25} {'ASSIGNMENT-STRATEGY':<20} {'STATE':<20} "
        f"#MEMBERS\n{GROUP:<26} {'kafka-0.kafka-headless.gf.svc:9092  (0)':<25} "
        f"{'range':<20} {state:<20} {members}\n"
    )


def group_offsets(
    committed: Mapping[int, int | None], log_end: Mapping[int, int], *, rebalancing: bool = False
) -> str:
    """kafka-consumer-groups.sh --describe: one row per partition, owned by consumer-<p>."""
    lines = [
        "",
        f"{'GROUP':<26} {'TOPIC':<26} {'PARTITION':<10} {'CURRENT-OFFSET':<15} "
        f"{'LOG-END-OFFSET':<15} {'LAG':<15} {'CONSUMER-ID':<47} {'HOST':<15} CLIENT-ID",
    ]
    for p, cur in committed.items():
        lag = "-" if cur is None else str(log_end[p] - cur)
        member = f"consumer-{p}-043dccac-59fa-4821-9320-8e5cf0a332a{p}"
        lines.append(
            f"{GROUP:<26} {TOPIC:<26} {p:<10} {'-' if cur is None else cur:<15} "
            f"{log_end[p]:<15} {lag:<15} {member:<47} {'/10.42.0.7':<15} consumer-{p}"
        )
    if rebalancing:
        lines += ["", f"Warning: Consumer group '{GROUP}' is rebalancing."]
    return "\n".join(lines) + "\n"


def e2e_output(first_ms: float, avg_ms: float, p50: int, p99: int, p999: int) -> str:
    """EndToEndLatency's output: the first record's latency, then its two summary lines."""
    return (
        f"0\t{first_ms:.6f}\nAvg latency: {avg_ms:.4f} ms\n"
        f"Percentiles: 50th = {p50}, 99th = {p99}, 99.9th = {p999}\n"
    )


def probe_log(body: str, *, start: float, end: float | None) -> str:
    tail = f"greenflow-probe-end {end:.6f}\n" if end is not None else ""
    return f"greenflow-probe-start {start:.6f}\n{body}{tail}"


# -- no API server -------------------------------------------------------------------------------


def test_group_describe_output_is_parsed() -> None:
    """Committed and log-end offsets, owners, state and member count come out of the group
    tool's output; a missing group and a rebalance are seen as such."""
    text = group_state("Stable", 3) + group_offsets({0: 4984, 1: 4838}, {0: 4984, 1: 5102})
    g = parse_group_output(text, GROUP, TOPIC)
    assert g.committed == {0: 4984, 1: 4838} and g.log_end == {0: 4984, 1: 5102}
    assert g.assigned == {0, 1} and g.state == "stable" and g.members == 3
    assert g.total == 4984 + 4838 and not g.rebalancing
    missing = parse_group_output(_GROUP_NOT_FOUND, GROUP, TOPIC)
    assert missing.committed == {} and missing.state is None and missing.members is None
    joining = parse_group_output(
        group_offsets({0: None, 1: 0}, {0: 0, 1: 0}, rebalancing=True), GROUP, TOPIC
    )
    assert joining.committed == {1: 0} and joining.rebalancing
    assert parse_group_output(text, GROUP, "another-topic").committed == {}


def test_only_a_complete_group_check_counts() -> None:
    """The group check's last look is the last one between its two marks; a look still being
    printed is not used."""
    ready = group_state() + group_offsets({0: 0, 1: 0}, {0: 0, 1: 0})
    log = (
        f"greenflow-check-start 1\n{_GROUP_NOT_FOUND}{_GROUP_NOT_FOUND}greenflow-check-end 1\n"
        f"greenflow-check-start 2\n{ready}greenflow-check-end 2\n"
        f"greenflow-check-start 3\n{group_state('PreparingRebalance', 2)}"
    )
    block = last_group_check(log)
    assert block is not None and parse_group_output(block, GROUP, TOPIC).members == 3
    assert last_group_check("greenflow-check-start 1\n") is None


def test_probe_output_is_parsed_with_the_local_parsers() -> None:
    """A probe pod's output gives the local probe's figures: the tool's percentiles, the mean
    without the first record, and its sending time placed before its end at that mean."""
    text = probe_log(e2e_output(573.886706, 10.8228, 5, 58, 573), start=100.0, end=110.0)
    rnd = parse_probe_output(text, 300)
    assert rnd.stats is not None and (rnd.stats.p50_ms, rnd.stats.p999_ms) == (5, 573)
    assert rnd.first_ms == pytest.approx(573.886706)
    assert rnd.avg_ms == pytest.approx((10.8228 * 300 - 573.886706) / 299)
    assert rnd.sending_from == pytest.approx(110.0 - 300 * 10.8228 / 1000)
    assert rnd.coverage(107.0, 111.0) == pytest.approx((110.0 - 107.0) / 4.0)
    assert parse_probe_output(probe_log("0\t5.0\n", start=1.0, end=None), 10).stats is None


class _Service:
    tools_image = "apache/kafka:4.1.0"
    tools_version = "4.1.0"

    def endpoints(self) -> dict[str, str]:
        return {"bootstrap": "kafka-0.kafka-headless.ns.svc:9092"}


def test_consumers_with_tools_older_than_4_2_are_refused_before_any_job(tmp_path: Path) -> None:
    """Kafka tools before 4.2 take consumer settings from a file only, which a Job has not:
    prepare refuses, naming the image, before creating anything."""
    run = KubeIngestRun(KafkaIngestConfig(load=100, consumers=1), _Service(), session=None)  # type: ignore[arg-type]  # never reached
    inventory = Inventory([Host("worker-a", "worker-a", roles=frozenset({"worker"}))])
    ctx = make_run_context(tmp_path, inventory=inventory, run_id=RUN_ID)
    with pytest.raises(
        WorkloadError, match=r"Kafka 4\.2 or newer; the tools image is apache/kafka:4\.1\.0"
    ):
        run.prepare(ctx)


# -- against the API server ----------------------------------------------------------------------

pytest.importorskip(
    "kubernetes", reason='the kubernetes client is not installed: pip install "kubernetes>=30,<38"'
)


def _deploy(cluster: KubeCluster, tmp_path: Path) -> tuple[KafkaService, ScriptedLogs]:
    svc = KafkaService("kafka", KafkaConfig(brokers=2))
    svc.deploy(cluster.platform, cluster.inventory, make_deploy_context(tmp_path / "svc"))
    set_statefulset_ready(cluster.api, NAMESPACE, "kafka", 2)
    assert svc._kube is not None
    scripted = ScriptedLogs(svc._kube.session)
    svc._kube.session = scripted
    return svc, scripted


def _ingest(**overrides: Any) -> KafkaIngestWorkload:
    config = {
        "load": 2000,
        "producers": 2,
        "partitions": 2,
        "consumers": 3,
        "message_size": 512,
        "warmup": Duration(1),
        "duration": Duration(2),
        "producer_heap": "256m",
        "consumer_heap": "256m",
        **overrides,
    }
    return KafkaIngestWorkload(KafkaIngestConfig(**config))


def _component(job: Mapping[str, Any]) -> str:
    return str(job["metadata"]["labels"]["app.kubernetes.io/component"])


def _running(pod: Mapping[str, Any]) -> dict[str, Any]:
    return {"phase": "Running", "containerStatuses": container_status(pod, running={})}


def _bind(api: Any, pod: Mapping[str, Any], node: str) -> None:
    """Play the scheduler: bind ``pod`` to ``node`` through the binding subresource."""
    import kubernetes

    name = pod["metadata"]["name"]
    body: Any = {
        "apiVersion": "v1",
        "kind": "Binding",
        "metadata": {"name": name},
        "target": {"apiVersion": "v1", "kind": "Node", "name": node},
    }
    # _preload_content=False: the client cannot deserialise the binding's empty answer.
    kubernetes.client.CoreV1Api(api).create_namespaced_pod_binding(
        name, NAMESPACE, body, _preload_content=False
    )


def _sending() -> str:
    """A running producer's log (the load generator): its reports of the last second."""
    now = time.time()
    return generator_log(1000, now - 1.0, now, done=False)


#: Calibration: 30 records, first 145.17 ms, mean 9.8 ms → 5.14 ms per record without it.
_CALIBRATION = e2e_output(145.173859, 9.8, 4, 145, 145)
_CAL_PER_RECORD_S = (9.8 * 30 - 145.173859) / 29 / 1000
#: End-read offsets by Job: (end offsets, committed, log-end beside the commit), per partition.
_READS = {
    "offsets-warmup": (200, 150, 200),
    "offsets-start": (750, 700, 750),
    "offsets-end": (2750, 2650, 2750),
}


def test_a_run_with_consumers_and_the_probe_stores_the_local_metrics(
    cluster: KubeCluster, tmp_path: Path
) -> None:
    """A whole run with 3 consumers on 2 partitions: the consumer, group-check and probe Jobs
    pass the API server's validation with the local path's arguments, go to worker nodes, the
    group forms before the producers start, messages consumed in MEASURE are the difference of
    the group's committed offsets read with the boundary reads, the probe's figures are parsed
    with the local parsers, the local metric names are stored, and clean leaves nothing.
    Played by the test: the Job controller and kubelet (pods and their status), the scheduler
    for the producers (bound to worker-a), and the kubelet's logs (tool output)."""
    import kubernetes

    svc, scripted = _deploy(cluster, tmp_path)
    core = kubernetes.client.CoreV1Api(cluster.api)
    probe_pods: list[str] = []

    def outcome(job: Any, pod: Any, index: int) -> dict[str, Any] | None:
        component, name = _component(job), pod["metadata"]["name"]
        if component == "producer":
            _bind(cluster.api, pod, "worker-a")
            scripted.logs[name] = _sending()
            return _running(pod)
        if component == "consumer":
            scripted.logs[name] = consumer_log(1516 + index)
            return _running(pod)
        if component == "group-check":
            # First the group does not exist yet, then it is stable; the second look appears
            # a little later, as the loop in the pod would print it.
            scripted.logs[name] = (
                f"greenflow-check-start 1\n{_GROUP_NOT_FOUND}"
                f"{_GROUP_NOT_FOUND}greenflow-check-end 1\n"
            )
            ready = group_state("Stable", 3) + group_offsets({0: 0, 1: 0}, {0: 0, 1: 0})
            threading.Timer(
                0.5,
                lambda: scripted.logs.__setitem__(
                    name,
                    scripted.logs[name] + f"greenflow-check-start 2\n{ready}"
                    "greenflow-check-end 2\n",
                ),
            ).start()
            return _running(pod)
        if component == "e2e-calibration":
            scripted.logs[name] = probe_log(_CALIBRATION, start=time.time() - 2, end=time.time())
            return succeeded(pod)
        if component == "e2e-probe":
            probe_pods.append(name)
            scripted.logs[name] = probe_log("0\t12.500000\n", start=time.time(), end=None)
            return _running(pod)
        if component.startswith("offsets-"):
            now = time.time()
            ends, committed, log_end = _READS[component]
            scripted.logs[name] = (
                f"greenflow-read-group-start {now - 2.0:.6f}\n"
                + group_offsets({0: committed, 1: committed}, {0: log_end, 1: log_end})
                + f"greenflow-read-group-end {now - 0.9:.6f}\n"
                f"greenflow-read-start {now - 0.8:.6f}\n{TOPIC}:0:{ends}\n{TOPIC}:1:{ends}\n"
                f"greenflow-read-end {now:.6f}\n"
            )
        return succeeded(pod)

    def finish() -> None:
        """Play the producers exiting by record count and the probe's round ending, after
        the end of MEASURE."""
        time.sleep(0.5)
        for listed in core.list_namespaced_pod(
            NAMESPACE, label_selector="app.kubernetes.io/component in (producer,e2e-probe)"
        ).items:
            body: dict[str, Any] = cluster.api.sanitize_for_serialization(listed)
            name, labels = body["metadata"]["name"], body["metadata"]["labels"]
            if labels["app.kubernetes.io/component"] == "producer":
                i = int(labels["batch.kubernetes.io/job-completion-index"])
                now = time.time()
                scripted.logs[name] = generator_log(1000, now - 8, now, latency_us=(2 + i) * 1000)
            else:
                scripted.logs[name] = probe_log(
                    e2e_output(12.5, 6.25, 5, 12, 31), start=time.time() - 3, end=time.time()
                )
            core.patch_namespaced_pod_status(name, NAMESPACE, {"status": succeeded(body)})

    finisher = threading.Thread(target=finish, daemon=True)
    phases = PhaseRecorder(on_enter=lambda p, _t: finisher.start() if p is Phase.COOLDOWN else None)
    workload = _ingest()
    ctx = make_run_context(
        tmp_path / "run",
        inventory=cluster.inventory,
        services={"kafka": svc},
        run_id=RUN_ID,
        phases=phases,
        experiment=cluster.experiment,
    )
    try:
        with JobController(cluster.api, NAMESPACE, outcome) as jobs:
            workload.prepare(ctx)
            try:
                result = workload.execute(ctx)
            finally:
                workload.clean(ctx)
        finisher.join(timeout=10)
        print(f"run with 3 consumers on Kubernetes: metrics {dict(result.metrics)}")
        prefix = f"gf-{RUN_ID}"
        bootstrap = svc.endpoints()["bootstrap"]
        order = list(jobs.jobs)
        # The group forms (and the probe calibrates) before the first record is produced.
        assert (
            order.index(f"{prefix}-consumers")
            < order.index(f"{prefix}-group-check")
            < order.index(f"{prefix}-producers")
        )
        assert order.index(f"{prefix}-e2e-calibration") < order.index(f"{prefix}-producers")

        consumers = jobs.jobs[f"{prefix}-consumers"]["spec"]
        assert consumers["parallelism"] == consumers["completions"] == 3
        assert consumers["completionMode"] == "Indexed" and consumers["backoffLimit"] == 0
        pod = consumers["template"]["spec"]
        assert pod["nodeSelector"] == WORKER_SELECTOR
        assert pod["tolerations"] == [{"key": "node.kubernetes.io/worker", "operator": "Exists"}]
        (container,) = pod["containers"]
        assert container["image"] == "apache/kafka:4.3.1"
        assert container["command"][0] == "/opt/kafka/bin/kafka-consumer-perf-test.sh"
        args = container["command"][1:]
        assert args == consumer_perf_args(
            "4.3.1",
            bootstrap_servers=bootstrap,
            topic=TOPIC,
            group=GROUP,
            timeout_ms=int(args[args.index("--timeout") + 1]),
            from_latest=True,
            consumer_props={"auto.commit.interval.ms": "100"},
            name=f"consumer-$({INSTANCE_ENV})",
        )
        assert args[args.index("--group") + 1] == GROUP and args[args.index("--topic") + 1] == TOPIC
        assert args[args.index("--bootstrap-server") + 1] == bootstrap
        # Longer than the whole run: a consumer owning no partition exits at its --timeout.
        assert int(args[args.index("--timeout") + 1]) > 600_000
        env = {e["name"]: e for e in container["env"]}
        assert env[INSTANCE_ENV]["valueFrom"]["fieldRef"]["fieldPath"] == (
            "metadata.annotations['batch.kubernetes.io/job-completion-index']"
        )
        assert container["resources"]["requests"]["memory"] == "512Mi"
        assert container["resources"]["limits"] == {"memory": "512Mi"}

        probe = jobs.jobs[f"{prefix}-e2e-probe"]["spec"]["template"]["spec"]
        records = max(10, int(0.7 * 2.5 / _CAL_PER_RECORD_S))
        assert probe["containers"][0]["command"][4:] == probe_args(
            "4.3.1",
            bootstrap=bootstrap,
            topic=f"{TOPIC}-e2e",
            records=records,
            record_size=512,
            acks="all",
        )
        assert "org.apache.kafka.tools.EndToEndLatency" in probe["containers"][0]["command"][2]
        # On the node of the first producer, where the boundary reads run too.
        for job in (f"{prefix}-e2e-probe", f"{prefix}-offsets-start", f"{prefix}-offsets-end"):
            (term,) = jobs.jobs[job]["spec"]["template"]["spec"]["affinity"]["nodeAffinity"][
                "requiredDuringSchedulingIgnoredDuringExecution"
            ]["nodeSelectorTerms"]
            assert term["matchFields"][0]["values"] == ["worker-a"]
        read = jobs.jobs[f"{prefix}-offsets-start"]["spec"]["template"]["spec"]
        assert read["containers"][0]["command"][-3:] == [bootstrap, TOPIC, GROUP]
        e2e_topic = jobs.jobs[f"{prefix}-topic-create-e2e"]["spec"]["template"]["spec"]
        command = e2e_topic["containers"][0]["command"]
        assert command[command.index("--topic") + 1] == f"{TOPIC}-e2e"
        assert command[command.index("--partitions") + 1] == "1"
        assert {f"{prefix}-topic-delete", f"{prefix}-topic-delete-e2e"} <= set(jobs.jobs)
        assert probe_pods, "the probe Job made no pod"

        window = phases.window(Phase.MEASURE)
        assert window is not None
        assert result.units == 4000  # (2750 - 750) × 2 partitions, from the end offsets
        m = result.metrics
        assert set(m) >= LOCAL_CONSUMER_METRICS, sorted(LOCAL_CONSUMER_METRICS - set(m))
        assert m["consumed_messages"] == 3900  # (2650 - 700) × 2, from the committed offsets
        assert m["consumed_messages_per_s"] == pytest.approx(3900 / window.duration_s)
        assert m["consumed_ratio"] == pytest.approx(3900 / 4000)
        assert m["consumer_lag_messages"] == 200  # (2750 - 2650) × 2, beside the commits
        assert m["consumer_records_total"] == 1516 + 1517 + 1518  # each consumer's last line
        assert m["committed_read_interval_s"] > 0
        # Lag 100 beside the start read's commits, 200 beside the end read's: its trend.
        assert m["consumer_lag_trend_messages_per_s"] == pytest.approx(
            100 / m["committed_read_interval_s"]
        )
        assert m["e2e_latency_p50_ms"] == 5 and m["e2e_latency_p99_ms"] == 12
        assert m["e2e_latency_p999_ms"] == 31
        assert m["e2e_latency_avg_ms"] == pytest.approx((6.25 * records - 12.5) / (records - 1))
        assert m["e2e_probe_first_record_ms"] == pytest.approx(12.5)
        assert m["e2e_probe_records"] == records
        assert 0 < m["e2e_probe_coverage_ratio"] <= 1
        assert m["e2e_probe_overrun_s"] >= 0
        assert cluster.session.list_objects("Job") == []
        assert cluster.session.list_objects("Pod") == []
    finally:
        svc.remove()


def _exited(pod: Mapping[str, Any]) -> dict[str, Any]:
    """A consumer that stopped by itself: its --timeout passed without a record."""
    return {
        "phase": "Succeeded",
        "containerStatuses": container_status(
            pod, terminated={"exitCode": 0, "reason": "Completed"}
        ),
    }


@pytest.mark.parametrize(
    ("status", "why"),
    [
        (oom_killed, r"container tool terminated: OOMKilled \(exit code 137\)"),
        (_exited, r"exited by itself during the run"),
    ],
    ids=["oom-killed", "exited-by-itself"],
)
def test_a_consumer_pod_that_stops_fails_the_run_naming_pod_node_and_log(
    cluster: KubeCluster, tmp_path: Path, status: Any, why: str
) -> None:
    """A consumer pod OOMKilled, or ending by itself, while the group forms fails the run with
    the Job, the pod, its node, the reason and the last lines of its log, and clean deletes
    every Job and pod. Played by the test: the Job controller and kubelet (pod status), the
    scheduler (consumer-1 bound to worker-a) and the kubelet's logs."""
    svc, scripted = _deploy(cluster, tmp_path)
    last_line = (
        "WARNING: Exiting before consuming the expected number of records: timeout "
        "(1000000 ms) exceeded. You can use the --timeout option to increase the timeout."
    )

    def outcome(job: Any, pod: Any, index: int) -> dict[str, Any] | None:
        component, name = _component(job), pod["metadata"]["name"]
        if component == "consumer":
            scripted.logs[name] = consumer_log(700) + last_line + "\n"
            if index == 1:
                _bind(cluster.api, pod, "worker-a")
                stopped: dict[str, Any] = status(pod)
                return stopped
            return _running(pod)
        if component == "group-check":
            return _running(pod)
        if component == "e2e-calibration":
            scripted.logs[name] = probe_log(_CALIBRATION, start=time.time() - 2, end=time.time())
        return succeeded(pod)

    workload = _ingest(consumers=2)
    ctx = make_run_context(
        tmp_path / "run",
        inventory=cluster.inventory,
        services={"kafka": svc},
        run_id=RUN_ID,
        experiment=cluster.experiment,
    )
    try:
        with JobController(cluster.api, NAMESPACE, outcome) as jobs:
            workload.prepare(ctx)
            with pytest.raises(WorkloadError) as err:
                workload.execute(ctx)
            workload.clean(ctx)
            workload.clean(ctx)  # idempotent
        message = str(err.value)
        assert f"Job gf-{RUN_ID}-consumers: pod gf-{RUN_ID}-consumers-1-" in message
        assert "(instance 1) on node worker-a" in message
        assert re.search(why, message), message
        assert "last lines of its log" in message and "1000000 ms) exceeded" in message
        assert f"gf-{RUN_ID}-producers" not in jobs.jobs  # no load was started
        assert cluster.session.list_objects("Job") == []
        assert cluster.session.list_objects("Pod", {JOB_LABEL: f"gf-{RUN_ID}-consumers"}) == []
    finally:
        svc.remove()


def test_a_failed_probe_pod_fails_the_run(cluster: KubeCluster, tmp_path: Path) -> None:
    """The probe's calibration pod exiting with an error fails the run naming its Job and
    showing its log; nothing is left after clean. Played by the test: the Job controller and
    kubelet (pod status, group check and consumers running) and the kubelet's logs."""
    svc, scripted = _deploy(cluster, tmp_path)
    error = (
        "org.apache.kafka.common.errors.TimeoutException: Topic greenflow-00000000000000dd-e2e "
        "not present in metadata after 60000 ms."
    )

    def outcome(job: Any, pod: Any, _index: int) -> dict[str, Any] | None:
        component, name = _component(job), pod["metadata"]["name"]
        if component in ("consumer", "group-check"):
            return _running(pod)
        if component == "e2e-calibration":
            scripted.logs[name] = probe_log(f"{error}\n", start=time.time() - 61, end=time.time())
            return {
                "phase": "Failed",
                "containerStatuses": container_status(
                    pod, terminated={"exitCode": 1, "reason": "Error"}
                ),
            }
        return succeeded(pod)

    workload = _ingest(consumers=1)
    ctx = make_run_context(
        tmp_path / "run",
        inventory=cluster.inventory,
        services={"kafka": svc},
        run_id=RUN_ID,
        experiment=cluster.experiment,
    )
    try:
        with JobController(cluster.api, NAMESPACE, outcome):
            workload.prepare(ctx)
            with pytest.raises(WorkloadError) as err:
                workload.execute(ctx)
            workload.clean(ctx)
        message = str(err.value)
        assert f"Job gf-{RUN_ID}-e2e-calibration" in message
        assert "terminated: Error (exit code 1)" in message and "not present in metadata" in message
        assert cluster.session.list_objects("Job") == []
    finally:
        svc.remove()


def test_a_group_that_never_forms_times_out_saying_what_was_seen(
    cluster: KubeCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A group that stays short of its members times out with the group's last state, before
    any producer starts. Played by the test: the Job controller and kubelet, and the group
    check's log (2 of 3 members, rebalancing); the start timeout is shortened to 2 s."""
    svc, scripted = _deploy(cluster, tmp_path)
    monkeypatch.setattr(kube, "START_TIMEOUT_S", 2.0)

    def outcome(job: Any, pod: Any, _index: int) -> dict[str, Any] | None:
        component, name = _component(job), pod["metadata"]["name"]
        if component == "consumer":
            return _running(pod)
        if component == "group-check":
            look = group_state("PreparingRebalance", 2) + group_offsets(
                {0: 0, 1: None}, {0: 0, 1: 0}, rebalancing=True
            )
            scripted.logs[name] = f"greenflow-check-start 1\n{look}greenflow-check-end 1\n"
            return _running(pod)
        if component == "e2e-calibration":
            scripted.logs[name] = probe_log(_CALIBRATION, start=time.time() - 2, end=time.time())
        return succeeded(pod)

    workload = _ingest(consumers=3)
    ctx = make_run_context(
        tmp_path / "run",
        inventory=cluster.inventory,
        services={"kafka": svc},
        run_id=RUN_ID,
        experiment=cluster.experiment,
    )
    try:
        with JobController(cluster.api, NAMESPACE, outcome) as jobs:
            workload.prepare(ctx)
            with pytest.raises(WorkloadError) as err:
                workload.execute(ctx)
            workload.clean(ctx)
        message = str(err.value)
        assert f"consumer group '{GROUP}' to be stable with 3 members" in message
        assert (
            "the group last seen: state preparingrebalance, 2/3 members, partitions "
            "assigned [0, 1], committed [0] (rebalancing)"
        ) in message
        assert f"gf-{RUN_ID}-producers" not in jobs.jobs
        assert cluster.session.list_objects("Job") == []
    finally:
        svc.remove()


# -- the Jobs' commands, run for real against a broker ------------------------------------------


def _image_bin(dist: Any, where: Path) -> Path:
    """Stand-ins for the image's ``/opt/kafka/bin`` scripts: each runs the same main class
    from the resolved distribution (the image's scripts do that with its own copy)."""
    from greenflow_kafka.distribution import package_data

    mains = {
        "kafka-topics.sh": "org.apache.kafka.tools.TopicCommand",
        "kafka-get-offsets.sh": "org.apache.kafka.tools.GetOffsetShell",
        "kafka-consumer-groups.sh": "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
        "kafka-consumer-perf-test.sh": "org.apache.kafka.tools.ConsumerPerformance",
    }
    where.mkdir(parents=True, exist_ok=True)
    log4j = package_data("log4j2-tools.properties")
    for script, main in {**mains, "kafka-run-class.sh": ""}.items():
        java = dist.java_command(
            main,
            [],
            heap="192m",
            log4j2_config=log4j,
            jvm_options=["-Duser.language=en", "-Duser.country=US"],
        )
        if not main:  # kafka-run-class.sh takes the main class as its first argument
            java = java[:-1]
        quoted = " ".join(f"'{a}'" for a in java if a)
        if not main:  # ... and puts the libs after $CLASSPATH (the generator's jar, in a Job)
            cp = java[java.index("-cp") + 1]
            quoted = quoted.replace(f"'{cp}'", f'"${{CLASSPATH:+$CLASSPATH:}}{cp}"')
        path = where / script
        path.write_text(f'#!/bin/bash\nexec {quoted} "$@"\n')
        path.chmod(0o755)
    return where


def _local(command: list[str], bin_dir: Path) -> list[str]:
    return [a.replace(jobs.KAFKA_BIN, str(bin_dir)) for a in command]


def test_the_job_commands_run_against_a_real_broker(
    kafka_distribution: Any, tmp_path: Path
) -> None:
    """The commands of the consumer, group-check, boundary-read and probe Jobs, run as the
    pods would run them (bash, the tools' scripts) against a real Kafka broker, print what the
    parsers read: the group forms with every member, committed and end offsets are read
    between clock marks, and the probe reports its latency. Simulated: the image's bin
    scripts (stand-ins running the same main classes from the resolved distribution) and the
    kubelet's expansion of $(GREENFLOW_INSTANCE). No API server is involved."""
    import subprocess

    from greenflow.plugins import Kind, load
    from greenflow_kafka.consumer import parse_consumer_output
    from greenflow_kafka.generator import generator_args, parse_generator_output, resolve_generator
    from greenflow_kafka.ingest.jobs import (
        consumer_command,
        group_check_command,
        offsets_command,
        probe_command,
        producer_command,
        topic_command,
    )
    from greenflow_kafka.ingest.parse import parse_offsets_output
    from greenflow_kafka.perf import ProducerPerf

    bin_dir = _image_bin(kafka_distribution, tmp_path / "bin")
    platform_cls = load(Kind.PLATFORM, "local", where="test_kube_consumers")
    platform = platform_cls(platform_cls.Config())
    inventory = platform.acquire(make_deploy_context(tmp_path / "platform"))
    svc = KafkaService("kafka", KafkaConfig(version=kafka_distribution.version, heap="384m"))
    started: list[ProducerPerf] = []

    def run(
        command: list[str], name: str, timeout_s: float = 90.0, env: dict[str, str] | None = None
    ) -> str:
        done = subprocess.run(
            _local(command, bin_dir),
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
            env={**os.environ, **(env or {})},
        )
        assert done.returncode == 0, f"{name}: {done.stdout}{done.stderr}"
        return done.stdout + done.stderr

    try:
        svc.deploy(platform, inventory, make_deploy_context(tmp_path / "svc"))
        svc.wait_ready(120)
        bootstrap = svc.endpoints()["bootstrap"]

        class _Target:
            tools_image = f"apache/kafka:{kafka_distribution.version}"
            tools_version = kafka_distribution.version

            def endpoints(self) -> dict[str, str]:
                return {"bootstrap": bootstrap}

        kube_run = KubeIngestRun(
            KafkaIngestConfig(load=500, consumers=3, partitions=2), _Target(), session=None
        )  # type: ignore[arg-type]  # no Job is made
        run(topic_command(bootstrap, TOPIC, partitions=2, replication=1), "topic-create")
        run(topic_command(bootstrap, f"{TOPIC}-e2e", partitions=1, replication=1), "topic-e2e")
        args = kube_run._consumer_args(TOPIC)
        for i in range(3):  # the kubelet expands $(GREENFLOW_INSTANCE) to the pod's index
            command = consumer_command([a.replace(f"$({INSTANCE_ENV})", str(i)) for a in args])
            started.append(ProducerPerf.start(_local(command, bin_dir), tmp_path / f"c{i}.log"))

        check = ProducerPerf.start(
            _local(group_check_command(bootstrap, GROUP), bin_dir), tmp_path / "group-check.log"
        )
        started.append(check)
        deadline, seen = time.monotonic() + 90, None
        while time.monotonic() < deadline:
            block = last_group_check((tmp_path / "group-check.log").read_text())
            seen = parse_group_output(block, GROUP, TOPIC) if block is not None else None
            if (
                seen is not None
                and seen.state == "stable"
                and seen.members == 3
                and seen.assigned == {0, 1}
                and set(seen.committed) == {0, 1}
            ):
                break
            time.sleep(0.5)
        else:
            pytest.fail(
                f"the group check never saw the group ready; last: {seen}\n"
                f"{(tmp_path / 'group-check.log').read_text()[-3000:]}"
            )
        check.stop()

        # The producer Job's command with the generator's jar on CLASSPATH, as the Job's
        # ConfigMap mount and environment put it.
        produced = run(
            producer_command(
                generator_args(
                    bootstrap_servers=bootstrap,
                    topic=TOPIC,
                    rate=1500,
                    seconds=2,
                    record_size=100,
                )
            ),
            "producer",
            timeout_s=120,
            env={"CLASSPATH": str(resolve_generator())},
        )
        generated = parse_generator_output(produced)
        assert generated.end is not None, produced[-2000:]
        sent = generated.end.acked  # a cold JVM may give a few of the 3000 up (missed)
        assert sent + generated.end.missed == 3000 and sent > 2700, produced[-2000:]
        time.sleep(1.0)  # the consumers read and commit (every 100 ms)
        text = run(offsets_command(bootstrap, TOPIC, GROUP), "offsets")
        reading = parse_offsets_output(text, TOPIC)
        group = parse_group_output(text, GROUP, TOPIC)
        assert reading is not None and reading.total == sent, text
        assert reading.started is not None and reading.ended is not None, text
        assert group.started is not None and group.ended is not None, text
        assert group.ended <= reading.started  # the group first, the end offsets last
        assert group.total == sent and dict(group.log_end) == dict(reading.offsets), text

        text = run(
            probe_command(
                probe_args(
                    kafka_distribution.version,
                    bootstrap=bootstrap,
                    topic=f"{TOPIC}-e2e",
                    records=50,
                    record_size=100,
                    acks="all",
                ),
                delay_s=0.2,
            ),
            "probe",
        )
        rnd = parse_probe_output(text, 50)
        assert rnd.stats is not None and rnd.first_ms is not None, text
        assert rnd.sending_from is not None and rnd.launched_at < rnd.sending_from < rnd.ended_at

        for cons in started[:3]:
            cons.stop()
        records = [parse_consumer_output(c.output_path.read_text()).records for c in started[:3]]
        # What each printed last (a progress line comes only with records, once a second,
        # so the last records of a burst may go unreported, as locally): one of the three
        # owns no partition and prints nothing.
        assert 0 < sum(records) <= sent and records.count(0) <= 1, records
    finally:
        for proc in started:
            proc.stop()
        svc.remove()
        platform.release()
