"""The ``kafka-ingest`` workload: producers at a target rate, messages counted from offsets.

Per run: create a topic, start ``producers`` instances of Kafka's own
``ProducerPerformance`` together at ``load / producers`` msg/s each, wait until records
arrive, warm up, then MEASURE for ``duration``. Messages in MEASURE are the topic's end
offsets read at the MEASURE boundaries, never rate × nominal duration. Each producer is
sized to run a little past the end of MEASURE (``tail``) so the load never stops inside the
window; it then exits by itself and prints its statistics, which are parsed and stored.
"""

from __future__ import annotations

import math
import time
from collections.abc import Collection, Mapping
from typing import Any, ClassVar

import attrs

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

_ACKS = {"0", "1", "all", "-1"}


def _positive(_inst: Any, attribute: attrs.Attribute[Any], value: float) -> None:
    if not value > 0:
        raise ValueError(f"expected a number > 0, got {value}")


def _at_least_one(_inst: Any, attribute: attrs.Attribute[Any], value: int) -> None:
    if value < 1:
        raise ValueError(f"expected an integer ≥ 1, got {value}")


def _acks(_inst: Any, attribute: attrs.Attribute[Any], value: str | int) -> None:
    if str(value) not in _ACKS:
        raise ValueError(f'expected one of "0", "1", "all", "-1", got {value!r}')


def _ratio(_inst: Any, attribute: attrs.Attribute[Any], value: float) -> None:
    if not 0 <= value <= 1:
        raise ValueError(f"expected a fraction between 0 and 1, got {value}")


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
    #: Consumers reading the topic during the run (end-to-end latency): not yet supported.
    consumers: int = 0
    #: The service to load, by its plan name.
    target: str = "kafka"
    #: Extra producer settings (linger.ms, batch.size, compression.type ...).
    producer_config: dict[str, str] = attrs.field(factory=dict)
    #: A run whose achieved rate is below this fraction of `load` fails.
    min_achieved_ratio: float = attrs.field(default=0.9, validator=_ratio)
    #: JVM heap of each producer.
    producer_heap: str = "256m"
    #: Producers run this long past the end of MEASURE, so the load covers the whole window.
    tail: Duration = Duration(2)


