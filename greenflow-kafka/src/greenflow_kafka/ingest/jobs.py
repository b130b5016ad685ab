"""kafka-ingest's Kubernetes Jobs as pure functions: the tools' commands, the Job manifest,
and what a Job's or a pod's status says (docs/kafka.md, "kafka-ingest on Kubernetes")."""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs

from greenflow_kafka.generator import GENERATOR_JAR, GENERATOR_MAIN
from greenflow_kafka.perf import END_TO_END_LATENCY_MAIN, end_to_end_latency_args

#: Where the Kafka image keeps the tools' scripts.
KAFKA_BIN = "/opt/kafka/bin"
#: Role of the nodes the load runs on (``KubeSession.node_selector``).
WORKER_ROLE = "worker"
APP_NAME = "kafka-ingest"
RUN_LABEL = "greenflow.io/run"
#: Set by us on every pod template, so a Job's pods are found without the controller's labels.
JOB_LABEL = "greenflow.io/job"
#: Heap and memory of the short tool Jobs (topics, offsets).
TOOL_HEAP_MIB = 192
TOOL_MEMORY = "512Mi"
TOOL_CPU = "250m"
#: Pause between two looks at the consumer group while it forms.
GROUP_CHECK_INTERVAL_S = 0.5
#: The instance's completion index, for commands (see ToolJob.instance_env).
INSTANCE_ENV = "GREENFLOW_INSTANCE"
#: Where the load generator's ConfigMap is mounted in the producer pods.
GENERATOR_MOUNT = "/opt/greenflow"
# Java formats numbers with the default locale; parse_producer_output wants dots.
_JAVA_LOCALE = "-Duser.language=en -Duser.country=US"
_COMPLETION_INDEX = "batch.kubernetes.io/job-completion-index"


# -- manifests ---------------------------------------------------------------------------------


def tool_memory(heap_mib: int) -> str:
    """Container memory limit for a tool JVM of ``heap_mib``: the heap twice over, at least
    heap + 256 MiB (metaspace, code cache, thread stacks, direct buffers)."""
    return f"{max(2 * heap_mib, heap_mib + 256)}Mi"


@attrs.frozen
class ToolJob:
    """One Job running a Kafka tool from the image; :func:`tool_job` makes its manifest."""

    name: str
    namespace: str
    image: str
    command: Sequence[str]
    labels: Mapping[str, str]
    node_selector: Mapping[str, str]
    component: str
    tolerations: Sequence[Mapping[str, str]] = ()
    heap_mib: int = TOOL_HEAP_MIB
    memory: str = TOOL_MEMORY
    cpu_request: str = TOOL_CPU
    parallelism: int = 1
    active_deadline_s: int = 600
    #: Run on this node (the boundary reads run where the first producer runs: the image is
    #: there already, and both reads share one clock).
    node_name: str | None = None
    #: Give the container ``GREENFLOW_INSTANCE`` = its completion index, so that the command
    #: can name each instance (``$(GREENFLOW_INSTANCE)``, expanded by the kubelet).
    instance_env: bool = False
    #: Mount this ConfigMap (:func:`generator_configmap`) at :data:`GENERATOR_MOUNT` and put
    #: the load generator's jar in it on ``CLASSPATH``, which ``kafka-run-class.sh`` extends.
    generator_configmap: str | None = None


