"""``kafka-ingest`` on Kubernetes: producers, consumers, the latency probe, topic administration
and offset reads as Jobs.

The broker's bootstrap address (``<sts>-0.<svc>.<ns>.svc:9092,...``) resolves inside the
cluster only, so nothing here talks to Kafka from the machine running greenflow: every
Kafka client is a Job of the Kafka image on a worker node, and greenflow reads Job and pod
status, and pod logs, through the API server. The same run works against any service that
speaks the Kafka API and says where (``endpoints()["bootstrap"]``) — Kafka or Redpanda.

Per run:

1. **prepare** — a Job runs ``kafka-topics.sh --create --if-not-exists`` (partitions,
   replication). How long it took from creation to being seen complete is the first
   estimate of a tool Job's latency (scheduling, container start, JVM start, the request).
2. **execute** — WARMUP (consumers first, when asked, below); a first offsets read, before
   any producer, proves the tool works and measures how long a read Job takes from creation
   to being seen complete (``offsets_read_lag_s``); then one Indexed Job with
   ``parallelism = completions = producers`` runs
   ``kafka-producer-perf-test.sh`` with exactly the local path's arguments
   (:func:`greenflow_kafka.perf.producer_perf_args`), ``load / producers`` msg/s each. Warm-up
   counts from the moment *every* producer has printed its first report (so N producers
   start together as far as the load is concerned), then lasts ``warmup``. Then, as
   locally, greenflow waits up to ``settle`` until every producer's last reported second
   (read from its pod log) is within 15 % above its rate — the tool catches up after a
   slow start by sending faster than asked — and records ``producers_settled`` (1 or 0).
   MEASURE is bounded by two reads of the topic's end offsets, each a Job running
   ``kafka-get-offsets.sh`` that prints the pod's clock (bash ``EPOCHREALTIME``) before and
   after the read. The boundary reads run on the node of the first producer (the image is
   there, and they share one clock). The start read is created the measured lag before the
   warm-up ends, the end read as long before ``duration`` is up as the start read took to
   its stamp. MEASURE and COOLDOWN are entered *at the reads' own stamps* (the pod's clock
   when the offsets were in hand), so the energy window is the counting window — when the
   stamp is plausible on greenflow's clock (between creating the Job and seeing it
   complete, ± :data:`CLOCK_TOLERANCE_S`); otherwise at the moment the Job was seen complete,
   with a warning. ``boundaries_on_read_clock`` says which (1 or 0). Messages in MEASURE are
   the difference of the two readings: a count, never rate × duration.
3. Producers exit by record count and print their summary (the steady-state line excludes
   the warm-up records); the summaries come from the pod logs
   (:func:`greenflow_kafka.perf.parse_producer_output`).
4. **clean** — the run's Jobs and their pods are deleted, then a Job runs
   ``kafka-topics.sh --delete`` and is deleted in turn.

Honesty of the boundaries. The count is exact between the two reads. With the reads'
stamps as boundaries, what is left is the skew between the reading node's clock and
greenflow's (none on one machine; NTP's milliseconds across nodes) and where, inside the
tool's request, the broker answered. Without them (an implausible stamp), each boundary lags
its read by the time to see the Job complete; both lags have the same causes on the same
node, so the window is shifted rather than stretched. Either way what remains is reported,
not hidden: ``measure_window_minus_read_interval_s`` is (COOLDOWN − MEASURE) on greenflow's
clock minus (second read − first read) on the reading node's clock. A value beyond 5 % of
the window is logged as ``kafka_ingest.kube_boundary_mismatch``. (On the real test node,
before the boundaries used the stamps: −0.66 s of a 14 s window, 4.7 %.) The
alternative, the producers' own record counts, would need the producers' report lines
aligned to the window, and they carry no timestamps.

Failures are noticed while the run goes: a producer, consumer or probe pod that terminated
with a non-zero exit code or ``OOMKilled``, a Job with a ``Failed`` condition, a pod stuck
Pending (unschedulable, image pull errors) or a target service that turns unhealthy raises
``WorkloadError`` naming the pod, its node, the reason and the last lines of its log.
``backoffLimit`` is 0: a retried producer would send its records twice.

Producers are sized for ``max(warmup, 2 × measured read lag) + settle + duration + tail +``
:data:`KUBE_SLACK_S` seconds (pods start at different times, and a boundary read takes
seconds: 15–36 s on a busy 2-core node with consumers, where a fixed slack made the load end
before MEASURE did); a producer that finished before COOLDOWN fails the run, as the load
would not have covered the window.

Consumers (``consumers = N > 0``), as on the local platform but as Jobs:

- **prepare** also creates the probe's topic ``<topic>-e2e`` (1 partition) by a Job.
- **WARMUP, before any producer**: one Indexed Job of N pods runs
  ``kafka-consumer-perf-test.sh`` with the local path's arguments
  (:func:`greenflow_kafka.consumer.consumer_perf_args`: group ``greenflow-<run_id>`` = the
  topic, ``--from-latest``, auto-commit every 100 ms, a ``--timeout`` longer than anything
  the run can wait for), each pod its ``client.id`` ``consumer-<index>`` (the kubelet expands
  ``$(GREENFLOW_INSTANCE)``, the completion index). A *group-check* Job then describes the
  group over and over (``kafka-consumer-groups.sh --describe --state`` and ``--describe``),
  and greenflow reads its log until the group is stable with N members, every partition
  owned and committed — the local readiness rule — and deletes it. Meanwhile a calibration
  Job runs ``EndToEndLatency`` (30 records) on ``<topic>-e2e``. Only then do the producers
  start, so the group is formed before the first record.
- **Boundary reads** with consumers first describe the group (committed offsets, and each
  partition's log-end offset read beside its commit), between their own clock marks, then
  read the end offsets as before. Messages consumed in MEASURE are the difference of the
  committed offsets of the two boundary reads: a count between two reads on one node,
  each at most one commit interval (100 ms) stale, like the local count. The group read
  runs a JVM start before the end-offsets read of the same Job, so the consumed window is
  shifted a little earlier than the produced one; its length on the node clock is stored as
  ``committed_read_interval_s``. ``consumer_lag_messages`` is log-end minus committed from
  the end read's group description (one instant), not across the two tools.
- **COOLDOWN**: each consumer's last progress line is read from its pod log
  (:func:`greenflow_kafka.consumer.parse_consumer_output`, ``consumer_records_total``), then
  the consumer Job and pods are deleted (SIGTERM, as locally).
- **Probe**: the measured round is sized like the local one (70 % of ``duration + tail`` at
  the calibrated round trip) and created with the start read, on the reads' node; it sleeps
  the start read's observed lag minus the calibration Job's own start-up (creation to first
  record), so its JVM starts before MEASURE and its records begin about when MEASURE does.
  There is no gate holding a started JVM (the local probe's pipe) because nothing can
  signal into a pod without exec; this is the one placement that differs. Its figures come
  from the pod log through the local parsers
  (:func:`greenflow_kafka.perf.parse_end_to_end_latency_output`,
  :class:`greenflow_kafka.consumer.ProbeRound`); ``e2e_probe_coverage_ratio`` is the share
  of the window between the two boundary reads, on the reads' node clock, that the round
  was sending in (its sending time placed before its end at its own mean latency), and
  ``e2e_probe_overrun_s`` is on greenflow's clock, from the producers seen finished to the
  probe seen finished. A round not finished ``max(2 s, 25 % of its span)`` after the load
  is left out with ``kafka_ingest.e2e_incomplete`` logged, as locally.

Metrics have the local run's names (``consumed_messages``, ``consumed_messages_per_s``,
``consumed_ratio``, ``consumer_lag_messages``, ``consumer_records_total``,
``e2e_latency_{avg,p50,p99,p999}_ms``, ``e2e_probe_*``), plus ``committed_read_interval_s``.
A consumer pod that ends (OOMKilled, an error, or exit 0 at its timeout) before greenflow
stops it, or a probe pod that fails, fails the run like a producer pod. Consumers need the
Kafka tools 4.2 or newer (older ones take consumer settings from a file only); prepare
refuses older tools images before creating anything.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

import attrs
import structlog

from greenflow.api import Phase, RunContext, WorkloadResult
from greenflow.errors import WorkloadError
from greenflow_kubernetes import KubeSession, dns_label

if TYPE_CHECKING:
    from greenflow_kafka.consumer import ProbeRound
    from greenflow_kafka.distribution import KafkaDistribution

log = structlog.get_logger("greenflow.kafka_ingest")

KAFKA_BIN = "/opt/kafka/bin"
#: Role of the nodes the load runs on (``KubeSession.node_selector``).
WORKER_ROLE = "worker"
APP_NAME = "kafka-ingest"
RUN_LABEL = "greenflow.io/run"
#: Set by us on every pod template, so a Job's pods are found without the controller's labels.
JOB_LABEL = "greenflow.io/job"
#: Producers run this much longer than warmup + settle + duration + tail, plus twice the read lag
#: measured before they start (see the module docstring).
KUBE_SLACK_S = 10.0
#: A read's clock stamp is taken as a phase boundary only when it lies between creating its
#: Job and seeing it complete, on greenflow's clock, give or take this (clock skew).
CLOCK_TOLERANCE_S = 0.5
#: Heap and memory of the short tool Jobs (topics, offsets).
TOOL_HEAP_MIB = 192
TOOL_MEMORY = "512Mi"
TOOL_CPU = "250m"
#: Scheduling, image pull and JVM start of a Job before its first output.
START_TIMEOUT_S = 180.0
#: A boundary mismatch beyond this fraction of MEASURE is logged.
MISMATCH_WARN_RATIO = 0.05
_POLL_S = 0.2
_CHECK_EVERY_S = 1.0
#: While settling: how often the producers' logs are read, and how many of their last lines.
_SETTLE_POLL_S = 0.5
_SETTLE_TAIL_LINES = 5
# Java formats numbers with the default locale; parse_producer_output wants dots.
_JAVA_LOCALE = "-Duser.language=en -Duser.country=US"

_OFFSET_LINE = re.compile(r"^(?P<topic>[^\s:]+):(?P<partition>\d+):(?P<offset>-?\d+)$")
_READ_MARK = re.compile(
    r"^greenflow-read-(?P<which>start|end|group-start|group-end) (?P<t>\d+(?:[.,]\d+)?)$"
)
_PROBE_MARK = re.compile(r"^greenflow-probe-(?P<which>start|end) (?P<t>\d+(?:[.,]\d+)?)$")
_CHECK_MARK = re.compile(r"^greenflow-check-(?P<which>start|end) (?P<i>\d+)$")
# kafka-consumer-groups.sh --describe (offsets): GROUP TOPIC PARTITION CURRENT-OFFSET
# LOG-END-OFFSET LAG CONSUMER-ID HOST CLIENT-ID, "-" where there is no value.
_GROUP_OFFSETS_ROW = re.compile(
    r"^(?P<group>\S+)\s+(?P<topic>\S+)\s+(?P<partition>\d+)\s+(?P<current>\d+|-)\s+"
    r"(?P<end>\d+|-)\s+(?P<lag>-?\d+|-)\s+(?P<consumer>\S+)\s+\S+\s+\S+$"
)
# kafka-consumer-groups.sh --describe --state: GROUP COORDINATOR (ID) ASSIGNMENT-STRATEGY
# STATE #MEMBERS; the strategy column is blank while the group rebalances.
_GROUP_STATE_ROW = re.compile(
    r"^(?P<group>\S+)\s+\S+\s+\(-?\d+\)\s+(?:\S+\s+)?(?P<state>[A-Za-z]+)\s+(?P<members>\d+)$"
)
#: The probe's calibration round and how much of its span the measured round fills: the
#: defaults of :class:`greenflow_kafka.consumer.LatencyProbe`, which the local path uses.
PROBE_CALIBRATION_RECORDS = 30
PROBE_FILL = 0.7
#: Pause between two looks at the consumer group while it forms.
GROUP_CHECK_INTERVAL_S = 0.5
#: The instance's completion index, for commands (see ToolJob.instance_env).
INSTANCE_ENV = "GREENFLOW_INSTANCE"


# -- manifests ---------------------------------------------------------------------------------


def heap_mib(heap: str) -> int:
    from greenflow_kafka.kube import java_heap_mib

    return java_heap_mib(heap)


def tool_memory(heap_mib_: int) -> str:
    """Container memory limit for a tool JVM of ``heap_mib_``: the heap twice over, at least
    heap + 256 MiB (metaspace, code cache, thread stacks, direct buffers)."""
    return f"{max(2 * heap_mib_, heap_mib_ + 256)}Mi"


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
    if job.instance_env:
        container["env"].append(
            {
                "name": INSTANCE_ENV,
                "valueFrom": {
                    "fieldRef": {
                        "fieldPath": "metadata.annotations['batch.kubernetes.io/job-completion-index']"
                    }
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


def producer_command(args: Sequence[str]) -> list[str]:
    return [f"{KAFKA_BIN}/kafka-producer-perf-test.sh", *args]


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
    from greenflow_kafka.perf import END_TO_END_LATENCY_MAIN

    script = (f"sleep {delay_s:.3f}\n" if delay_s > 0 else "") + (
        'echo "greenflow-probe-start $EPOCHREALTIME"\n'
        f'{KAFKA_BIN}/kafka-run-class.sh {END_TO_END_LATENCY_MAIN} "$@"\n'
        "rc=$?\n"
        'echo "greenflow-probe-end $EPOCHREALTIME"\n'
        "exit $rc\n"
    )
    return ["/bin/bash", "-c", script, "e2e-probe", *args]


class _ArgsOnly:
    """Stands in for a :class:`~greenflow_kafka.distribution.KafkaDistribution` of
    ``version``: its ``java_command`` returns the tool's arguments alone, so that the local
    path's own command builders give the arguments of a tool the image runs by its script."""

    def __init__(self, version: str) -> None:
        self.version = version

    def java_command(self, main_class: str, args: Sequence[str] = (), **_kw: Any) -> list[str]:
        return list(args)


