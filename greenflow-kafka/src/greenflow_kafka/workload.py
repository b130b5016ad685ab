"""The ``kafka-ingest`` workload: producers at a target rate, messages counted from offsets,
optionally consumers reading them and an end-to-end latency probe.

Per run: create a topic, start ``producers`` instances of Kafka's own
``ProducerPerformance`` together at ``load / producers`` msg/s each, wait until records
arrive, warm up, then MEASURE for ``duration``. Messages in MEASURE are the topic's end
offsets read at the MEASURE boundaries, never rate × nominal duration. Each producer is
sized to run a little past the end of MEASURE (``tail``) so the load never stops inside the
window; it then exits by itself and prints its statistics, which are parsed and stored.

With ``consumers = N > 0`` the run also starts, before the producers, N instances of
Kafka's ``ConsumerPerformance`` in one consumer group (``greenflow-<run_id>``) reading the
topic from its end, and waits until the group is stable with N members and has committed
an offset for every partition before the warm-up starts. Messages consumed in MEASURE are
the group's committed offsets read at the MEASURE boundaries, like the produced ones: the
consumers auto-commit every 100 ms, so each boundary reading is at most that stale and the
two errors largely cancel (a count, not a sampled rate). Consumers are stopped by signal when
MEASURE ends. Falling behind is reported, not failed: ``consumed_messages_per_s``,
``consumed_ratio`` (consumed / produced in MEASURE) and ``consumer_lag_messages`` (end
offsets minus committed offsets when MEASURE ends). A consumer that exits by itself fails the
run. More consumers than partitions leaves the extra ones idle, as in Kafka.

Consumers also bring an end-to-end latency probe, Kafka's ``EndToEndLatency`` on a side
topic ``<topic>-e2e`` (so the main topic's counts stay exact): one record at a time, sent and
polled back, beside the load. The tool only reports once it has sent all its records and
takes seconds to start, so while the consumers join, a short calibration round measures its
round trip; the measured round is then started, sized to 70 % of ``duration + tail`` at that
round trip, and held after its first record until MEASURE begins (see
:class:`greenflow_kafka.consumer.LatencyProbe`). Its JVM start thus stays out of MEASURE and
its records run back to back from the start of MEASURE, normally ending before the load does.
Figures: ``e2e_latency_{avg,p50,p99,p999}_ms``, the avg without the first record (sent before
MEASURE, it includes the metadata fetch; ``e2e_probe_first_record_ms``), the percentiles as
the tool prints them (whole ms, first record included, so below 1001 records p999 is the
round's maximum, often that first record); ``e2e_probe_records``;
``e2e_probe_coverage_ratio``, the part of MEASURE the round was sending in; and
``e2e_probe_overrun_s``, how long it ran after the producers had stopped (its last records
then ran without load), non-zero only when the load slowed the round trip by more than the
margin. A round still running 25 % of its span (at least 2 s) after the load is stopped and
its figures are left out, with ``kafka_ingest.e2e_incomplete`` logged.
"""

from __future__ import annotations

import math
import time
from collections.abc import Collection, Mapping
from typing import Any, ClassVar

import attrs
import structlog

from greenflow.api import (
    Capability,
    Phase,
    ProcessGroups,
    RunContext,
    Workload,
    WorkloadResult,
)
from greenflow.errors import WorkloadError
from greenflow.plan.durations import Duration

log = structlog.get_logger("greenflow.kafka_ingest")

_ACKS = {"0", "1", "all", "-1"}
# Auto-commit period of the consumers: how stale a committed offset read at a MEASURE
# boundary can be. Each commit is one small request to the group coordinator.
_COMMIT_INTERVAL_MS = 100
# Start-up allowed to the consumers (JVM, group join) and to the first records (producers).
_READY_TIMEOUT_S = 60.0
# consumed / produced in MEASURE below this is logged (it stays a metric, never a failure).
_BEHIND_RATIO = 0.9
# How long past the load's end the probe's measured round may finish, as a fraction of its
# planned span (at least 2 s); its last records then run without load.
_PROBE_GRACE = 0.25