def tool_job(job: ToolJob) -> dict[str, Any]:
    """A Job manifest: ``parallelism = completions``, Indexed (pod *i* is instance *i*),
    never retried, bounded by ``activeDeadlineSeconds`` so nothing outlives a crashed
    greenflow by long. Memory request = limit (an overrun is an ``OOMKilled`` we report);
    cpu is requested, not limited: a throttled load generator would make the broker look slow.
    Several instances spread over nodes when they can (``ScheduleAnyway``)."""
    labels = {
        **job.labels,
        "app.kubernetes.io/name": APP_NAME,
        "app.kubernetes.io/component": job.component,
        JOB_LABEL: job.name,
    }
    container: dict[str, Any] = {
        "name": "tool",
        "image": job.image,
        "command": list(job.command),
        "env": [
            {"name": "KAFKA_HEAP_OPTS", "value": f"-Xms{job.heap_mib}m -Xmx{job.heap_mib}m"},
            {"name": "KAFKA_OPTS", "value": _JAVA_LOCALE},
        ],
        "resources": {
            "requests": {"cpu": job.cpu_request, "memory": job.memory},
            "limits": {"memory": job.memory},
        },
    }
    if job.generator_configmap:
        container["env"].append(
            {"name": "CLASSPATH", "value": f"{GENERATOR_MOUNT}/{GENERATOR_JAR}"}
        )
        container["volumeMounts"] = [
            {"name": "generator", "mountPath": GENERATOR_MOUNT, "readOnly": True}
        ]
    if job.instance_env:
        container["env"].append(
            {
                "name": INSTANCE_ENV,
                "valueFrom": {
                    "fieldRef": {"fieldPath": f"metadata.annotations['{_COMPLETION_INDEX}']"}
                },
            }
        )
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        # The image would turn injected KAFKA_* service variables into nothing harmful here
        # (no entry script runs), but they are noise in the environment of a measured JVM.
        "enableServiceLinks": False,
        "nodeSelector": dict(job.node_selector),
        "tolerations": [dict(t) for t in job.tolerations],
        "terminationGracePeriodSeconds": 5,
        "containers": [container],
    }
    if job.generator_configmap:
        pod_spec["volumes"] = [
            {"name": "generator", "configMap": {"name": job.generator_configmap}}
        ]
    if job.node_name:
        pod_spec["affinity"] = {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {
                            "matchFields": [
                                {
                                    "key": "metadata.name",
                                    "operator": "In",
                                    "values": [job.node_name],
                                }
                            ]
                        }
                    ]
                }
            }
        }
    if job.parallelism > 1:
        pod_spec["topologySpreadConstraints"] = [
            {
                "maxSkew": 1,
                "topologyKey": "kubernetes.io/hostname",
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {"matchLabels": {JOB_LABEL: job.name}},
            }
        ]
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": job.name, "namespace": job.namespace, "labels": labels},
        "spec": {
            "parallelism": job.parallelism,
            "completions": job.parallelism,
            "completionMode": "Indexed",
            "backoffLimit": 0,
            "activeDeadlineSeconds": job.active_deadline_s,
            "template": {"metadata": {"labels": labels}, "spec": pod_spec},
        },
    }


# -- the tools' commands -------------------------------------------------------------------------


def generator_configmap(
    name: str, namespace: str, labels: Mapping[str, str], jar: bytes
) -> dict[str, Any]:
    """The ConfigMap that carries the load generator's jar (``binaryData``, ~12 KB of the
    object's 1 MiB) to the producer pods, so the image needs nothing added."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {
                **labels,
                "app.kubernetes.io/name": APP_NAME,
                "app.kubernetes.io/component": "generator",
            },
        },
        "binaryData": {GENERATOR_JAR: base64.b64encode(jar).decode("ascii")},
    }


def producer_command(args: Sequence[str]) -> list[str]:
    """The load generator (:mod:`greenflow_kafka.generator`) with ``args``, through the
    image's ``kafka-run-class.sh``: the image's Kafka client jars, the tools' JVM options
    and log configuration, and the generator's jar from ``CLASSPATH`` (the Job mounts it)."""
    return [f"{KAFKA_BIN}/kafka-run-class.sh", GENERATOR_MAIN, *args]


def topic_command(
    bootstrap: str,
    topic: str,
    *,
    partitions: int | None = None,
    replication: int | None = None,
    delete: bool = False,
) -> list[str]:
    base = [f"{KAFKA_BIN}/kafka-topics.sh", "--bootstrap-server", bootstrap]
    if delete:
        return [*base, "--delete", "--if-exists", "--topic", topic]
    return [
        *base,
        "--create",
        "--if-not-exists",
        "--topic",
        topic,
        "--partitions",
        str(partitions or 1),
        "--replication-factor",
        str(replication or 1),
    ]