def probe_args(
    version: str, *, bootstrap: str, topic: str, records: int, record_size: int, acks: str
) -> list[str]:
    """The arguments of ``EndToEndLatency`` exactly as the local probe passes them
    (:func:`greenflow_kafka.perf.end_to_end_latency_command`)."""
    from greenflow_kafka.perf import end_to_end_latency_command

    return end_to_end_latency_command(
        cast("KafkaDistribution", _ArgsOnly(version)),
        bootstrap_servers=bootstrap,
        topic=topic,
        num_records=records,
        record_size=record_size,
        acks=acks,
    )


# -- reading status and output -----------------------------------------------------------------


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
        value = source.get("batch.kubernetes.io/job-completion-index")
        if value is not None:
            return int(value)
    return 0


@attrs.frozen
class OffsetsReading:
    """End offsets by partition, read between ``started`` and ``ended`` (the reading pod's
    clock, Unix seconds)."""

    offsets: Mapping[int, int]
    started: float | None
    ended: float | None

    @property
    def total(self) -> int:
        return sum(self.offsets.values())


@attrs.frozen
class BoundaryRead:
    """One offsets read and its timing: created and seen complete on greenflow's clock
    (Unix seconds), ``lag`` between the two."""

    reading: OffsetsReading
    committed: GroupReading | None
    lag: float
    created: float
    seen: float

    @property
    def boundary_on_read_clock(self) -> bool:
        """Whether the read's own stamp (the pod's clock when the offsets were in hand) is
        plausible on greenflow's clock: between creating the Job and seeing it complete.
        On one machine the clocks are the same; across nodes NTP keeps them within
        milliseconds, and a node whose clock is off by more fails this check."""
        t = self.reading.ended
        return (
            t is not None and self.created - CLOCK_TOLERANCE_S <= t <= self.seen + CLOCK_TOLERANCE_S
        )

    @property
    def stamp_lag(self) -> float:
        """From creating the Job to the boundary it marks, on greenflow's clock."""
        return self.boundary() - self.created

    def boundary(self) -> float:
        """The phase boundary this read marks: its own stamp when plausible (so MEASURE on
        greenflow's clock is the counting window), else when it was seen complete."""
        if self.boundary_on_read_clock:
            assert self.reading.ended is not None
            return min(self.reading.ended, self.seen)
        log.warning(
            "kafka_ingest.read_clock_implausible",
            read_ended=self.reading.ended,
            job_created=round(self.created, 3),
            job_seen_complete=round(self.seen, 3),
        )
        return self.seen


