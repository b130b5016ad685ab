"""kafka-ingest on Kubernetes: every Kafka client of a run (producers, consumers, the latency
probe, topic administration, offset reads) is a Job of the target's tools image on a worker
node, because the broker's bootstrap address resolves inside the cluster only; greenflow
reads Job and pod status and pod logs through the API server. The producers are GreenFlow's
load generator, whose jar reaches them in a ConfigMap. How the run places its
MEASURE boundaries and what it stores: docs/kafka.md, "kafka-ingest on Kubernetes"."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import attrs
import structlog

from greenflow.api import Phase, ProcessGroups, RunContext, WorkloadResult
from greenflow.errors import WorkloadError
from greenflow_kafka.consumer import consumer_perf_args, parse_consumer_output
from greenflow_kafka.errors import ProducerPerfError
from greenflow_kafka.generator import (
    GeneratorOutput,
    generator_args,
    parse_generator_output,
    resolve_generator,
)
from greenflow_kafka.generator import window as generator_window
from greenflow_kafka.ingest.config import COMMIT_INTERVAL_MS, KafkaIngestConfig
from greenflow_kafka.ingest.jobs import (
    INSTANCE_ENV,
    RUN_LABEL,
    WORKER_ROLE,
    consumer_command,
    generator_configmap,
    group_check_command,
    offsets_command,
    pod_failure,
    pod_finished,
    pod_index,
    pod_succeeded,
    probe_args,
    probe_command,
    producer_command,
    tool_memory,
    topic_command,
)
from greenflow_kafka.ingest.metrics import (
    achieved_ratio,
    consumer_metrics,
    judged,
    probe_metrics,
    producer_metrics,
)
from greenflow_kafka.ingest.parse import (
    BoundaryRead,
    GroupReading,
    OffsetsReading,
    last_group_check,
    parse_group_output,
    parse_offsets_output,
    parse_probe_output,
)
from greenflow_kafka.ingest.watch import POLL_S, JobWatch, Pods, log_tail
from greenflow_kafka.kube import java_heap_mib
from greenflow_kafka.perf import producers_settled
from greenflow_kafka.target import KafkaTarget
from greenflow_kubernetes import KubeSession, dns_label

log = structlog.get_logger("greenflow.kafka_ingest")

#: Producers run this much longer than warmup + settle + duration + tail, plus twice the
#: read lag measured before they start: pods start at different times, and a boundary read
#: takes seconds (15-36 s on a busy 2-core node with consumers, where a fixed slack made the
#: load end before MEASURE did).
KUBE_SLACK_S = 10.0
#: Scheduling, image pull and JVM start of a Job before its first output.
START_TIMEOUT_S = 180.0
#: A boundary mismatch beyond this fraction of MEASURE is logged.
MISMATCH_WARN_RATIO = 0.05
#: The probe's calibration round and how much of its span the measured round fills: the
#: defaults of :class:`greenflow_kafka.consumer.LatencyProbe`, which the local path uses.
PROBE_CALIBRATION_RECORDS = 30
PROBE_FILL = 0.7
_CHECK_EVERY_S = 1.0
#: While settling: how often the producers' logs are read, and how many of their last lines.
_SETTLE_POLL_S = 0.5
_SETTLE_TAIL_LINES = 5


@attrs.frozen
class _Window:
    """MEASURE as two boundary reads, and where it sits on greenflow's clock."""

    start_read: BoundaryRead
    end_read: BoundaryRead
    start: float
    end: float

    @property
    def seconds(self) -> float:
        return self.end - self.start

    @property
    def messages(self) -> int:
        return self.end_read.reading.total - self.start_read.reading.total