def offsets_command(bootstrap: str, topic: str, group: str | None = None) -> list[str]:
    """End offsets of ``topic``, bracketed by the pod's clock (bash 5's ``EPOCHREALTIME``).

    With ``group``, the group's committed offsets (``kafka-consumer-groups.sh --describe``,
    which also prints each partition's log-end offset beside its commit) are read first, in
    their own brackets: the end offsets stay the last thing the Job does before it exits.
    Its exit code is not the Job's (the tool exits 0 even for a missing group); what it
    printed is checked instead.
    """
    script = ""
    if group is not None:
        script += (
            'echo "greenflow-read-group-start $EPOCHREALTIME"\n'
            f'{KAFKA_BIN}/kafka-consumer-groups.sh --bootstrap-server "$0" --describe '
            '--group "$2" 2>&1\n'
            'echo "greenflow-read-group-end $EPOCHREALTIME"\n'
        )
    script += (
        'echo "greenflow-read-start $EPOCHREALTIME"\n'
        f'{KAFKA_BIN}/kafka-get-offsets.sh --bootstrap-server "$0" --topic "$1" --time -1\n'
        "rc=$?\n"
        'echo "greenflow-read-end $EPOCHREALTIME"\n'
        "exit $rc\n"
    )
    return ["/bin/bash", "-c", script, bootstrap, topic, *([group] if group is not None else [])]


def consumer_command(args: Sequence[str]) -> list[str]:
    return [f"{KAFKA_BIN}/kafka-consumer-perf-test.sh", *args]


def group_check_command(
    bootstrap: str, group: str, interval_s: float = GROUP_CHECK_INTERVAL_S
) -> list[str]:
    """Describe ``group`` (its state and member count, then its partitions' owners and
    commits) over and over, each look between numbered marks, until the Job is deleted."""
    describe = (
        f'{KAFKA_BIN}/kafka-consumer-groups.sh --bootstrap-server "$0" --describe --group "$1"'
    )
    script = (
        "i=0\n"
        "while :; do\n"
        "  i=$((i + 1))\n"
        '  echo "greenflow-check-start $i"\n'
        f"  {describe} --state 2>&1\n"
        f"  {describe} 2>&1\n"
        '  echo "greenflow-check-end $i"\n'
        f"  sleep {interval_s:g}\n"
        "done\n"
    )
    return ["/bin/bash", "-c", script, bootstrap, group]


def probe_command(args: Sequence[str], *, delay_s: float = 0.0) -> list[str]:
    """``EndToEndLatency`` with ``args``, after ``delay_s``, bracketed by the pod's clock."""
    script = (f"sleep {delay_s:.3f}\n" if delay_s > 0 else "") + (
        'echo "greenflow-probe-start $EPOCHREALTIME"\n'
        f'{KAFKA_BIN}/kafka-run-class.sh {END_TO_END_LATENCY_MAIN} "$@"\n'
        "rc=$?\n"
        'echo "greenflow-probe-end $EPOCHREALTIME"\n'
        "exit $rc\n"
    )
    return ["/bin/bash", "-c", script, "e2e-probe", *args]


def probe_args(
    version: str, *, bootstrap: str, topic: str, records: int, record_size: int, acks: str
) -> list[str]:
    """The arguments of ``EndToEndLatency`` exactly as the local probe passes them
    (:func:`greenflow_kafka.perf.end_to_end_latency_args`)."""
    return end_to_end_latency_args(
        version,
        bootstrap_servers=bootstrap,
        topic=topic,
        num_records=records,
        record_size=record_size,
        acks=acks,
    )


# -- what a Job's or pod's status says -----------------------------------------------------------


def _terminated(status: Mapping[str, Any]) -> Iterable[tuple[str, Mapping[str, Any]]]:
    for cs in status.get("containerStatuses") or []:
        for key in ("state", "lastState"):
            term = (cs.get(key) or {}).get("terminated")
            if term:
                yield cs.get("name", "?"), term