def parse_offsets_output(text: str, topic: str) -> OffsetsReading | None:
    """What an offsets Job printed; None when it printed no offset of ``topic``."""
    offsets: dict[int, int] = {}
    marks: dict[str, float] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if m := _READ_MARK.match(line):
            marks[m.group("which")] = float(m.group("t").replace(",", "."))
        elif (m := _OFFSET_LINE.match(line)) and m.group("topic") == topic:
            offsets[int(m.group("partition"))] = int(m.group("offset"))
    if not offsets:
        return None
    return OffsetsReading(offsets, marks.get("start"), marks.get("end"))


@attrs.frozen
class GroupReading:
    """What ``kafka-consumer-groups.sh --describe`` printed about ``group`` on one topic.

    ``committed`` has the partitions with a committed offset; ``log_end`` the log-end offset
    the tool read beside each commit (the same instant, as far as the lag is concerned);
    ``assigned`` the partitions a member owns. ``state`` (lower case, e.g. ``"stable"``) and
    ``members`` come from ``--state`` and are None without it. ``started`` and ``ended`` are
    the reading pod's clock around the read, when it printed them.
    """

    committed: Mapping[int, int]
    log_end: Mapping[int, int]
    assigned: frozenset[int]
    state: str | None = None
    members: int | None = None
    rebalancing: bool = False
    started: float | None = None
    ended: float | None = None

    @property
    def total(self) -> int:
        return sum(self.committed.values())

    def describe(self, want: int) -> str:
        return (
            f"state {self.state or '?'}, {self.members if self.members is not None else '?'}"
            f"/{want} members, partitions assigned {sorted(self.assigned)}, committed "
            f"{sorted(self.committed)}{' (rebalancing)' if self.rebalancing else ''}"
        )


def parse_group_output(text: str, group: str, topic: str) -> GroupReading:
    """Parse ``kafka-consumer-groups.sh --describe [--state]`` output about ``group`` and
    ``topic`` (other lines, a missing group's error included, are ignored)."""
    committed: dict[int, int] = {}
    log_end: dict[int, int] = {}
    assigned: set[int] = set()
    state: str | None = None
    members: int | None = None
    rebalancing = False
    marks: dict[str, float] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if m := _READ_MARK.match(line):
            marks[m.group("which")] = float(m.group("t").replace(",", "."))
        elif (m := _GROUP_OFFSETS_ROW.match(line)) and m.group("group") == group:
            if m.group("topic") != topic:
                continue
            partition = int(m.group("partition"))
            if m.group("current") != "-":
                committed[partition] = int(m.group("current"))
            if m.group("end") != "-":
                log_end[partition] = int(m.group("end"))
            if m.group("consumer") != "-":
                assigned.add(partition)
        elif (m := _GROUP_STATE_ROW.match(line)) and m.group("group") == group:
            state, members = m.group("state").lower(), int(m.group("members"))
        elif "is rebalancing" in line:
            rebalancing = True
    return GroupReading(
        committed,
        log_end,
        frozenset(assigned),
        state,
        members,
        rebalancing,
        marks.get("group-start"),
        marks.get("group-end"),
    )


def last_group_check(text: str) -> str | None:
    """The output of the last complete look of :func:`group_check_command`, or None."""
    blocks: dict[str, list[str]] = {}
    current: str | None = None
    last: str | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if m := _CHECK_MARK.match(line):
            if m.group("which") == "start":
                current = m.group("i")
                blocks[current] = []
            elif current == m.group("i"):
                last, current = current, None
        elif current is not None:
            blocks[current].append(raw)
    return "\n".join(blocks[last]) if last is not None else None