class KafkaIngestWorkload(Workload):
    Config: ClassVar[type] = KafkaIngestConfig
    requires: ClassVar[frozenset[Capability]] = frozenset({Capability.LOCAL_PROCESSES})
    config: KafkaIngestConfig

    def __init__(self, config: KafkaIngestConfig) -> None:
        super().__init__(config)
        self._producers: list[Any] = []
        self._topic: str | None = None
        self._bootstrap: str | None = None

    def targets(self, services: Collection[str]) -> Collection[str]:
        """Only the target is deployed for a run: `target = ["kafka", "redpanda"]` compares."""
        return [self.config.target]

    def validate(self, services: Mapping[str, Any]) -> str | None:
        c = self.config
        if c.target not in services:
            known = ", ".join(sorted(services)) or "none"
            return (f"target {c.target!r} is not a service of this plan (services: {known}); "
                    "add a [[services]] entry or set `target`")
        brokers = getattr(services[c.target], "brokers", None)
        if brokers is not None and c.replication > brokers:
            return (f"replication {c.replication} is more than the {brokers} broker(s) of "
                    f"service {c.target!r}; lower replication or add brokers")
        if c.consumers:
            return ("consumers > 0 is not supported yet by kafka-ingest (end-to-end latency "
                    "is planned); set consumers = 0")
        if c.load / c.producers < 1:
            return f"load {c.load:g} msg/s over {c.producers} producers is below 1 msg/s each"
        return None

    def prepare(self, ctx: RunContext) -> None:
        from greenflow_kafka.admin import create_topic

        svc = ctx.services[self.config.target]
        self._bootstrap = svc.endpoints()["bootstrap"]
        self._topic = f"greenflow-{ctx.run_id}"
        create_topic(self._bootstrap, self._topic, partitions=self.config.partitions,
                     replication_factor=self.config.replication, exist_ok=True)

    def execute(self, ctx: RunContext) -> WorkloadResult:
        from greenflow_kafka.admin import end_offsets
        from greenflow_kafka.distribution import resolve_distribution
        from greenflow_kafka.perf import ProducerPerf, producer_perf_command, records_for

        c = self.config
        assert self._bootstrap and self._topic
        svc = ctx.services[c.target]
        dist = resolve_distribution(getattr(svc.config, "version", None))
        per_producer = c.load / c.producers
        seconds = c.warmup + c.duration + c.tail
        ctx.phases.enter(Phase.WARMUP)
        for i in range(c.producers):
            cmd = producer_perf_command(
                dist, bootstrap_servers=self._bootstrap, topic=self._topic,
                num_records=records_for(per_producer, seconds), record_size=c.message_size,
                throughput=per_producer, acks=str(c.acks), producer_props=c.producer_config,
                warmup_records=records_for(per_producer, c.warmup) if c.warmup > 0 else 0,
                heap=c.producer_heap, name=f"producer-{i}",
            )
            self._producers.append(
                ProducerPerf.start(cmd, ctx.log_dir / "producers" / f"{ctx.run_id}-{i}.log"))
        # Warm-up is counted from the first record on the topic, not from JVM start.
        self._wait(ctx, lambda: end_offsets(self._bootstrap or "", self._topic or "") > 0,
                   timeout_s=60, what="the first records on the topic")
        self._sleep_checking(ctx, c.warmup)
        before = end_offsets(self._bootstrap, self._topic)
        start = ctx.phases.enter(Phase.MEASURE)
        self._sleep_checking(ctx, c.duration)
        after = end_offsets(self._bootstrap, self._topic)
        end = ctx.phases.enter(Phase.COOLDOWN)
        messages = after - before
        achieved = messages / (end - start)

        # Producers finish their record count shortly; their statistics come at exit.
        stats = []
        for i, prod in enumerate(self._producers):
            res = prod.wait(timeout_s=max(30.0, 3 * c.tail + 20))
            if not res.complete:
                raise WorkloadError(
                    f"producer-{i} exited with {res.exit_code}"
                    f"{' (stopped at its deadline)' if res.timed_out else ''}; last lines of "
                    f"{res.output_path}:\n{_tail(res.output_path)}")
            stats.append(res.stats)
        latency = _combine_latency([s for s in stats if s is not None])
        ratio = achieved / c.load
        if ratio < c.min_achieved_ratio:
            raise WorkloadError(
                f"achieved {achieved:.0f} msg/s, {ratio:.1%} of the asked {c.load:g} msg/s "
                f"(below min_achieved_ratio {c.min_achieved_ratio:g}); the broker or the "
                "producers cannot keep up at this load")
        return WorkloadResult(
            units=float(messages), unit="message",
            payload_bytes=float(messages * c.message_size), achieved_rate=achieved,
            latency_ms=latency,
            metrics={
                "asked_messages_per_s": c.load,
                "achieved_ratio": ratio,
                "producer_reported_messages_per_s": sum(s.records_per_s for s in stats if s),
                "producer_records_total": float(sum(s.records for s in stats if s)),
            },
        )

    def clean(self, ctx: RunContext) -> None:
        from greenflow_kafka.admin import delete_topic

        for prod in self._producers:
            prod.stop()
        self._producers.clear()
        svc = ctx.services.get(self.config.target)
        if self._topic and self._bootstrap and svc is not None and svc.health() is None:
            delete_topic(self._bootstrap, self._topic)
        self._topic = None

    def processes(self) -> ProcessGroups:
        return {f"producer-{i}": [p.pid] for i, p in enumerate(self._producers)
                if p.poll() is None}

    # ------------------------------------------------------------------ helpers

    def _check(self, ctx: RunContext) -> None:
        for i, prod in enumerate(self._producers):
            code = prod.poll()
            if code not in (None, 0):
                raise WorkloadError(f"producer-{i} exited with {code}; last lines of "
                                    f"{prod.output_path}:\n{_tail(prod.output_path)}")
        reason = ctx.services[self.config.target].health()
        if reason:
            raise WorkloadError(f"service {self.config.target!r} failed during the run: {reason}")

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