def pod_failure(pod: Mapping[str, Any]) -> str | None:
    """Why this pod failed (OOMKilled, a non-zero exit, phase Failed), or None."""
    status = pod.get("status") or {}
    for container, term in _terminated(status):
        reason = term.get("reason") or ""
        code = term.get("exitCode")
        if reason == "OOMKilled" or (code is not None and int(code) != 0):
            detail = f": {term['message'].strip()}" if term.get("message") else ""
            return (
                f"container {container} terminated: {reason or 'Error'} (exit code {code}){detail}"
            )
    if status.get("phase") == "Failed":
        return (
            f"pod failed: {status.get('reason') or 'Failed'} {status.get('message') or ''}".strip()
        )
    return None


_STUCK_WAITING = {
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
    "CrashLoopBackOff",
}


def pod_blocked(pod: Mapping[str, Any]) -> str | None:
    """Why a pod that has not started is not starting (Unschedulable, image pull errors),
    or None when it is merely on its way."""
    status = pod.get("status") or {}
    for cond in status.get("conditions") or []:
        if cond.get("type") == "PodScheduled" and cond.get("status") == "False":
            return f"{cond.get('reason') or 'not scheduled'}: {cond.get('message') or ''}".strip()
    for cs in status.get("containerStatuses") or []:
        waiting = (cs.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") in _STUCK_WAITING:
            return f"{waiting['reason']}: {waiting.get('message') or ''}".strip()
    return None


def pod_succeeded(pod: Mapping[str, Any]) -> bool:
    status = pod.get("status") or {}
    if status.get("phase") == "Succeeded":
        return True
    terms = list(
        _terminated(
            {
                "containerStatuses": [
                    {"name": cs.get("name"), "state": cs.get("state")}
                    for cs in status.get("containerStatuses") or []
                ]
            }
        )
    )
    return bool(terms) and all(int(t.get("exitCode", 1)) == 0 for _c, t in terms)


def pod_finished(pod: Mapping[str, Any]) -> bool:
    status = pod.get("status") or {}
    return status.get("phase") in ("Succeeded", "Failed") or any(
        (cs.get("state") or {}).get("terminated") for cs in status.get("containerStatuses") or []
    )


def job_failure(job: Mapping[str, Any] | None) -> str | None:
    """The Job's ``Failed`` condition (reason: message), or None."""
    for cond in ((job or {}).get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Failed" and cond.get("status") == "True":
            return f"{cond.get('reason') or 'Failed'}: {cond.get('message') or ''}".strip(": ")
    return None


def job_complete(job: Mapping[str, Any] | None, completions: int) -> bool:
    status = (job or {}).get("status") or {}
    if int(status.get("succeeded") or 0) >= completions:
        return True
    return any(
        c.get("type") == "Complete" and c.get("status") == "True"
        for c in status.get("conditions") or []
    )


def pod_index(pod: Mapping[str, Any]) -> int:
    """The completion index of an Indexed Job's pod (0 when it has none)."""
    meta = pod.get("metadata") or {}
    for source in (meta.get("labels") or {}, meta.get("annotations") or {}):
        value = source.get(_COMPLETION_INDEX)
        if value is not None:
            return int(value)
    return 0


__all__ = [
    "APP_NAME",
    "GENERATOR_MOUNT",
    "GROUP_CHECK_INTERVAL_S",
    "INSTANCE_ENV",
    "JOB_LABEL",
    "KAFKA_BIN",
    "RUN_LABEL",
    "TOOL_CPU",
    "TOOL_HEAP_MIB",
    "TOOL_MEMORY",
    "WORKER_ROLE",
    "ToolJob",
    "consumer_command",
    "generator_configmap",
    "group_check_command",
    "job_complete",
    "job_failure",
    "offsets_command",
    "pod_blocked",
    "pod_failure",
    "pod_finished",
    "pod_index",
    "pod_succeeded",
    "probe_args",
    "probe_command",
    "producer_command",
    "tool_job",
    "tool_memory",
    "topic_command",
]