def _positive(_inst: Any, attribute: attrs.Attribute[Any], value: float) -> None:
    if not value > 0:
        raise ValueError(f"{attribute.name}: expected a number > 0, got {value}")


def _at_least_one(_inst: Any, attribute: attrs.Attribute[Any], value: int) -> None:
    if value < 1:
        raise ValueError(f"{attribute.name}: expected an integer ≥ 1, got {value}")


def _non_negative_int(_inst: Any, attribute: attrs.Attribute[Any], value: int) -> None:
    if value < 0:
        raise ValueError(f"{attribute.name}: expected an integer ≥ 0, got {value}")


def _acks(_inst: Any, attribute: attrs.Attribute[Any], value: str | int) -> None:
    if str(value) not in _ACKS:
        raise ValueError(f'{attribute.name}: expected one of "0", "1", "all", "-1", got {value!r}')


def _ratio(_inst: Any, attribute: attrs.Attribute[Any], value: float) -> None:
    if not 0 <= value <= 1:
        raise ValueError(f"{attribute.name}: expected a fraction between 0 and 1, got {value}")


@attrs.frozen
class KafkaIngestConfig:
    """``[workload] type = "kafka-ingest"``. Any scalar given as a list is a sweep axis."""

    #: Total target rate over all producers, messages per second.
    load: float = attrs.field(validator=_positive)
    #: Bytes per message.
    message_size: int = attrs.field(default=1024, validator=_at_least_one)
    producers: int = attrs.field(default=1, validator=_at_least_one)
    partitions: int = attrs.field(default=1, validator=_at_least_one)
    replication: int = attrs.field(default=1, validator=_at_least_one)
    acks: str | int = attrs.field(default="all", validator=_acks)
    duration: Duration = attrs.field(default=Duration(30), validator=_positive)
    warmup: Duration = Duration(5)
    #: Consumers (Kafka's ConsumerPerformance) in one group reading the topic during the run;
    #: messages consumed in MEASURE come from the group's committed offsets. Any N > 0 also
    #: runs an end-to-end latency probe (EndToEndLatency on `<topic>-e2e`, acks "all" unless
    #: acks is "1" or "0", which the probe sends with acks "1"). More consumers than
    #: partitions leaves the extra ones idle.
    consumers: int = attrs.field(default=0, validator=_non_negative_int)
    #: The service to load, by its plan name.
    target: str = "kafka"
    #: Extra producer settings (linger.ms, batch.size, compression.type ...).
    producer_config: dict[str, str] = attrs.field(factory=dict)
    #: A run whose achieved rate is below this fraction of `load` fails.
    min_achieved_ratio: float = attrs.field(default=0.9, validator=_ratio)
    #: JVM heap of each producer.
    producer_heap: str = "512m"
    #: JVM heap of each consumer and of the latency probe.
    consumer_heap: str = "256m"
    #: Producers run this long past the end of MEASURE, so the load covers the whole window.
    tail: Duration = Duration(0.5)
    #: After warm-up, wait up to this long for every producer to be back on its rate before
    #: MEASURE starts. Kafka's producer tool keeps its average since it started, so after a
    #: slow start (JVM warm-up, metadata) it sends faster than asked until it has caught up;
    #: measuring during that burst would label the run with a load it didn't have.
    #: Settling time not used runs after MEASURE as extra margin, so `tail` can stay short:
    #: after MEASURE the producers send at most settle + tail more seconds of records.
    settle: Duration = Duration(1)