class KubeIngestRun:
    """One run of ``kafka-ingest`` on Kubernetes (prepare → execute → clean)."""

    def __init__(
        self, config: KafkaIngestConfig, service: KafkaTarget, session: KubeSession
    ) -> None:
        self.config = config
        self.service = service
        self.session = session
        self.image = service.tools_image
        self.version = service.tools_version
        self.bootstrap = service.endpoints()["bootstrap"]
        #: The run's Jobs, from prepare on.
        self._watch: JobWatch | None = None
        self._topic: str | None = None
        self._probe_topic: str | None = None
        self._consumers: str | None = None
        #: The ConfigMap carrying the load generator's jar, from prepare on.
        self._generator: str | None = None
        self._probe: str | None = None
        self._probe_records = 0
        #: From the probe's calibration round: its round trip per record, and how long a probe
        #: Job takes from its creation to its first record (to start the measured round on time).
        self._probe_per_record_s = 0.01
        self._probe_startup_s = 0.0

    @property
    def consumers(self) -> int:
        return self.config.consumers

    @property
    def jobs(self) -> JobWatch:
        assert self._watch is not None, "prepare() first"
        return self._watch

    # ---------------------------------------------------------------- lifecycle

    def prepare(self, ctx: RunContext) -> None:
        self._check_workers(ctx)
        topic = f"greenflow-{ctx.run_id}"
        if self.consumers:
            self._consumer_args(topic)  # refuses tools it cannot run, before any Job
        self._watch = JobWatch(
            self.session,
            image=self.image,
            prefix=dns_label(f"gf-{ctx.run_id}", 30),
            labels={**self.session.labels, RUN_LABEL: dns_label(ctx.run_id, 63)},
            health=self.service.health,
            target=self.config.target,
            load="the producers" + (" and consumers" if self.consumers else ""),
        )
        self._topic = topic
        self._apply_generator()
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
        assert self._topic is not None, "prepare() first"
        ctx.phases.enter(Phase.WARMUP)
        if self.consumers:
            self._form_group(ctx)
        # A first read, before any producer, proves the tool works and measures how long a
        # read Job takes here (seconds: a pod and a JVM, two with consumers). The boundary
        # reads are started early by that much, and the producers must outlast both: on two
        # busy cores a read took 15-36 s, longer than a fixed slack.
        lag = self._read_offsets(ctx, "offsets-warmup", None, None).lag
        producers = self._start_producers(ctx, lag)
        node = self._wait_producers_sending(ctx, producers)
        settled = self._warm_up(ctx, producers, lag)
        if self.consumers:
            self._start_probe(ctx, node, lag)
        window = self._measure(ctx, producers, node)
        # Consumers have done their part: stopped now, while the producers finish their tail.
        consumer_records = self._stop_consumers()
        self._check_load_covered(producers)
        outputs = self._producer_outputs(ctx, producers)
        load_end = time.monotonic()
        return self._result(ctx, window, outputs, settled, lag, consumer_records, load_end)

    def clean(self, ctx: RunContext) -> None:
        """Delete the run's Jobs and pods (consumers and probe included), then the topics
        (by Jobs) while the target is healthy. Idempotent."""
        if self._watch is None:
            return  # prepare() created nothing
        self._consumers = self._probe = None
        self._watch.delete_all()
        if self._generator is not None:
            self.session.delete("ConfigMap", self._generator)
            self._generator = None
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
            self._watch.delete_all()

    def processes(self) -> ProcessGroups:
        """None on this host: the clients are pods, whose energy comes per pod."""
        return {}

    # ---------------------------------------------------------------- the steps of a run

    def _check_workers(self, ctx: RunContext) -> None:
        if ctx.inventory.with_role(WORKER_ROLE):
            return
        nodes = (
            ", ".join(
                f"{h.name} ({', '.join(sorted(h.roles)) or 'no role'})" for h in ctx.inventory.hosts
            )
            or "none"
        )
        msg = (
            f"kafka-ingest runs its producers on nodes with the role {WORKER_ROLE!r} and "
            f"no node has it (nodes: {nodes}); label one (see the platform's role_labels)"
        )
        raise WorkloadError(msg)

    def _form_group(self, ctx: RunContext) -> None:
        """As locally: the group is formed before the first record is produced, and the
        probe's calibration round overlaps its forming."""
        self._start_consumers(ctx)
        calibration = self._start_probe_calibration(ctx)
        self._wait_group_ready(ctx)
        self._finish_probe_calibration(ctx, calibration)

    def _apply_generator(self) -> None:
        """The ConfigMap with the load generator's jar (built here with mvn the first time),
        which the producer pods mount."""
        jar = resolve_generator().read_bytes()
        name = self.jobs.name("generator")
        self.session.apply(generator_configmap(name, self.session.namespace, self.jobs.labels, jar))
        self._generator = name

    def _start_producers(self, ctx: RunContext, lag: float) -> str:
        """One Indexed Job of ``producers`` pods running the load generator, its schedule
        sized to outlast MEASURE; its name."""
        assert self._topic is not None
        c = self.config
        seconds = max(c.warmup, 2 * lag) + c.settle + c.duration + c.tail + KUBE_SLACK_S
        args = generator_args(
            bootstrap_servers=self.bootstrap,
            topic=self._topic,
            rate=c.per_producer,
            record_size=c.message_size,
            seconds=seconds,
            ramp_seconds=c.ramp_s,
            acks=str(c.acks),
            producer_props=c.producer_config,
        )
        heap = java_heap_mib(c.producer_heap)
        return self.jobs.create(
            "producers",
            producer_command(args),
            component="producer",
            heap_mib=heap,
            memory=tool_memory(heap),
            cpu_request="500m",
            parallelism=c.producers,
            active_deadline_s=math.ceil(START_TIMEOUT_S + 3 * seconds + 120),
            generator_configmap=self._generator,
        )

    def _warm_up(self, ctx: RunContext, producers: str, lag: float) -> bool:
        """``warmup`` from the moment every producer sends, less the read lag (the start
        read is created that early), then up to ``settle``; whether they settled."""
        sending = time.monotonic()
        self._sleep_checking(ctx, producers, sending + self.config.warmup - lag - time.monotonic())
        # Checked when the start read is created, `lag` before its stamp: the producers have
        # that much longer to settle, never less.
        return self._settle(ctx, producers, self.config.per_producer)

    def _measure(self, ctx: RunContext, producers: str, node: str | None) -> _Window:
        """MEASURE between two offset reads on ``node``, entered at the reads' own stamps."""
        start_read = self._read_offsets(ctx, "offsets-start", producers, node)
        start = ctx.phases.enter(Phase.MEASURE, at=start_read.boundary())
        # The end read is created as long before the window is up as the start read took
        # from its creation to its stamp.
        self._sleep_checking(
            ctx, producers, start + self.config.duration - start_read.stamp_lag - time.time()
        )
        end_read = self._read_offsets(ctx, "offsets-end", producers, node)
        end = ctx.phases.enter(Phase.COOLDOWN, at=end_read.boundary())
        return _Window(start_read, end_read, start, end)

    def _check_load_covered(self, producers: str) -> None:
        """Raise when a producer finished (or failed) before MEASURE ended."""
        early = [p for p in self.jobs.pods(producers) if pod_finished(p)]
        if failed := [p for p in early if pod_failure(p)]:
            self.jobs.raise_pod_failure(producers, failed[0])
        if early:
            names = ", ".join(f"producer-{pod_index(p)}" for p in early)
            msg = (
                f"{names} finished before MEASURE ended, so the load did not cover the "
                f"window (producers start at different times on Kubernetes); raise `tail` "
                f"(now {self.config.tail:g}s)"
            )
            raise WorkloadError(msg)

    def _producer_outputs(self, ctx: RunContext, producers: str) -> list[GeneratorOutput]:
        """Wait for the producers to finish their schedule; what they printed, from their
        pod logs."""
        c = self.config
        pods = self.jobs.wait_job(
            ctx,
            producers,
            c.producers,
            timeout_s=max(60.0, 3 * (c.tail + KUBE_SLACK_S) + 30),
            what="the producers to finish their schedule",
        )
        outputs = []
        for pod in sorted(pods, key=pod_index):
            text = self.jobs.logs(pod)
            out = parse_generator_output(text)
            if out.end is None:
                msg = (
                    f"producer-{pod_index(pod)} (pod {pod['metadata']['name']}) printed no "
                    f"totals; last lines of its log:\n{log_tail(text)}"
                )
                raise WorkloadError(msg)
            outputs.append(out)
        return outputs

    def _result(
        self,
        ctx: RunContext,
        window: _Window,
        outputs: list[GeneratorOutput],
        settled: bool,
        lag: float,
        consumer_records: int,
        load_end: float,
    ) -> WorkloadResult:
        c = self.config
        messages = window.messages
        achieved = messages / window.seconds
        # The generators' reports are stamped with their pods' clocks; MEASURE's boundaries are
        # the reads' stamps on the first producer's node (see _measure).
        measured = generator_window(outputs, window.start, window.end)
        metrics = producer_metrics(c, achieved_ratio(c, achieved), measured, outputs, settled)
        first, second = window.start_read.reading, window.end_read.reading
        metrics.update(self._boundary_metrics(ctx, first, second, window.seconds))
        # 1 when both MEASURE boundaries are the reads' own clock stamps (the energy window is
        # then the counting window); 0 when one fell back to when its Job was seen complete.
        metrics["boundaries_on_read_clock"] = float(
            window.start_read.boundary_on_read_clock and window.end_read.boundary_on_read_clock
        )
        metrics["offsets_read_lag_s"] = lag
        group_first, group_second = window.start_read.committed, window.end_read.committed
        if group_first is not None and group_second is not None:
            metrics.update(
                self._consumer_metrics(
                    ctx, group_first, group_second, second, messages, window, consumer_records
                )
            )
            metrics.update(self._probe_metrics(ctx, first, second, load_end))
        result = WorkloadResult(
            units=float(messages),
            unit="message",
            payload_bytes=float(messages * c.message_size),
            achieved_rate=achieved,
            latency_ms=measured.latency.latency_ms(),
            metrics=metrics,
        )
        return judged(c, result)

    # ---------------------------------------------------------------- consumers

    def _consumer_args(self, topic: str) -> list[str]:
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
                consumer_props={"auto.commit.interval.ms": str(COMMIT_INTERVAL_MS)},
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
        heap = java_heap_mib(c.consumer_heap)
        name = self.jobs.create(
            "consumers",
            consumer_command(args),
            component="consumer",
            heap_mib=heap,
            memory=tool_memory(heap),
            cpu_request="500m",
            parallelism=self.consumers,
            instance_env=True,
            active_deadline_s=math.ceil(timeout_s + 120),
        )
        self._consumers = name
        self.jobs.watch(name, keeps_running=True)

    def _wait_group_ready(self, ctx: RunContext) -> None:
        """Wait until the group is stable with every consumer a member, every partition
        owned and committed (as locally), looking at it with a Job that describes it over
        and over; delete that Job."""
        assert self._topic is not None
        topic = group = self._topic
        want, partitions = self.consumers, set(range(self.config.partitions))
        name = self.jobs.create(
            "group-check",
            group_check_command(self.bootstrap, group),
            active_deadline_s=math.ceil(START_TIMEOUT_S + 60),
        )
        seen = "nothing yet"

        def ready(pods: Pods) -> bool:
            nonlocal seen
            for pod in pods:
                block = last_group_check(self.jobs.logs(pod))
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
            self.jobs.wait(
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
            self.jobs.delete(name)

    def _stop_consumers(self) -> int:
        """Read what each consumer last reported, then stop them all (their Job and pods
        deleted: SIGTERM, as locally); return the records they reported reading."""
        name, self._consumers = self._consumers, None
        if name is None:
            return 0
        self.jobs.unwatch(name)
        total = sum(parse_consumer_output(self.jobs.logs(p)).records for p in self.jobs.pods(name))
        self.jobs.delete(name)
        return total

    def _consumer_metrics(
        self,
        ctx: RunContext,
        before: GroupReading,
        after: GroupReading,
        ends: OffsetsReading,
        messages: int,
        window: _Window,
        consumer_records: int,
    ) -> dict[str, float]:
        """The local run's consumer metrics, from the group reads at the MEASURE boundaries."""
        # The lag against the log-end offsets the group read printed beside the commits (the
        # same instant), else the end read's.
        lag = sum(
            max(0, after.log_end.get(p, off) - after.committed.get(p, 0))
            for p, off in ends.offsets.items()
        )
        # The lag's trend from the two group reads alone (each printed its log-end offsets
        # beside the commits), on the reading node's clock: a Job per read is too slow to
        # sample it through MEASURE as the local run does.
        points = [
            (
                g.ended,
                float(sum(max(0, end - g.committed.get(p, 0)) for p, end in g.log_end.items())),
            )
            for g in (before, after)
            if g.ended is not None
        ]
        metrics = consumer_metrics(
            ctx.run_id,
            before.committed,
            after.committed,
            lag=lag,
            messages=messages,
            window_s=window.seconds,
            consumer_records=consumer_records,
            lag_points=points,
        )
        if before.ended is not None and after.ended is not None:
            metrics["committed_read_interval_s"] = after.ended - before.ended
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
            acks=c.probe_acks,
        )
        heap = java_heap_mib(c.consumer_heap)
        name = self.jobs.create(
            what_short,
            probe_command(args, delay_s=delay_s),
            heap_mib=heap,
            memory=tool_memory(heap),
            node_name=node,
            active_deadline_s=math.ceil(START_TIMEOUT_S + delay_s + 2 * c.probe_span_s + 120),
        )
        self.jobs.watch(name)
        return name

    def _start_probe_calibration(self, ctx: RunContext) -> tuple[str, float]:
        created = time.monotonic()
        return self._probe_job(ctx, "e2e-calibration", PROBE_CALIBRATION_RECORDS), created

    def _finish_probe_calibration(self, ctx: RunContext, calibration: tuple[str, float]) -> None:
        """The calibration round's round trip sizes the measured round, and how long it took
        to start places it (see :meth:`_start_probe`)."""
        name, created = calibration
        (pod,) = self.jobs.wait_job(
            ctx,
            name,
            1,
            timeout_s=START_TIMEOUT_S,
            what="the end-to-end latency probe's calibration round",
        )
        lag = (self.jobs.seen_complete(name) or time.monotonic()) - created
        text = self.jobs.logs(pod)
        cal = parse_probe_output(text, PROBE_CALIBRATION_RECORDS)
        if cal.stats is None:
            msg = (
                f"the end-to-end latency probe (calibration round, "
                f"{PROBE_CALIBRATION_RECORDS} records on {self._probe_topic!r}) printed no "
                f"summary; last lines of its log:\n{log_tail(text)}"
            )
            raise WorkloadError(msg)
        self._probe_per_record_s = cal.per_record_s or 0.01
        self._probe_startup_s = max(0.0, lag - PROBE_CALIBRATION_RECORDS * cal.stats.avg_ms / 1000)
        self.jobs.unwatch(name)
        self.jobs.delete(name)

    def _start_probe(self, ctx: RunContext, node: str | None, read_lag: float) -> None:
        """Create the measured round with the start read, on the reads' node: it sleeps for
        the start read's lag minus its own start-up (both observed in the warm-up), so that
        its JVM starts before MEASURE and its records begin about when MEASURE does. Sized,
        as locally, to fill 70 % of ``duration + tail`` at the calibrated round trip."""
        self._probe_records = max(
            10, math.floor(PROBE_FILL * self.config.probe_span_s / self._probe_per_record_s)
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
        name = self._probe
        if name is None:
            return {}
        deadline = load_end + self.config.probe_grace_s
        while True:
            done = [p for p in self.jobs.check(name) if pod_succeeded(p)]
            if done:
                break
            if time.monotonic() >= deadline:
                log.warning(
                    "kafka_ingest.e2e_incomplete",
                    run=ctx.run_id,
                    reason="the probe's measured round was still running after the load",
                )
                return {}
            ctx.sleep(POLL_S)
        finished = time.monotonic()
        self.jobs.unwatch(name)
        self._probe = None
        text = self.jobs.logs(done[0])
        measured = parse_probe_output(text, self._probe_records)
        if measured.stats is None:
            msg = (
                f"the end-to-end latency probe (measured round, {self._probe_records} records "
                f"on {self._probe_topic!r}) printed no summary; last lines of its log:\n"
                f"{log_tail(text)}"
            )
            raise WorkloadError(msg)
        coverage = (
            measured.coverage(first.ended, second.ended)
            if first.ended is not None and second.ended is not None
            else 0.0
        )
        return probe_metrics(measured, coverage=coverage, overrun_s=max(0.0, finished - load_end))

    # ---------------------------------------------------------------- Jobs

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
        name = self.jobs.create(
            what_short, command, node_name=node, active_deadline_s=math.ceil(timeout_s) + 60
        )
        return self.jobs.wait_job(
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
        text = self.jobs.logs(pod)
        reading = parse_offsets_output(text, self._topic)
        if reading is None:
            msg = (
                f"the offsets Job {self.jobs.name(what_short)} printed no offset of topic "
                f"{self._topic!r}; last lines of its log:\n{log_tail(text)}"
            )
            raise WorkloadError(msg)
        committed: GroupReading | None = None
        if group is not None:
            committed = parse_group_output(text, group, self._topic)
            if not committed.committed:
                msg = (
                    f"the offsets Job {self.jobs.name(what_short)} printed no committed "
                    f"offset of group {group!r}; last lines of its log:\n{log_tail(text)}"
                )
                raise WorkloadError(msg)
        return BoundaryRead(reading, committed, lag, created_wall, seen_wall)

    def _wait_producers_sending(self, ctx: RunContext, job: str) -> str | None:
        """Wait until every producer pod has printed a report (it has records acknowledged);
        return the node of the first producer."""
        want = self.config.producers
        sending: set[str] = set()

        def done(pods: Pods) -> bool:
            for pod in pods:
                name = pod["metadata"]["name"]
                if name in sending or (pod.get("status") or {}).get("phase") != "Running":
                    continue
                out = parse_generator_output(self.jobs.logs(pod))
                if any(iv.acked for iv in out.intervals) or out.end is not None:
                    sending.add(name)
            return len(sending) >= want

        pods = self.jobs.wait(
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
        """As locally: wait (up to ``settle``) until each producer's last report interval,
        read from its pod log, is within 15 % above its rate; False when the budget ran out."""
        end = time.monotonic() + self.config.settle
        while True:
            pods = sorted(self.jobs.check(job), key=pod_index)
            # The last lines are enough: two reports a second, and the log grows with the run.
            rates = [
                parse_generator_output(
                    self.jobs.logs(pod, tail_lines=_SETTLE_TAIL_LINES)
                ).last_rate()
                for pod in pods
            ]
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
            self.jobs.check(job)

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
    "KUBE_SLACK_S",
    "MISMATCH_WARN_RATIO",
    "PROBE_CALIBRATION_RECORDS",
    "PROBE_FILL",
    "START_TIMEOUT_S",
    "KubeIngestRun",
]