def parse_probe_output(text: str, records: int) -> ProbeRound:
    """A :class:`~greenflow_kafka.consumer.ProbeRound` from what a probe pod printed
    (:func:`probe_command`), parsed by the local probe's own parsers. Times are the pod's
    clock: launched when the script started the tool, ended when it exited; the records
    after the first are placed back to back before the end at the round's own mean latency
    (the local probe does the same when it did not see the round start)."""
    from greenflow_kafka.consumer import ProbeRound, first_latency_ms
    from greenflow_kafka.perf import parse_end_to_end_latency_output

    marks: dict[str, float] = {}
    for raw in text.splitlines():
        if m := _PROBE_MARK.match(raw.strip()):
            marks[m.group("which")] = float(m.group("t").replace(",", "."))
    stats = parse_end_to_end_latency_output(text, records)
    ended = marks.get("end")
    sending_from = (
        ended - records * stats.avg_ms / 1000 if stats is not None and ended is not None else None
    )
    return ProbeRound(
        records=records,
        launched_at=marks.get("start", 0.0),
        sending_from=sending_from,
        ended_at=ended or 0.0,
        exit_code=0 if stats is not None else None,
        stats=stats,
        first_ms=first_latency_ms(text),
    )


def _tail_lines(text: str, lines: int = 15) -> str:
    kept = [ln for ln in text.splitlines() if ln.strip()][-lines:]
    return "\n".join(f"  {ln}" for ln in kept) or "  (no output)"


# -- the run --------------------------------------------------------------------------------


def kube_of(service: Any) -> KubeSession | None:
    """The session a service was deployed through, or None when it runs elsewhere."""
    session = getattr(service, "kube_session", None)
    return session if session is not None else None


