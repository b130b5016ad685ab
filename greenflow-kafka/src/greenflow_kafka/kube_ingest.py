"""``kafka-ingest`` on Kubernetes: producers, topic administration and offset reads as Jobs.

The broker's bootstrap address (``<sts>-0.<svc>.<ns>.svc:9092,...``) resolves inside the
cluster only, so nothing here talks to Kafka from the machine running greenflow: every
Kafka client is a Job of the Kafka image on a worker node, and greenflow reads Job and pod
status, and pod logs, through the API server. The same run works against any service that
speaks the Kafka API and says where (``endpoints()["bootstrap"]``) — Kafka or Redpanda.

Per run:

1. **prepare** — a Job runs ``kafka-topics.sh --create --if-not-exists`` (partitions,
   replication). How long it took from creation to being seen complete is the first
   estimate of a tool Job's latency (scheduling, container start, JVM start, the request).
2. **execute** — WARMUP; one Indexed Job with ``parallelism = completions = producers`` runs
   ``kafka-producer-perf-test.sh`` with exactly the local path's arguments
   (:func:`greenflow_kafka.perf.producer_perf_args`), ``load / producers`` msg/s each. Warm-up
   counts from the moment *every* producer has printed its first report (so N producers
   start together as far as the load is concerned), then lasts ``warmup``.
   MEASURE is bounded by two reads of the topic's end offsets, each a Job running
   ``kafka-get-offsets.sh`` that prints the pod's clock (bash ``EPOCHREALTIME``) before and
   after the read. All reads run on the node of the first producer (the image is there, and
   they share one clock). A first read during the warm-up measures how long a read Job takes
   from creation to being seen complete; the start read is created that much before the
   warm-up ends, and MEASURE is entered when it is seen complete; the end read is created
   its own observed latency before ``duration`` is up, and COOLDOWN is entered when it is
   seen complete. Both boundaries thus lag their reads by about the same time. Messages in
   MEASURE are the difference of the two readings: a count, never rate × duration.
3. Producers exit by record count and print their summary (the steady-state line excludes
   the warm-up records); the summaries come from the pod logs
   (:func:`greenflow_kafka.perf.parse_producer_output`).
4. **clean** — the run's Jobs and their pods are deleted, then a Job runs
   ``kafka-topics.sh --delete`` and is deleted in turn.

Honesty of the boundaries. The count is exact between the two reads; what is approximate is
*when* each read happened relative to the recorded phase boundary (the lag of its Job being
seen complete). Because both lags have the same causes on the same node, the window is
shifted rather than stretched, and what remains is reported, not hidden:
``measure_window_minus_read_interval_s`` is (COOLDOWN − MEASURE) on greenflow's clock minus
(second read − first read) on the reading node's clock — no clock skew enters it. A value
beyond 5 % of the window is logged as ``kafka_ingest.kube_boundary_mismatch``. The
alternative, the producers' own record counts, would need the producers' report lines
aligned to the window, and they carry no timestamps.

Failures are noticed while the run goes: a producer pod that terminated with a non-zero exit
code or ``OOMKilled``, a Job with a ``Failed`` condition, a pod stuck Pending (unschedulable,
image pull errors) or a target service that turns unhealthy raises ``WorkloadError`` naming
the pod, its node, the reason and the last lines of its log. ``backoffLimit`` is 0: a retried
producer would send its records twice.

Producers are sized to run ``tail`` plus :data:`KUBE_SLACK_S` past the planned end of MEASURE
(pods start at different times, boundary reads take seconds); a producer that finished before
COOLDOWN fails the run, as the load would not have covered the window.

Consumers and the end-to-end latency probe are not run on Kubernetes yet (a run with
``consumers > 0`` fails in prepare with that message).
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import attrs
import structlog

from greenflow.api import Phase, RunContext, WorkloadResult
from greenflow.errors import WorkloadError
from greenflow_kafka.kube import KubeSessionLike, dns_label

log = structlog.get_logger("greenflow.kafka_ingest")

KAFKA_BIN = "/opt/kafka/bin"
#: Role of the nodes the load runs on (``KubeSession.node_selector``).
WORKER_ROLE = "worker"
APP_NAME = "kafka-ingest"
RUN_LABEL = "greenflow.io/run"
#: Set by us on every pod template, so a Job's pods are found without the controller's labels.
JOB_LABEL = "greenflow.io/job"
#: Producers run this much longer than warmup + duration + tail (see the module docstring).
KUBE_SLACK_S = 10.0
#: Heap and memory of the short tool Jobs (topics, offsets).
TOOL_HEAP_MIB = 192
TOOL_MEMORY = "512Mi"
#: Scheduling, image pull and JVM start of a Job before its first output.
START_TIMEOUT_S = 180.0
#: A boundary mismatch beyond this fraction of MEASURE is logged.
MISMATCH_WARN_RATIO = 0.05
_POLL_S = 0.2
_CHECK_EVERY_S = 1.0
# Java formats numbers with the default locale; parse_producer_output wants dots.
_JAVA_LOCALE = "-Duser.language=en -Duser.country=US"

_OFFSET_LINE = re.compile(r"^(?P<topic>[^\s:]+):(?P<partition>\d+):(?P<offset>-?\d+)$")
_READ_MARK = re.compile(r"^greenflow-read-(?P<which>start|end) (?P<t>\d+(?:[.,]\d+)?)$")


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
    cpu_request: str = "250m"
    parallelism: int = 1
    active_deadline_s: int = 600
    #: Run on this node (the boundary reads run where the first producer runs: the image is
    #: there already, and both reads share one clock).
    node_name: str | None = None


def tool_job(job: ToolJob) -> dict[str, Any]:
    """A Job manifest: ``parallelism = completions``, Indexed (pod *i* is instance *i*),
    never retried, bounded by ``activeDeadlineSeconds`` so nothing outlives a crashed
    greenflow by long. Memory request = limit (an overrun is an ``OOMKilled`` we report);
    cpu is requested, not limited: a throttled load generator would make the broker look slow.
    Several instances spread over nodes when they can (``ScheduleAnyway``)."""
    labels = {**job.labels, "app.kubernetes.io/name": APP_NAME,
              "app.kubernetes.io/component": job.component, JOB_LABEL: job.name}
    container = {
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
        pod_spec["affinity"] = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchFields": [
                {"key": "metadata.name", "operator": "In", "values": [job.node_name]}]}]}}}
    if job.parallelism > 1:
        pod_spec["topologySpreadConstraints"] = [{
            "maxSkew": 1,
            "topologyKey": "kubernetes.io/hostname",
            "whenUnsatisfiable": "ScheduleAnyway",
            "labelSelector": {"matchLabels": {JOB_LABEL: job.name}},
        }]
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


def topic_command(bootstrap: str, topic: str, *, partitions: int | None = None,
                  replication: int | None = None, delete: bool = False) -> list[str]:
    base = [f"{KAFKA_BIN}/kafka-topics.sh", "--bootstrap-server", bootstrap]
    if delete:
        return [*base, "--delete", "--if-exists", "--topic", topic]
    return [*base, "--create", "--if-not-exists", "--topic", topic,
            "--partitions", str(partitions or 1), "--replication-factor", str(replication or 1)]


def offsets_command(bootstrap: str, topic: str) -> list[str]:
    """End offsets of ``topic``, bracketed by the pod's clock (bash 5's ``EPOCHREALTIME``)."""
    script = (
        'echo "greenflow-read-start $EPOCHREALTIME"\n'
        f'{KAFKA_BIN}/kafka-get-offsets.sh --bootstrap-server "$0" --topic "$1" --time -1\n'
        'rc=$?\n'
        'echo "greenflow-read-end $EPOCHREALTIME"\n'
        'exit $rc\n'
    )
    return ["/bin/bash", "-c", script, bootstrap, topic]


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
            return (f"container {container} terminated: {reason or 'Error'} "
                    f"(exit code {code}){detail}")
    if status.get("phase") == "Failed":
        return f"pod failed: {status.get('reason') or 'Failed'} {status.get('message') or ''}".strip()
    return None


_STUCK_WAITING = {"ErrImagePull", "ImagePullBackOff", "InvalidImageName",
                  "CreateContainerConfigError", "CreateContainerError", "CrashLoopBackOff"}


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
    terms = list(_terminated({"containerStatuses": [
        {"name": cs.get("name"), "state": cs.get("state")}
        for cs in status.get("containerStatuses") or []]}))
    return bool(terms) and all(int(t.get("exitCode", 1)) == 0 for _c, t in terms)


def pod_finished(pod: Mapping[str, Any]) -> bool:
    status = pod.get("status") or {}
    return status.get("phase") in ("Succeeded", "Failed") or any(
        (cs.get("state") or {}).get("terminated") for cs in status.get("containerStatuses") or [])


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
    return any(c.get("type") == "Complete" and c.get("status") == "True"
               for c in status.get("conditions") or [])


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


def _tail_lines(text: str, lines: int = 15) -> str:
    kept = [ln for ln in text.splitlines() if ln.strip()][-lines:]
    return "\n".join(f"  {ln}" for ln in kept) or "  (no output)"


# -- the run --------------------------------------------------------------------------------


def kube_of(service: Any) -> KubeSessionLike | None:
    """The session a service was deployed through, or None when it runs elsewhere."""
    session = getattr(service, "kube_session", None)
    return session if session is not None else None


class KubeIngestRun:
    """One run of ``kafka-ingest`` on Kubernetes (prepare → execute → clean)."""

    def __init__(self, config: Any, service: Any, session: KubeSessionLike) -> None:
        self.config = config
        self.service = service
        self.session = session
        self.image: str = service.tools_image
        self.version: str = service.tools_version
        self.bootstrap: str = service.endpoints()["bootstrap"]
        self._jobs: list[str] = []
        self._topic: str | None = None
        self._prefix = ""

    # ---------------------------------------------------------------- lifecycle

    def prepare(self, ctx: RunContext) -> None:
        consumers = int(getattr(self.config, "consumers", 0) or 0)
        if consumers:
            msg = (f"consumers = {consumers}: consumers and the end-to-end latency probe do not "
                   "run on Kubernetes yet; set consumers = 0 for this platform")
            raise WorkloadError(msg)
        if not ctx.inventory.with_role(WORKER_ROLE):
            nodes = ", ".join(f"{h.name} ({', '.join(sorted(h.roles)) or 'no role'})"
                              for h in ctx.inventory.hosts) or "none"
            msg = (f"kafka-ingest runs its producers on nodes with the role {WORKER_ROLE!r} and "
                   f"no node has it (nodes: {nodes}); label one (see the platform's role_labels)")
            raise WorkloadError(msg)
        self._prefix = dns_label(f"gf-{ctx.run_id}", max_len=30)
        self._topic = f"greenflow-{ctx.run_id}"
        c = self.config
        self._run_tool(
            ctx, "topic-create",
            topic_command(self.bootstrap, self._topic, partitions=c.partitions,
                          replication=c.replication),
            what=f"creating topic {self._topic!r}")

    def execute(self, ctx: RunContext) -> WorkloadResult:
        from greenflow_kafka.perf import parse_producer_output, producer_perf_args, records_for

        c = self.config
        assert self._topic is not None, "prepare() first"
        per_producer = c.load / c.producers
        seconds = c.warmup + c.duration + c.tail + KUBE_SLACK_S
        args = producer_perf_args(
            self.version, bootstrap_servers=self.bootstrap, topic=self._topic,
            num_records=records_for(per_producer, seconds), record_size=c.message_size,
            throughput=per_producer, acks=str(c.acks), producer_props=c.producer_config,
            warmup_records=records_for(per_producer, c.warmup) if c.warmup > 0 else 0,
        )
        ctx.phases.enter(Phase.WARMUP)
        heap = heap_mib(c.producer_heap)
        producers = self._job_name("producers")
        self._create(ToolJob(
            name=producers, namespace=self.session.namespace, image=self.image,
            command=producer_command(args), labels=self._labels(ctx),
            node_selector=self.session.node_selector(WORKER_ROLE),
            tolerations=self.session.tolerations([WORKER_ROLE]), component="producer",
            heap_mib=heap, memory=tool_memory(heap), cpu_request="500m",
            parallelism=c.producers,
            active_deadline_s=math.ceil(START_TIMEOUT_S + 3 * seconds + 120)))
        node = self._wait_producers_sending(ctx, producers)
        sending = time.monotonic()
        # A first read during the warm-up measures how long a read Job takes on that node
        # (and proves the tool works before anything is measured); the boundary reads are
        # then started early by that much, so that each is seen complete about on time.
        lag = self._read_offsets(ctx, "offsets-warmup", producers, node)[1]
        self._sleep_checking(ctx, producers, sending + c.warmup - lag - time.monotonic())
        first, lag = self._read_offsets(ctx, "offsets-start", producers, node)
        start = ctx.phases.enter(Phase.MEASURE)
        self._sleep_checking(ctx, producers, c.duration - lag)
        second, _ = self._read_offsets(ctx, "offsets-end", producers, node)
        end = ctx.phases.enter(Phase.COOLDOWN)
        early = [p for p in self._pods(producers) if pod_finished(p)]
        if failed := [p for p in early if pod_failure(p)]:
            self._raise_pod_failure(producers, failed[0])
        if early:
            names = ", ".join(f"producer-{pod_index(p)}" for p in early)
            msg = (f"{names} finished before MEASURE ended, so the load did not cover the "
                   f"window (producers start at different times on Kubernetes); raise `tail` "
                   f"(now {c.tail:g}s)")
            raise WorkloadError(msg)
        messages = second.total - first.total
        achieved = messages / (end - start)

        pods = self._wait_job(ctx, producers, c.producers,
                              timeout_s=max(60.0, 3 * (c.tail + KUBE_SLACK_S) + 30),
                              what="the producers to finish their record count")
        stats = []
        for pod in sorted(pods, key=pod_index):
            text = self._logs(pod)
            out = parse_producer_output(text)
            if out.total is None or (out.steady is None and c.warmup > 0):
                msg = (f"producer-{pod_index(pod)} (pod {pod['metadata']['name']}) printed no "
                       f"summary; last lines of its log:\n{_tail_lines(text)}")
                raise WorkloadError(msg)
            stats.append(out.steady or out.total)
        from greenflow_kafka.workload import _combine_latency

        latency = _combine_latency(stats)
        ratio = achieved / c.load
        if ratio < c.min_achieved_ratio:
            raise WorkloadError(
                f"achieved {achieved:.0f} msg/s, {ratio:.1%} of the asked {c.load:g} msg/s "
                f"(below min_achieved_ratio {c.min_achieved_ratio:g}); the broker or the "
                "producers cannot keep up at this load")
        metrics: dict[str, float] = {
            "asked_messages_per_s": c.load,
            "achieved_ratio": ratio,
            "producer_reported_messages_per_s": sum(s.records_per_s for s in stats),
            "producer_records_total": float(sum(s.records for s in stats)),
        }
        metrics.update(self._boundary_metrics(ctx, first, second, end - start))
        return WorkloadResult(
            units=float(messages), unit="message",
            payload_bytes=float(messages * c.message_size), achieved_rate=achieved,
            latency_ms=latency, metrics=metrics,
        )

    def clean(self, ctx: RunContext) -> None:
        """Delete the run's Jobs and pods, then the topic (by a Job) while the target is
        healthy. Idempotent."""
        self._delete_jobs()
        topic, self._topic = self._topic, None
        if topic is None or self.service.health() is not None:
            return
        try:
            self._run_tool(ctx, "topic-delete", topic_command(self.bootstrap, topic, delete=True),
                           what=f"deleting topic {topic!r}", timeout_s=120.0)
        finally:
            self._delete_jobs()

    # ---------------------------------------------------------------- helpers

    def _job_name(self, what: str) -> str:
        return f"{self._prefix}-{what}"

    def _labels(self, ctx: RunContext) -> dict[str, str]:
        return {**self.session.labels, RUN_LABEL: dns_label(ctx.run_id, max_len=63)}

    def _create(self, job: ToolJob) -> None:
        self._jobs.append(job.name)
        self.session.apply(tool_job(job))

    def _pods(self, job: str) -> list[dict[str, Any]]:
        return list(self.session.list_objects("Pod", {JOB_LABEL: job}))

    def _delete_jobs(self) -> None:
        while self._jobs:
            name = self._jobs.pop()
            self.session.delete("Job", name)
            # With no garbage collector (or a slow one) the pods would outlive their Job.
            for pod in self._pods(name):
                self.session.delete("Pod", pod["metadata"]["name"])

    def _logs(self, pod: Mapping[str, Any]) -> str:
        try:
            return self.session.pod_logs(pod["metadata"]["name"])
        except Exception as exc:  # a node gone, or no kubelet to serve them
            return f"(logs unavailable: {type(exc).__name__}: {exc})"

    def _raise_pod_failure(self, job: str, pod: Mapping[str, Any]) -> None:
        meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
        why = pod_failure(pod) or job_failure(self.session.get("Job", job)) or "failed"
        msg = (f"Job {job}: pod {meta.get('name')} (instance {pod_index(pod)}) on node "
               f"{spec.get('nodeName') or '?'}: {why}; last lines of its log:\n"
               f"{_tail_lines(self._logs(pod))}")
        raise WorkloadError(msg)

    def _check(self, job: str, also: Sequence[str] = ()) -> list[dict[str, Any]]:
        """Raise on a failed pod or Job (``job`` and ``also``) or an unhealthy target;
        return ``job``'s pods."""
        result: list[dict[str, Any]] = []
        for name in (job, *also):
            pods = self._pods(name)
            for pod in pods:
                if pod_failure(pod):
                    self._raise_pod_failure(name, pod)
            if why := job_failure(self.session.get("Job", name)):
                msg = f"Job {name} failed: {why}"
                raise WorkloadError(msg)
            if name == job:
                result = pods
        reason = self.service.health()
        if reason:
            msg = f"service {self.config.target!r} failed during the run: {reason}"
            raise WorkloadError(msg)
        return result

    def _wait(self, ctx: RunContext, job: str, done: Callable[[list[dict[str, Any]]], bool],
              *, timeout_s: float, what: str, also: Sequence[str] = ()) -> list[dict[str, Any]]:
        end = time.monotonic() + timeout_s
        while True:
            pods = self._check(job, also)
            if done(pods):
                return pods
            if time.monotonic() > end:
                blocked = [f"{p['metadata']['name']}: {b}" for p in pods if (b := pod_blocked(p))]
                phases = ", ".join(f"{p['metadata']['name']} {(p.get('status') or {}).get('phase')}"
                                   for p in pods)
                seen = "; ".join(blocked) or (f"pods {phases}" if pods else "no pod created yet")
                msg = (f"timed out after {timeout_s:g}s waiting for {what} (Job {job}); "
                       f"last seen: {seen}")
                raise WorkloadError(msg)
            ctx.sleep(_POLL_S)

    def _wait_job(self, ctx: RunContext, job: str, completions: int, *, timeout_s: float,
                  what: str, also: Sequence[str] = ()) -> list[dict[str, Any]]:
        def done(pods: list[dict[str, Any]]) -> bool:
            return sum(1 for p in pods if pod_succeeded(p)) >= completions

        pods = self._wait(ctx, job, done, timeout_s=timeout_s, what=what, also=also)
        return [p for p in pods if pod_succeeded(p)]

    def _run_tool(self, ctx: RunContext, what_short: str, command: list[str], *, what: str,
                  timeout_s: float = START_TIMEOUT_S, node: str | None = None,
                  also: Sequence[str] = ()) -> dict[str, Any]:
        """Run one tool Job to completion (checking ``also`` meanwhile); return its pod."""
        name = self._job_name(what_short)
        self._create(ToolJob(
            name=name, namespace=self.session.namespace, image=self.image, command=command,
            labels=self._labels(ctx), node_selector=self.session.node_selector(WORKER_ROLE),
            tolerations=self.session.tolerations([WORKER_ROLE]), component=what_short, node_name=node, active_deadline_s=math.ceil(timeout_s) + 60))
        return self._wait_job(ctx, name, 1, timeout_s=timeout_s, what=what, also=also)[0]

    def _read_offsets(self, ctx: RunContext, what_short: str, producers: str,
                      node: str | None) -> tuple[OffsetsReading, float]:
        """Read the topic's end offsets with a Job on ``node``; return the reading and how long
        it took from creating the Job to seeing it complete."""
        assert self._topic is not None
        created = time.monotonic()
        pod = self._run_tool(ctx, what_short, offsets_command(self.bootstrap, self._topic),
                             what=f"the end offsets of {self._topic!r} ({what_short})",
                             timeout_s=START_TIMEOUT_S, node=node, also=[producers])
        lag = time.monotonic() - created
        text = self._logs(pod)
        reading = parse_offsets_output(text, self._topic)
        if reading is None:
            msg = (f"the offsets Job {self._job_name(what_short)} printed no offset of topic "
                   f"{self._topic!r}; last lines of its log:\n{_tail_lines(text)}")
            raise WorkloadError(msg)
        return reading, lag

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

        pods = self._wait(ctx, job, done, timeout_s=START_TIMEOUT_S,
                          what=f"all {want} producer(s) to report records sent")
        first = min(pods, key=pod_index)
        node: str | None = (first.get("spec") or {}).get("nodeName")
        return node

    def _sleep_checking(self, ctx: RunContext, job: str, seconds: float) -> None:
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            ctx.sleep(min(_CHECK_EVERY_S, left))
            self._check(job)

    def _boundary_metrics(self, ctx: RunContext, first: OffsetsReading, second: OffsetsReading,
                          window_s: float) -> dict[str, float]:
        if first.ended is None or second.ended is None:
            return {}
        interval = second.ended - first.ended
        mismatch = window_s - interval
        if abs(mismatch) > MISMATCH_WARN_RATIO * window_s:
            log.warning("kafka_ingest.kube_boundary_mismatch", run=ctx.run_id,
                        window_s=round(window_s, 3), read_interval_s=round(interval, 3))
        return {"offsets_read_interval_s": interval,
                "measure_window_minus_read_interval_s": mismatch}


__all__ = [
    "KUBE_SLACK_S",
    "KubeIngestRun",
    "OffsetsReading",
    "ToolJob",
    "job_complete",
    "job_failure",
    "kube_of",
    "offsets_command",
    "parse_offsets_output",
    "pod_blocked",
    "pod_failure",
    "pod_index",
    "producer_command",
    "tool_job",
    "topic_command",
]