class KafkaIngestWorkload(Workload):
    Config: ClassVar[type] = KafkaIngestConfig
    requires: ClassVar[frozenset[Capability]] = frozenset(
        {Capability.LOCAL_PROCESSES, Capability.KUBERNETES}
    )
    config: KafkaIngestConfig

    def __init__(self, config: KafkaIngestConfig) -> None:
        super().__init__(config)
        self._producers: list[Any] = []
        self._settled = False
        self._consumers: list[Any] = []
        self._probe: Any = None
        self._topic: str | None = None
        self._probe_topic: str | None = None
        self._bootstrap: str | None = None
        #: The run's Jobs when the target runs on Kubernetes (kube_ingest.KubeIngestRun).
        self._kube: Any = None

    @property
    def _group(self) -> str:
        assert self._topic
        return self._topic

    def targets(self, services: Collection[str]) -> Collection[str]:
        """Only the target is deployed for a run: `target = ["kafka", "redpanda"]` compares."""
        return [self.config.target]

    def validate(self, services: Mapping[str, Any]) -> str | None:
        c = self.config
        if c.target not in services:
            known = ", ".join(sorted(services)) or "none"
            return (
                f"target {c.target!r} is not a service of this plan (services: {known}); "
                "add a [[services]] entry or set `target`"
            )
        brokers = getattr(services[c.target], "brokers", None)
        if brokers is not None and c.replication > brokers:
            return (
                f"replication {c.replication} is more than the {brokers} broker(s) of "
                f"service {c.target!r}; lower replication or add brokers"
            )
        if c.load / c.producers < 1:
            return f"load {c.load:g} msg/s over {c.producers} producers is below 1 msg/s each"
        return None

    def prepare(self, ctx: RunContext) -> None:
        if self._prepare_kube(ctx):
            return
        from greenflow_kafka.admin import create_topic

        svc = ctx.services[self.config.target]
        self._bootstrap = svc.endpoints()["bootstrap"]
        self._topic = f"greenflow-{ctx.run_id}"
        create_topic(
            self._bootstrap,
            self._topic,
            partitions=self.config.partitions,
            replication_factor=self.config.replication,
            exist_ok=True,
        )
        if self.config.consumers:
            self._probe_topic = f"{self._topic}-e2e"
            create_topic(
                self._bootstrap,
                self._probe_topic,
                partitions=1,
                replication_factor=self.config.replication,
                exist_ok=True,
            )

    def execute(self, ctx: RunContext) -> WorkloadResult:
        if self._kube is not None:
            result: WorkloadResult = self._kube.execute(ctx)
            return result
        from greenflow_kafka.admin import end_offsets, partition_end_offsets
        from greenflow_kafka.distribution import resolve_distribution
        from greenflow_kafka.perf import ProducerPerf, producer_perf_command, records_for

        c = self.config
        assert self._bootstrap and self._topic
        bootstrap, topic = self._bootstrap, self._topic
        svc = ctx.services[c.target]
        # The Kafka tools that load the target: its own version for a kafka service, the
        # `tools_version` a service of another system names (redpanda), else the default.
        dist = resolve_distribution(
            getattr(svc, "tools_version", None) or getattr(svc.config, "version", None)
        )
        per_producer = c.load / c.producers
        # Records for the settle budget too, so settling never makes the load end early.
        seconds = c.warmup + c.settle + c.duration + c.tail
        ctx.phases.enter(Phase.WARMUP)
        if c.consumers:
            # Consumers first, and ready before the first record: producers are sized from
            # their first send, and a group still joining would eat into their warm-up.
            self._start_consumers(ctx, dist)
            # Its calibration and JVM start overlap the group's join; it then waits, started.
            self._start_probe(ctx, dist)
            self._wait_group_ready(ctx)
        for i in range(c.producers):
            cmd = producer_perf_command(
                dist,
                bootstrap_servers=bootstrap,
                topic=topic,
                num_records=records_for(per_producer, seconds),
                record_size=c.message_size,
                throughput=per_producer,
                acks=str(c.acks),
                producer_props=c.producer_config,
                warmup_records=records_for(per_producer, c.warmup) if c.warmup > 0 else 0,
                heap=c.producer_heap,
                name=f"producer-{i}",
            )
            self._producers.append(
                ProducerPerf.start(cmd, ctx.log_dir / "producers" / f"{ctx.run_id}-{i}.log")
            )
        # Warm-up is counted from the first record on the topic, not from JVM start.
        self._wait(
            ctx,
            lambda: end_offsets(bootstrap, topic) > 0,
            timeout_s=_READY_TIMEOUT_S,
            what="the first records on the topic",
        )
        self._sleep_checking(ctx, c.warmup)
        self._settled = self._settle(ctx, per_producer)
        committed_before = self._committed() if c.consumers else {}
        before = end_offsets(bootstrap, topic)
        start = ctx.phases.enter(Phase.MEASURE)
        if self._probe is not None:
            self._probe.release()
        self._sleep_checking(ctx, c.duration)
        committed_after = self._committed() if c.consumers else {}
        ends_after = partition_end_offsets(bootstrap, topic)
        end = ctx.phases.enter(Phase.COOLDOWN)
        after = sum(ends_after.values())
        messages = after - before
        achieved = messages / (end - start)

        # Consumers have done their part: stopped now, while the producers finish their tail.
        consumer_records = self._stop_consumers()
        # Producers finish their record count shortly; their statistics come at exit.
        stats = []
        for i, prod in enumerate(self._producers):
            res = prod.wait(timeout_s=max(30.0, 3 * c.tail + 20))
            if not res.complete:
                raise WorkloadError(
                    f"producer-{i} exited with {res.exit_code}"
                    f"{' (stopped at its deadline)' if res.timed_out else ''}; last lines of "
                    f"{res.output_path}:\n{_tail(res.output_path)}"
                )
            stats.append(res.stats)
        load_end = time.time()
        latency = _combine_latency([s for s in stats if s is not None])
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
            # 1 when every producer was back on its rate when MEASURE began (see `settle`).
            "producers_settled": 1.0 if self._settled else 0.0,
            "producer_reported_messages_per_s": sum(s.records_per_s for s in stats if s),
            "producer_records_total": float(sum(s.records for s in stats if s)),
        }
        if c.consumers:
            consumed = sum(
                committed_after.get(p, 0) - committed_before.get(p, 0) for p in committed_after
            )
            metrics.update(
                {
                    "consumed_messages": float(consumed),
                    "consumed_messages_per_s": consumed / (end - start),
                    "consumer_lag_messages": float(
                        sum(
                            max(0, off - committed_after.get(p, 0)) for p, off in ends_after.items()
                        )
                    ),
                    "consumer_records_total": float(consumer_records),
                }
            )
            if messages:
                metrics["consumed_ratio"] = consumed / messages
            if messages and consumed < _BEHIND_RATIO * messages:
                log.warning(
                    "kafka_ingest.consumers_behind",
                    run=ctx.run_id,
                    consumed=consumed,
                    produced=messages,
                    lag=metrics["consumer_lag_messages"],
                )
            metrics.update(self._probe_metrics(ctx, start, end, load_end))
        return WorkloadResult(
            units=float(messages),
            unit="message",
            payload_bytes=float(messages * c.message_size),
            achieved_rate=achieved,
            latency_ms=latency,
            metrics=metrics,
        )

    def clean(self, ctx: RunContext) -> None:
        if self._kube is not None:
            self._kube.clean(ctx)
            return
        from greenflow_kafka.admin import delete_topic

        if self._probe is not None:
            self._probe.stop()
            self._probe = None
        self._stop_consumers()
        for prod in self._producers:
            prod.stop()
        self._producers.clear()
        svc = ctx.services.get(self.config.target)
        if self._bootstrap and svc is not None and svc.health() is None:
            # The group's offsets go with the topic; the group itself is left to the broker,
            # which cannot delete it while the killed members' sessions are still open.
            for topic in (self._topic, self._probe_topic):
                if topic:
                    delete_topic(self._bootstrap, topic)
        self._topic = self._probe_topic = None

    # ------------------------------------------------------------------ Kubernetes

    def _prepare_kube(self, ctx: RunContext) -> bool:
        """When the target was deployed on Kubernetes, run this workload's clients there as
        Jobs (greenflow_kafka.kube_ingest) and return True."""
        from greenflow_kafka.kube_ingest import KubeIngestRun, kube_of

        svc = ctx.services[self.config.target]
        session = kube_of(svc)
        if session is None:
            return False
        self._kube = KubeIngestRun(self.config, svc, session)
        self._kube.prepare(ctx)
        return True

    # ------------------------------------------------------------------ local

    def processes(self) -> ProcessGroups:
        groups: dict[str, list[int]] = {
            f"producer-{i}": [p.pid] for i, p in enumerate(self._producers) if p.poll() is None
        }
        groups.update(
            {f"consumer-{i}": [p.pid] for i, p in enumerate(self._consumers) if p.poll() is None}
        )
        probe = self._probe
        pid = probe.pid if probe is not None else None
        if pid is not None:
            groups["e2e-probe"] = [pid]
        return groups

    # ------------------------------------------------------------------ consumers

    def _start_consumers(self, ctx: RunContext, dist: Any) -> None:
        from greenflow_kafka.consumer import consumer_perf_command
        from greenflow_kafka.perf import ProducerPerf

        c = self.config
        assert self._bootstrap and self._topic
        # --timeout counts from the tool's start for a consumer that owns no partition, and
        # it must never exit by itself: it is stopped by signal when MEASURE ends.
        timeout_ms = round(1000 * (2 * _READY_TIMEOUT_S + c.warmup + c.duration + c.tail + 60))
        for i in range(c.consumers):
            out = ctx.log_dir / "consumers" / f"{ctx.run_id}-{i}.log"
            cmd = consumer_perf_command(
                dist,
                bootstrap_servers=self._bootstrap,
                topic=self._topic,
                group=self._group,
                timeout_ms=timeout_ms,
                from_latest=True,
                consumer_props={"auto.commit.interval.ms": str(_COMMIT_INTERVAL_MS)},
                props_file=ctx.work_dir / f"consumer-{i}.properties",
                heap=c.consumer_heap,
                name=f"consumer-{i}",
            )
            self._consumers.append(ProducerPerf.start(cmd, out))

    def _wait_group_ready(self, ctx: RunContext) -> None:
        from greenflow_kafka.consumer import committed_offsets, describe_group
        from greenflow_kafka.errors import KafkaAdminError

        assert self._bootstrap and self._topic
        bootstrap, topic, group = self._bootstrap, self._topic, self._group
        want, partitions = self.config.consumers, set(range(self.config.partitions))
        seen = "nothing yet"

        def ready() -> bool:
            nonlocal seen
            try:
                g = describe_group(bootstrap, group, topic)
                committed = committed_offsets(bootstrap, group, topic)
            except KafkaAdminError as exc:  # the coordinator may not answer yet
                seen = str(exc)
                return False
            seen = (
                f"state {g.state}, {g.members}/{want} members, partitions assigned "
                f"{sorted(g.assigned)}, committed {sorted(committed)}"
            )
            return (
                g.state == "stable"
                and g.members == want
                and g.assigned >= partitions
                and set(committed) >= partitions
            )

        try:
            self._wait(
                ctx,
                ready,
                timeout_s=_READY_TIMEOUT_S,
                what=f"consumer group {group!r} to be stable with {want} members",
            )
        except WorkloadError as exc:
            raise WorkloadError(f"{exc}; last seen: {seen}") from None

    def _committed(self) -> dict[int, int]:
        from greenflow_kafka.consumer import committed_offsets

        assert self._bootstrap and self._topic
        return committed_offsets(self._bootstrap, self._group, self._topic)

    def _stop_consumers(self) -> int:
        """Stop every consumer (idempotent); return the records they last reported reading."""
        from greenflow_kafka.consumer import parse_consumer_output

        total = 0
        for cons in self._consumers:
            cons.stop()
            total += parse_consumer_output(_read(cons.output_path)).records
        self._consumers.clear()
        return total

    # ------------------------------------------------------------------ latency probe

    def _start_probe(self, ctx: RunContext, dist: Any) -> None:
        from greenflow_kafka.consumer import LatencyProbe

        c = self.config
        assert self._bootstrap and self._probe_topic
        self._probe = LatencyProbe(
            dist,
            bootstrap_servers=self._bootstrap,
            topic=self._probe_topic,
            record_size=c.message_size,
            span_s=c.duration + c.tail,
            output_dir=ctx.log_dir / "e2e-probe",
            acks="all" if str(c.acks) in ("all", "-1") else "1",
            heap=c.consumer_heap,
        )
        self._probe.start()

    def _probe_metrics(
        self, ctx: RunContext, start: float, end: float, load_end: float
    ) -> dict[str, float]:
        probe = self._probe
        if probe is None:
            return {}
        # Sized to end before the load does; a round slowed by more than the calibration's
        # margin may finish a little after it (reported as e2e_probe_overrun_s).
        grace = max(2.0, _PROBE_GRACE * (self.config.duration + self.config.tail))
        measured = probe.finish(timeout_s=load_end + grace - time.time())
        self._probe = None
        if probe.error:
            raise WorkloadError(probe.error)
        if measured is None or measured.stats is None:
            log.warning(
                "kafka_ingest.e2e_incomplete",
                run=ctx.run_id,
                reason="the probe's measured round was still running after the load",
            )
            return {}
        s = measured.stats
        return {
            "e2e_latency_avg_ms": measured.avg_ms if measured.avg_ms is not None else s.avg_ms,
            "e2e_latency_p50_ms": s.p50_ms,
            "e2e_latency_p99_ms": s.p99_ms,
            "e2e_latency_p999_ms": s.p999_ms,
            "e2e_probe_records": float(measured.records),
            "e2e_probe_coverage_ratio": measured.coverage(start, end),
            "e2e_probe_overrun_s": max(0.0, measured.ended_at - load_end),
            **(
                {"e2e_probe_first_record_ms": measured.first_ms}
                if measured.first_ms is not None
                else {}
            ),
        }

    # ------------------------------------------------------------------ helpers

    def _check(self, ctx: RunContext) -> None:
        for i, prod in enumerate(self._producers):
            code = prod.poll()
            if code not in (None, 0):
                raise WorkloadError(
                    f"producer-{i} exited with {code}; last lines of "
                    f"{prod.output_path}:\n{_tail(prod.output_path)}"
                )
        for i, cons in enumerate(self._consumers):
            code = cons.poll()
            if code is not None:
                raise WorkloadError(
                    f"consumer-{i} exited with {code} during the run; last "
                    f"lines of {cons.output_path}:\n{_tail(cons.output_path)}"
                )
        probe = self._probe
        if probe is not None and probe.error:
            raise WorkloadError(probe.error)
        reason = ctx.services[self.config.target].health()
        if reason:
            raise WorkloadError(f"service {self.config.target!r} failed during the run: {reason}")

    def _settle(self, ctx: RunContext, per_producer: float) -> bool:
        """Wait (up to ``settle``) until each producer's last reported second is within
        15 % above its rate, i.e. not catching up; False when the budget ran out."""
        from greenflow_kafka.perf import last_second_rates, producers_settled

        end = time.monotonic() + self.config.settle
        while True:
            rates = last_second_rates([prod.output() for prod in self._producers])
            if producers_settled(rates, per_producer):
                return True
            if time.monotonic() >= end:
                log.warning(
                    "kafka_ingest.not_settled",
                    rates=rates,
                    asked=per_producer,
                    hint="a longer warmup lets the producers catch up first",
                )
                return False
            ctx.sleep(0.2)
            self._check(ctx)

    def _sleep_checking(self, ctx: RunContext, seconds: float) -> None:
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            ctx.sleep(min(0.25, left))
            self._check(ctx)

    def _wait(self, ctx: RunContext, ready: Any, *, timeout_s: float, what: str) -> None:
        end = time.monotonic() + timeout_s
        while not ready():
            self._check(ctx)
            if time.monotonic() > end:
                raise WorkloadError(f"timed out after {timeout_s:g}s waiting for {what}")
            ctx.sleep(0.1)


def _read(path: Any) -> str:
    try:
        return str(path.read_text(errors="replace"))
    except OSError:
        return ""


def _tail(path: Any, lines: int = 15) -> str:
    from greenflow_kafka.cluster import tail

    return "\n".join(tail(path, lines)) or "(no output)"


def _combine_latency(stats: list[Any]) -> dict[str, float]:
    """Average weighted by records; percentiles and max as the worst producer's (an upper
    bound: percentiles of separate streams cannot be merged exactly)."""
    if not stats:
        return {}
    total = sum(s.records for s in stats) or 1
    out = {"avg": sum(s.avg_latency_ms * s.records for s in stats) / total}
    for key in ("p50", "p95", "p99", "p999", "max"):
        values = [s.latency_ms()[key] for s in stats]
        finite = [v for v in values if math.isfinite(v)]
        if finite:
            out[key] = max(finite)
    return out