class KubeIngestRun:
    """One run of ``kafka-ingest`` on Kubernetes (prepare → execute → clean)."""

    def __init__(self, config: Any, service: Any, session: KubeSession) -> None:
        self.config = config
        self.service = service
        self.session = session
        self.image: str = service.tools_image
        self.version: str = service.tools_version
        self.bootstrap: str = service.endpoints()["bootstrap"]
        self._jobs: list[str] = []
        self._topic: str | None = None
        self._probe_topic: str | None = None
        self._prefix = ""
        #: Jobs whose failure fails the run whatever is being waited for (consumers, probe).
        self._watched: list[str] = []
        #: Jobs whose pods must not finish before greenflow stops them (consumers).
        self._running: list[str] = []
        self._consumers: str | None = None
        self._probe: str | None = None
        self._probe_records = 0
        #: From the probe's calibration round: its round trip per record, and how long a probe
        #: Job takes from its creation to its first record (to start the measured round on time).
        self._probe_per_record_s = 0.01
        self._probe_startup_s = 0.0
        #: When each watched Job was first seen complete (greenflow's monotonic clock): the
        #: calibration round ends while greenflow waits for the group.
        self._seen_complete: dict[str, float] = {}

    @property
    def consumers(self) -> int:
        return int(getattr(self.config, "consumers", 0) or 0)

    # ---------------------------------------------------------------- lifecycle

    def prepare(self, ctx: RunContext) -> None:
        if not ctx.inventory.with_role(WORKER_ROLE):
            nodes = (
                ", ".join(
                    f"{h.name} ({', '.join(sorted(h.roles)) or 'no role'})"
                    for h in ctx.inventory.hosts
                )
                or "none"
            )
            msg = (
                f"kafka-ingest runs its producers on nodes with the role {WORKER_ROLE!r} and "
                f"no node has it (nodes: {nodes}); label one (see the platform's role_labels)"
            )
            raise WorkloadError(msg)
        self._prefix = dns_label(f"gf-{ctx.run_id}", 30)
        topic = f"greenflow-{ctx.run_id}"
        if self.consumers:
            self._consumer_args(topic)  # refuses tools it cannot run, before any Job
        self._topic = topic
        c = self.config
        self._run_tool(
            ctx,
            "topic-create",
            topic_command(
                self.bootstrap, self._topic, partitions=c.partitions, replication=c.replication
            ),
            what=f"creating topic {self._topic!r}",
        )
        if self.consumers:
            # The probe's own topic, so that the main topic's counts stay exact (as locally).
            self._probe_topic = f"{topic}-e2e"
            self._run_tool(
                ctx,
                "topic-create-e2e",
                topic_command(
                    self.bootstrap, self._probe_topic, partitions=1, replication=c.replication
                ),
                what=f"creating topic {self._probe_topic!r}",
            )

    def execute(self, ctx: RunContext) -> WorkloadResult:
        from greenflow_kafka.perf import parse_producer_output, producer_perf_args, records_for

        c = self.config
        assert self._topic is not None, "prepare() first"
        per_producer = c.load / c.producers
        ctx.phases.enter(Phase.WARMUP)
        if self.consumers:
            # As locally: the group is formed before the first record is produced, and the
            # probe's calibration round overlaps its forming.
            self._start_consumers(ctx)
            calibration = self._start_probe_calibration(ctx)
            self._wait_group_ready(ctx)
            self._finish_probe_calibration(ctx, calibration)
        # A first read, before any producer, proves the tool works and measures how long a
        # read Job takes here (seconds: a pod and a JVM, two with consumers). The boundary
        # reads are started early by that much, and the producers must outlast both: on two
        # busy cores a read took 15-36 s, longer than a fixed slack.
        lag = self._read_offsets(ctx, "offsets-warmup", None, None).lag
        seconds = max(c.warmup, 2 * lag) + c.settle + c.duration + c.tail + KUBE_SLACK_S
        args = producer_perf_args(
            self.version,
            bootstrap_servers=self.bootstrap,
            topic=self._topic,
            num_records=records_for(per_producer, seconds),
            record_size=c.message_size,
            throughput=per_producer,
            acks=str(c.acks),
            producer_props=c.producer_config,
            warmup_records=records_for(per_producer, c.warmup) if c.warmup > 0 else 0,
        )
        heap = heap_mib(c.producer_heap)
        producers = self._job_name("producers")
        self._create(
            ToolJob(
                name=producers,
                namespace=self.session.namespace,
                image=self.image,
                command=producer_command(args),
                labels=self._labels(ctx),
                node_selector=self.session.node_selector(WORKER_ROLE),
                tolerations=self.session.tolerations([WORKER_ROLE]),
                component="producer",
                heap_mib=heap,
                memory=tool_memory(heap),
                cpu_request="500m",
                parallelism=c.producers,
                active_deadline_s=math.ceil(START_TIMEOUT_S + 3 * seconds + 120),
            )
        )
        node = self._wait_producers_sending(ctx, producers)
        sending = time.monotonic()
        self._sleep_checking(ctx, producers, sending + c.warmup - lag - time.monotonic())
        # Checked when the start read is created, `lag` before its stamp: the producers have
        # that much longer to settle, never less.
        settled = self._settle(ctx, producers, per_producer)
        if self.consumers:
            self._start_probe(ctx, node, lag)
        start_read = self._read_offsets(ctx, "offsets-start", producers, node)
        first, group_first = start_read.reading, start_read.committed
        start = ctx.phases.enter(Phase.MEASURE, at=start_read.boundary())
        # The end read is created as long before the window is up as the start read took
        # from its creation to its stamp.
        self._sleep_checking(
            ctx, producers, start + c.duration - start_read.stamp_lag - time.time()
        )
        end_read = self._read_offsets(ctx, "offsets-end", producers, node)
        second, group_second = end_read.reading, end_read.committed
        end = ctx.phases.enter(Phase.COOLDOWN, at=end_read.boundary())
        # Consumers have done their part: stopped now, while the producers finish their tail.
        consumer_records = self._stop_consumers()
        early = [p for p in self._pods(producers) if pod_finished(p)]
        if failed := [p for p in early if pod_failure(p)]:
            self._raise_pod_failure(producers, failed[0])
        if early:
            names = ", ".join(f"producer-{pod_index(p)}" for p in early)
            msg = (
                f"{names} finished before MEASURE ended, so the load did not cover the "
                f"window (producers start at different times on Kubernetes); raise `tail` "
                f"(now {c.tail:g}s)"
            )
            raise WorkloadError(msg)
        messages = second.total - first.total
        achieved = messages / (end - start)

        pods = self._wait_job(
            ctx,
            producers,
            c.producers,
            timeout_s=max(60.0, 3 * (c.tail + KUBE_SLACK_S) + 30),
            what="the producers to finish their record count",
        )
        load_end = time.monotonic()
        stats = []
        for pod in sorted(pods, key=pod_index):
            text = self._logs(pod)
            out = parse_producer_output(text)
            if out.total is None or (out.steady is None and c.warmup > 0):
                msg = (
                    f"producer-{pod_index(pod)} (pod {pod['metadata']['name']}) printed no "
                    f"summary; last lines of its log:\n{_tail_lines(text)}"
                )
                raise WorkloadError(msg)
            stats.append(out.steady or out.total)
        from greenflow_kafka.workload import _combine_latency

        latency = _combine_latency(stats)
        ratio = achieved / c.load
        if ratio < c.min_achieved_ratio:
            raise WorkloadError(
                f"achieved {achieved:.0f} msg/s, {ratio:.1%} of the asked {c.load:g} msg/s "
                f"(below min_achieved_ratio {c.min_achieved_ratio:g}); the broker or the "
                "producers cannot keep up at this load"
            )
        metrics: dict[str, float] = {
            "asked_messages_per_s": c.load,
            "achieved_ratio": ratio,
            "producer_reported_messages_per_s": sum(s.records_per_s for s in stats),
            "producer_records_total": float(sum(s.records for s in stats)),
        }
        metrics.update(self._boundary_metrics(ctx, first, second, end - start))
        # 1 when both MEASURE boundaries are the reads' own clock stamps (the energy window is
        # then the counting window); 0 when one fell back to when its Job was seen complete.
        metrics["boundaries_on_read_clock"] = float(
            start_read.boundary_on_read_clock and end_read.boundary_on_read_clock
        )
        metrics["offsets_read_lag_s"] = lag
        # 1 when every producer was back on its rate when MEASURE began (see `settle`).
        metrics["producers_settled"] = 1.0 if settled else 0.0
        if group_first is not None and group_second is not None:
            metrics.update(
                self._consumer_metrics(
                    ctx, group_first, group_second, second, messages, end - start, consumer_records
                )
            )
            metrics.update(self._probe_metrics(ctx, first, second, load_end))
        return WorkloadResult(
            units=float(messages),
            unit="message",
            payload_bytes=float(messages * c.message_size),
            achieved_rate=achieved,
            latency_ms=latency,
            metrics=metrics,
        )

    def clean(self, ctx: RunContext) -> None:
        """Delete the run's Jobs and pods (consumers and probe included), then the topics
        (by Jobs) while the target is healthy. Idempotent."""
        self._watched.clear()
        self._running.clear()
        self._consumers = self._probe = None
        self._delete_jobs()
        topics = [t for t in (self._topic, self._probe_topic) if t is not None]
        self._topic = self._probe_topic = None
        if not topics or self.service.health() is not None:
            return
        try:
            for topic, what_short in zip(
                topics, ("topic-delete", "topic-delete-e2e"), strict=False
            ):
                # The group's offsets go with the topic; the group itself is left to the
                # broker, as locally.
                self._run_tool(
                    ctx,
                    what_short,
                    topic_command(self.bootstrap, topic, delete=True),
                    what=f"deleting topic {topic!r}",
                    timeout_s=120.0,
                )
        finally:
            self._delete_jobs()

    # ---------------------------------------------------------------- consumers

    def _consumer_args(self, topic: str) -> list[str]:
        from greenflow_kafka.consumer import consumer_perf_args
        from greenflow_kafka.errors import ProducerPerfError
        from greenflow_kafka.workload import _COMMIT_INTERVAL_MS

        c = self.config
        # --timeout counts from the tool's start for a consumer that owns no partition, and
        # it must never exit by itself: it is stopped (its pod deleted) when MEASURE ends.
        # Every wait before then may take up to START_TIMEOUT_S on Kubernetes.
        timeout_s = 5 * START_TIMEOUT_S + c.warmup + c.duration + c.tail + KUBE_SLACK_S
        try:
            return consumer_perf_args(
                self.version,
                bootstrap_servers=self.bootstrap,
                topic=topic,
                group=topic,
                timeout_ms=round(1000 * timeout_s),
                from_latest=True,
                consumer_props={"auto.commit.interval.ms": str(_COMMIT_INTERVAL_MS)},
                # Each instance its client.id, consumer-<index>, as locally.
                name=f"consumer-$({INSTANCE_ENV})",
            )
        except ProducerPerfError as exc:
            msg = (
                f"consumers on Kubernetes need the Kafka tools' command-line settings "
                f"(Kafka 4.2 or newer; the tools image is {self.image}): {exc}"
            )
            raise WorkloadError(msg) from None

    def _start_consumers(self, ctx: RunContext) -> None:
        assert self._topic is not None
        c = self.config
        args = self._consumer_args(self._topic)
        timeout_s = int(args[args.index("--timeout") + 1]) / 1000
        heap = heap_mib(c.consumer_heap)
        name = self._job_name("consumers")
        self._create(
            ToolJob(
                name=name,
                namespace=self.session.namespace,
                image=self.image,
                command=consumer_command(args),
                labels=self._labels(ctx),
                node_selector=self.session.node_selector(WORKER_ROLE),
                tolerations=self.session.tolerations([WORKER_ROLE]),
                component="consumer",
                heap_mib=heap,
                memory=tool_memory(heap),
                cpu_request="500m",
                parallelism=self.consumers,
                instance_env=True,
                active_deadline_s=math.ceil(timeout_s + 120),
            )
        )
        self._consumers = name
        self._watched.append(name)
        self._running.append(name)

    def _wait_group_ready(self, ctx: RunContext) -> None:
        """Wait until the group is stable with every consumer a member, every partition
        owned and committed (as locally), looking at it with a Job that describes it over
        and over; delete that Job."""
        assert self._topic is not None
        topic = group = self._topic
        want, partitions = self.consumers, set(range(self.config.partitions))
        name = self._job_name("group-check")
        self._create(
            ToolJob(
                name=name,
                namespace=self.session.namespace,
                image=self.image,
                command=group_check_command(self.bootstrap, group),
                labels=self._labels(ctx),
                node_selector=self.session.node_selector(WORKER_ROLE),
                tolerations=self.session.tolerations([WORKER_ROLE]),
                component="group-check",
                active_deadline_s=math.ceil(START_TIMEOUT_S + 60),
            )
        )
        seen = "nothing yet"

        def ready(pods: list[dict[str, Any]]) -> bool:
            nonlocal seen
            for pod in pods:
                block = last_group_check(self._logs(pod))
                if block is None:
                    continue
                g = parse_group_output(block, group, topic)
                seen = g.describe(want)
                if (
                    g.state == "stable"
                    and g.members == want
                    and g.assigned >= partitions
                    and set(g.committed) >= partitions
                ):
                    return True
            return False

        try:
            self._wait(
                ctx,
                name,
                ready,
                timeout_s=START_TIMEOUT_S,
                what=f"consumer group {group!r} to be stable with {want} members",
            )
        except WorkloadError as exc:
            msg = f"{exc}; the group last seen: {seen}"
            raise WorkloadError(msg) from None
        finally:
            self._delete_job(name)

    def _stop_consumers(self) -> int:
        """Read what each consumer last reported, then stop them all (their Job and pods
        deleted: SIGTERM, as locally); return the records they reported reading."""
        from greenflow_kafka.consumer import parse_consumer_output

        name, self._consumers = self._consumers, None
        if name is None:
            return 0
        self._watched.remove(name)
        self._running.remove(name)
        total = sum(parse_consumer_output(self._logs(p)).records for p in self._pods(name))
        self._delete_job(name)
        return total

    def _consumer_metrics(
        self,
        ctx: RunContext,
        before: GroupReading,
        after: GroupReading,
        ends: OffsetsReading,
        messages: int,
        window_s: float,
        consumer_records: int,
    ) -> dict[str, float]:
        """The local run's consumer metrics, from the group reads at the MEASURE boundaries."""
        from greenflow_kafka.workload import _BEHIND_RATIO

        consumed = sum(
            after.committed.get(p, 0) - before.committed.get(p, 0) for p in after.committed
        )
        # The lag against the log-end offsets the group read printed beside the commits (the
        # same instant), else the end read's.
        lag = sum(
            max(0, after.log_end.get(p, off) - after.committed.get(p, 0))
            for p, off in ends.offsets.items()
        )
        metrics = {
            "consumed_messages": float(consumed),
            "consumed_messages_per_s": consumed / window_s,
            "consumer_lag_messages": float(lag),
            "consumer_records_total": float(consumer_records),
        }
        if messages:
            metrics["consumed_ratio"] = consumed / messages
        if before.ended is not None and after.ended is not None:
            metrics["committed_read_interval_s"] = after.ended - before.ended
        if messages and consumed < _BEHIND_RATIO * messages:
            log.warning(
                "kafka_ingest.consumers_behind",
                run=ctx.run_id,
                consumed=consumed,
                produced=messages,
                lag=lag,
            )
        return metrics

    # ---------------------------------------------------------------- latency probe

    def _probe_job(
        self,
        ctx: RunContext,
        what_short: str,
        records: int,
        *,
        delay_s: float = 0.0,
        node: str | None = None,
    ) -> str:
        assert self._probe_topic is not None
        c = self.config
        args = probe_args(
            self.version,
            bootstrap=self.bootstrap,
            topic=self._probe_topic,
            records=records,
            record_size=c.message_size,
            acks="all" if str(c.acks) in ("all", "-1") else "1",
        )
        heap = heap_mib(c.consumer_heap)
        name = self._job_name(what_short)
        self._create(
            ToolJob(
                name=name,
                namespace=self.session.namespace,
                image=self.image,
                command=probe_command(args, delay_s=delay_s),
                labels=self._labels(ctx),
                node_selector=self.session.node_selector(WORKER_ROLE),
                tolerations=self.session.tolerations([WORKER_ROLE]),
                component=what_short,
                heap_mib=heap,
                memory=tool_memory(heap),
                node_name=node,
                active_deadline_s=math.ceil(
                    START_TIMEOUT_S + delay_s + 2 * (c.duration + c.tail) + 120
                ),
            )
        )
        self._watched.append(name)
        return name

    def _start_probe_calibration(self, ctx: RunContext) -> tuple[str, float]:
        created = time.monotonic()
        return self._probe_job(ctx, "e2e-calibration", PROBE_CALIBRATION_RECORDS), created

    def _finish_probe_calibration(self, ctx: RunContext, calibration: tuple[str, float]) -> None:
        """The calibration round's round trip sizes the measured round, and how long it took
        to start places it (see :meth:`_start_probe`)."""
        name, created = calibration
        (pod,) = self._wait_job(
            ctx,
            name,
            1,
            timeout_s=START_TIMEOUT_S,
            what="the end-to-end latency probe's calibration round",
        )
        lag = self._seen_complete.get(name, time.monotonic()) - created
        text = self._logs(pod)
        cal = parse_probe_output(text, PROBE_CALIBRATION_RECORDS)
        if cal.stats is None:
            msg = (
                f"the end-to-end latency probe (calibration round, "
                f"{PROBE_CALIBRATION_RECORDS} records on {self._probe_topic!r}) printed no "
                f"summary; last lines of its log:\n{_tail_lines(text)}"
            )
            raise WorkloadError(msg)
        self._probe_per_record_s = cal.per_record_s or 0.01
        self._probe_startup_s = max(0.0, lag - PROBE_CALIBRATION_RECORDS * cal.stats.avg_ms / 1000)
        self._watched.remove(name)
        self._delete_job(name)

    def _start_probe(self, ctx: RunContext, node: str | None, read_lag: float) -> None:
        """Create the measured round with the start read, on the reads' node: it sleeps for
        the start read's lag minus its own start-up (both observed in the warm-up), so that
        its JVM starts before MEASURE and its records begin about when MEASURE does. Sized,
        as locally, to fill 70 % of ``duration + tail`` at the calibrated round trip."""
        c = self.config
        self._probe_records = max(
            10, math.floor(PROBE_FILL * (c.duration + c.tail) / self._probe_per_record_s)
        )
        self._probe = self._probe_job(
            ctx,
            "e2e-probe",
            self._probe_records,
            delay_s=max(0.0, read_lag - self._probe_startup_s),
            node=node,
        )

    def _probe_metrics(
        self, ctx: RunContext, first: OffsetsReading, second: OffsetsReading, load_end: float
    ) -> dict[str, float]:
        """The local run's probe metrics. Coverage is of the window between the two boundary
        reads on the reads' node clock (the probe runs there too); the overrun is on
        greenflow's clock, from the producers seen finished to the probe seen finished."""
        from greenflow_kafka.workload import _PROBE_GRACE

        name = self._probe
        if name is None:
            return {}
        c = self.config
        deadline = load_end + max(2.0, _PROBE_GRACE * (c.duration + c.tail))
        while True:
            done = [p for p in self._check(name) if pod_succeeded(p)]
            if done:
                break
            if time.monotonic() >= deadline:
                log.warning(
                    "kafka_ingest.e2e_incomplete",
                    run=ctx.run_id,
                    reason="the probe's measured round was still running after the load",
                )
                return {}
            ctx.sleep(_POLL_S)
        finished = time.monotonic()
        self._watched.remove(name)
        self._probe = None
        text = self._logs(done[0])
        measured = parse_probe_output(text, self._probe_records)
        s = measured.stats
        if s is None:
            msg = (
                f"the end-to-end latency probe (measured round, {self._probe_records} records "
                f"on {self._probe_topic!r}) printed no summary; last lines of its log:\n"
                f"{_tail_lines(text)}"
            )
            raise WorkloadError(msg)
        coverage = (
            measured.coverage(first.ended, second.ended)
            if first.ended is not None and second.ended is not None
            else 0.0
        )
        return {
            "e2e_latency_avg_ms": measured.avg_ms if measured.avg_ms is not None else s.avg_ms,
            "e2e_latency_p50_ms": s.p50_ms,
            "e2e_latency_p99_ms": s.p99_ms,
            "e2e_latency_p999_ms": s.p999_ms,
            "e2e_probe_records": float(measured.records),
            "e2e_probe_coverage_ratio": coverage,
            "e2e_probe_overrun_s": max(0.0, finished - load_end),
            **(
                {"e2e_probe_first_record_ms": measured.first_ms}
                if measured.first_ms is not None
                else {}
            ),
        }

    # ---------------------------------------------------------------- helpers

    def _job_name(self, what: str) -> str:
        return f"{self._prefix}-{what}"

    def _labels(self, ctx: RunContext) -> dict[str, str]:
        return {**self.session.labels, RUN_LABEL: dns_label(ctx.run_id, 63)}

    def _create(self, job: ToolJob) -> None:
        self._jobs.append(job.name)
        self.session.apply(tool_job(job))

    def _pods(self, job: str) -> list[dict[str, Any]]:
        return list(self.session.list_objects("Pod", {JOB_LABEL: job}))

    def _delete_job(self, name: str) -> None:
        self.session.delete("Job", name)
        # With no garbage collector (or a slow one) the pods would outlive their Job.
        for pod in self._pods(name):
            self.session.delete("Pod", pod["metadata"]["name"])
        if name in self._jobs:
            self._jobs.remove(name)

    def _delete_jobs(self) -> None:
        while self._jobs:
            self._delete_job(self._jobs[-1])

    def _logs(self, pod: Mapping[str, Any], tail_lines: int | None = None) -> str:
        try:
            if tail_lines is not None:
                return self.session.pod_logs(pod["metadata"]["name"], tail_lines=tail_lines)
            return self.session.pod_logs(pod["metadata"]["name"])
        except Exception as exc:  # a node gone, or no kubelet to serve them
            return f"(logs unavailable: {type(exc).__name__}: {exc})"

    def _raise_pod_failure(self, job: str, pod: Mapping[str, Any], why: str | None = None) -> None:
        meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
        why = why or pod_failure(pod) or job_failure(self.session.get("Job", job)) or "failed"
        msg = (
            f"Job {job}: pod {meta.get('name')} (instance {pod_index(pod)}) on node "
            f"{spec.get('nodeName') or '?'}: {why}; last lines of its log:\n"
            f"{_tail_lines(self._logs(pod))}"
        )
        raise WorkloadError(msg)

    def _check(self, job: str, also: Sequence[str] = ()) -> list[dict[str, Any]]:
        """Raise on a failed pod or Job (``job``, ``also`` and the watched consumers and
        probe), a consumer that exited by itself, or an unhealthy target; return ``job``'s
        pods."""
        result: list[dict[str, Any]] = []
        for name in dict.fromkeys((job, *also, *self._watched)):
            pods = self._pods(name)
            for pod in pods:
                if pod_failure(pod):
                    self._raise_pod_failure(name, pod)
                if name in self._running and pod_finished(pod):
                    self._raise_pod_failure(
                        name,
                        pod,
                        "exited by itself during the run (consumers run until "
                        "greenflow stops them at the end of MEASURE)",
                    )
            if why := job_failure(self.session.get("Job", name)):
                msg = f"Job {name} failed: {why}"
                raise WorkloadError(msg)
            if name == job:
                result = pods
            if pods and name not in self._seen_complete and all(pod_succeeded(p) for p in pods):
                self._seen_complete[name] = time.monotonic()
        reason = self.service.health()
        if reason:
            msg = f"service {self.config.target!r} failed during the run: {reason}"
            raise WorkloadError(msg)
        return result

    def _wait(
        self,
        ctx: RunContext,
        job: str,
        done: Callable[[list[dict[str, Any]]], bool],
        *,
        timeout_s: float,
        what: str,
        also: Sequence[str] = (),
        unschedulable_fails: bool = False,
    ) -> list[dict[str, Any]]:
        """Poll until ``done(pods of job)``; raise on what :meth:`_check` finds, on the
        timeout (with the blocking condition), and — with ``unschedulable_fails``, for Jobs
        whose timing matters — as soon as the scheduler says a pod does not fit."""
        end = time.monotonic() + timeout_s
        while True:
            pods = self._check(job, also)
            if done(pods):
                return pods
            if unschedulable_fails:
                self._raise_unschedulable(job, what, pods)
            if time.monotonic() > end:
                blocked = [f"{p['metadata']['name']}: {b}" for p in pods if (b := pod_blocked(p))]
                phases = ", ".join(
                    f"{p['metadata']['name']} {(p.get('status') or {}).get('phase')}" for p in pods
                )
                seen = "; ".join(blocked) or (f"pods {phases}" if pods else "no pod created yet")
                msg = (
                    f"timed out after {timeout_s:g}s waiting for {what} (Job {job}); "
                    f"last seen: {seen}"
                )
                raise WorkloadError(msg)
            ctx.sleep(_POLL_S)

    def _raise_unschedulable(self, job: str, what: str, pods: list[dict[str, Any]]) -> None:
        for pod in pods:
            why = pod_blocked(pod)
            if why and why.startswith("Unschedulable"):
                running = "the producers" + (" and consumers" if self.consumers else "")
                msg = (
                    f"{what}: pod {pod['metadata']['name']} of Job {job} cannot be "
                    f"scheduled ({why}). While {running} run, the worker nodes need room "
                    f"for this Job too (cpu request {TOOL_CPU}, memory "
                    f"{TOOL_MEMORY}); waiting would move the MEASURE boundary until the "
                    "load ends. Lower the cpu of the target service (it shares nodes with "
                    "the load?), use fewer producers or consumers, or add worker nodes."
                )
                raise WorkloadError(msg)

    def _wait_job(
        self,
        ctx: RunContext,
        job: str,
        completions: int,
        *,
        timeout_s: float,
        what: str,
        also: Sequence[str] = (),
        unschedulable_fails: bool = False,
    ) -> list[dict[str, Any]]:
        def done(pods: list[dict[str, Any]]) -> bool:
            return sum(1 for p in pods if pod_succeeded(p)) >= completions

        pods = self._wait(
            ctx,
            job,
            done,
            timeout_s=timeout_s,
            what=what,
            also=also,
            unschedulable_fails=unschedulable_fails,
        )
        return [p for p in pods if pod_succeeded(p)]

    def _run_tool(
        self,
        ctx: RunContext,
        what_short: str,
        command: list[str],
        *,
        what: str,
        timeout_s: float = START_TIMEOUT_S,
        node: str | None = None,
        also: Sequence[str] = (),
        unschedulable_fails: bool = False,
    ) -> dict[str, Any]:
        """Run one tool Job to completion (checking ``also`` meanwhile); return its pod."""
        name = self._job_name(what_short)
        self._create(
            ToolJob(
                name=name,
                namespace=self.session.namespace,
                image=self.image,
                command=command,
                labels=self._labels(ctx),
                node_selector=self.session.node_selector(WORKER_ROLE),
                tolerations=self.session.tolerations([WORKER_ROLE]),
                component=what_short,
                node_name=node,
                active_deadline_s=math.ceil(timeout_s) + 60,
            )
        )
        return self._wait_job(
            ctx,
            name,
            1,
            timeout_s=timeout_s,
            what=what,
            also=also,
            unschedulable_fails=unschedulable_fails,
        )[0]

    def _read_offsets(
        self, ctx: RunContext, what_short: str, producers: str | None, node: str | None
    ) -> BoundaryRead:
        """Read the topic's end offsets (and, with consumers, first the group's committed
        offsets) with a Job on ``node`` (any worker when None), checking ``producers``
        meanwhile; return the readings and when, on greenflow's clock, the Job was created
        and seen complete."""
        assert self._topic is not None
        group = self._topic if self.consumers else None
        created, created_wall = time.monotonic(), time.time()
        pod = self._run_tool(
            ctx,
            what_short,
            offsets_command(self.bootstrap, self._topic, group),
            what=f"the end offsets of {self._topic!r} ({what_short})",
            timeout_s=START_TIMEOUT_S,
            node=node,
            also=[producers] if producers else [],
            # A boundary read that waits for room is a late boundary.
            unschedulable_fails=producers is not None,
        )
        lag = time.monotonic() - created
        seen_wall = created_wall + lag
        text = self._logs(pod)
        reading = parse_offsets_output(text, self._topic)
        if reading is None:
            msg = (
                f"the offsets Job {self._job_name(what_short)} printed no offset of topic "
                f"{self._topic!r}; last lines of its log:\n{_tail_lines(text)}"
            )
            raise WorkloadError(msg)
        committed: GroupReading | None = None
        if group is not None:
            committed = parse_group_output(text, group, self._topic)
            if not committed.committed:
                msg = (
                    f"the offsets Job {self._job_name(what_short)} printed no committed "
                    f"offset of group {group!r}; last lines of its log:\n{_tail_lines(text)}"
                )
                raise WorkloadError(msg)
        return BoundaryRead(reading, committed, lag, created_wall, seen_wall)

    def _wait_producers_sending(self, ctx: RunContext, job: str) -> str | None:
        """Wait until every producer pod has printed a report (it has records acknowledged);
        return the node of the first producer."""
        from greenflow_kafka.perf import parse_producer_output

        want: int = self.config.producers
        sending: set[str] = set()

        def done(pods: list[dict[str, Any]]) -> bool:
            for pod in pods:
                name = pod["metadata"]["name"]
                if name in sending or (pod.get("status") or {}).get("phase") != "Running":
                    continue
                out = parse_producer_output(self._logs(pod))
                if out.windows or out.total is not None:
                    sending.add(name)
            return len(sending) >= want

        pods = self._wait(
            ctx,
            job,
            done,
            timeout_s=START_TIMEOUT_S,
            what=f"all {want} producer(s) to report records sent",
        )
        first = min(pods, key=pod_index)
        node: str | None = (first.get("spec") or {}).get("nodeName")
        return node

    def _settle(self, ctx: RunContext, job: str, per_producer: float) -> bool:
        """As locally: wait (up to ``settle``) until each producer's last reported second,
        read from its pod log, is within 15 % above its rate; False when the budget ran out."""
        from greenflow_kafka.perf import (
            last_second_rates,
            parse_producer_output,
            producers_settled,
        )

        end = time.monotonic() + self.config.settle
        while True:
            pods = sorted(self._check(job), key=pod_index)
            # The last lines are enough: one report a second, and the log grows with the run.
            rates = last_second_rates(
                [
                    parse_producer_output(self._logs(pod, tail_lines=_SETTLE_TAIL_LINES))
                    for pod in pods
                ]
            )
            if len(rates) == self.config.producers and producers_settled(rates, per_producer):
                return True
            if time.monotonic() >= end:
                log.warning(
                    "kafka_ingest.not_settled",
                    run=ctx.run_id,
                    rates=rates,
                    asked=per_producer,
                    hint="a longer warmup lets the producers catch up first",
                )
                return False
            ctx.sleep(min(_SETTLE_POLL_S, max(0.0, end - time.monotonic())))

    def _sleep_checking(self, ctx: RunContext, job: str, seconds: float) -> None:
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            ctx.sleep(min(_CHECK_EVERY_S, left))
            self._check(job)

    def _boundary_metrics(
        self, ctx: RunContext, first: OffsetsReading, second: OffsetsReading, window_s: float
    ) -> dict[str, float]:
        if first.ended is None or second.ended is None:
            return {}
        interval = second.ended - first.ended
        mismatch = window_s - interval
        if abs(mismatch) > MISMATCH_WARN_RATIO * window_s:
            log.warning(
                "kafka_ingest.kube_boundary_mismatch",
                run=ctx.run_id,
                window_s=round(window_s, 3),
                read_interval_s=round(interval, 3),
            )
        return {
            "offsets_read_interval_s": interval,
            "measure_window_minus_read_interval_s": mismatch,
        }


__all__ = [
    "CLOCK_TOLERANCE_S",
    "KUBE_SLACK_S",
    "PROBE_CALIBRATION_RECORDS",
    "PROBE_FILL",
    "BoundaryRead",
    "GroupReading",
    "KubeIngestRun",
    "OffsetsReading",
    "ToolJob",
    "consumer_command",
    "group_check_command",
    "job_complete",
    "job_failure",
    "kube_of",
    "last_group_check",
    "offsets_command",
    "parse_group_output",
    "parse_offsets_output",
    "parse_probe_output",
    "pod_blocked",
    "pod_failure",
    "pod_index",
    "probe_args",
    "probe_command",
    "producer_command",
    "tool_job",
    "topic_command",
]
