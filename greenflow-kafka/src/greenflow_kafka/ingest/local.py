"""kafka-ingest with local processes: GreenFlow's load generator and Kafka's tools as JVMs on
this host, messages counted through the admin API (docs/kafka.md, "One run" and "Consumers
and end-to-end latency")."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path

import attrs
import structlog

from greenflow.api import Phase, ProcessGroups, RunContext, WorkloadResult
from greenflow.api.processes import tail
from greenflow.errors import WorkloadError
from greenflow_kafka.admin import create_topic, delete_topic, end_offsets, partition_end_offsets
from greenflow_kafka.consumer import (
    LatencyProbe,
    committed_offsets,
    consumer_perf_command,
    describe_group,
    parse_consumer_output,
)
from greenflow_kafka.distribution import KafkaDistribution, resolve_distribution
from greenflow_kafka.errors import KafkaAdminError
from greenflow_kafka.generator import (
    Generator,
    GeneratorOutput,
    generator_args,
    generator_command,
    resolve_generator,
)
from greenflow_kafka.generator import window as generator_window
from greenflow_kafka.ingest.config import COMMIT_INTERVAL_MS, KafkaIngestConfig
from greenflow_kafka.ingest.metrics import (
    achieved_ratio,
    consumer_metrics,
    judged,
    probe_metrics,
    producer_metrics,
)
from greenflow_kafka.perf import ProducerPerf, producers_settled
from greenflow_kafka.target import KafkaTarget

log = structlog.get_logger("greenflow.kafka_ingest")

#: Start-up allowed to the consumers (JVM, group join) and to the first records (producers).
READY_TIMEOUT_S = 60.0
#: Lines of a tool's log in an error message.
_LOG_LINES = 15
#: With consumers, the group's lag is read this often during MEASURE, for its trend.
LAG_SAMPLE_S = 1.0


@attrs.frozen
class _Window:
    """What MEASURE counted: its boundaries (greenflow's clock), the messages produced, and
    the offsets read at its end (and, with consumers, the group's commits at both ends)."""

    start: float
    end: float
    messages: int
    ends_after: Mapping[int, int]
    committed_before: Mapping[int, int]
    committed_after: Mapping[int, int]
    #: With consumers: (time, lag) read through MEASURE, its ends included.
    lag_points: tuple[tuple[float, float], ...] = ()

    @property
    def seconds(self) -> float:
        return self.end - self.start


class LocalIngestRun:
    """One run of ``kafka-ingest`` with the tools as local processes (prepare → execute →
    clean)."""

    def __init__(self, config: KafkaIngestConfig, target: KafkaTarget) -> None:
        self.config = config
        self.target = target
        self._producers: list[Generator] = []
        self._jar: Path | None = None
        self._consumers: list[ProducerPerf] = []
        self._probe: LatencyProbe | None = None
        self._settled = False
        self._bootstrap: str | None = None
        self._topic: str | None = None
        self._probe_topic: str | None = None

    @property
    def _group(self) -> str:
        assert self._topic
        return self._topic

    # ---------------------------------------------------------------- lifecycle

    def prepare(self, ctx: RunContext) -> None:
        # Built with mvn the first time only (docs/kafka.md, "The load generator").
        self._jar = resolve_generator()
        self._bootstrap = self.target.endpoints()["bootstrap"]
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
        assert self._bootstrap and self._topic, "prepare() first"
        dist = resolve_distribution(self.target.tools_version)
        ctx.phases.enter(Phase.WARMUP)
        if self.config.consumers:
            self._start_consumers_and_probe(ctx, dist)
        self._start_producers(ctx, dist)
        self._warm_up(ctx)
        window = self._measure(ctx)
        # Consumers have done their part: stopped now, while the producers finish their tail.
        consumer_records = self._stop_consumers()
        outputs = self._producer_outputs()
        load_end = time.time()
        return self._result(ctx, window, outputs, consumer_records, load_end)

    def clean(self, ctx: RunContext) -> None:
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

    # ---------------------------------------------------------------- the steps of a run

    def _start_consumers_and_probe(self, ctx: RunContext, dist: KafkaDistribution) -> None:
        # Consumers first, and ready before the first record: producers are sized from
        # their first send, and a group still joining would eat into their warm-up.
        self._start_consumers(ctx, dist)
        # Its calibration and JVM start overlap the group's join; it then waits, started.
        self._start_probe(ctx, dist)
        self._wait_group_ready(ctx)

    def _start_producers(self, ctx: RunContext, dist: KafkaDistribution) -> None:
        c = self.config
        assert self._bootstrap and self._topic and self._jar
        # A schedule for the settle budget too, so settling never makes the load end early.
        # The schedule starts once the topic's metadata is in hand, before the first record.
        args = generator_args(
            bootstrap_servers=self._bootstrap,
            topic=self._topic,
            rate=c.per_producer,
            record_size=c.message_size,
            seconds=c.warmup + c.settle + c.duration + c.tail,
            ramp_seconds=c.ramp_s,
            acks=str(c.acks),
            producer_props=c.producer_config,
        )
        for i in range(c.producers):
            cmd = generator_command(
                dist, self._jar, args, heap=c.producer_heap, name=f"producer-{i}"
            )
            self._producers.append(
                Generator.start(cmd, ctx.log_dir / "producers" / f"{ctx.run_id}-{i}.log")
            )

    def _warm_up(self, ctx: RunContext) -> None:
        """Wait for the first records, then ``warmup``, then up to ``settle``."""
        assert self._bootstrap and self._topic
        bootstrap, topic = self._bootstrap, self._topic
        # Warm-up is counted from the first record on the topic, not from JVM start.
        self._wait(
            ctx,
            lambda: end_offsets(bootstrap, topic) > 0,
            timeout_s=READY_TIMEOUT_S,
            what="the first records on the topic",
        )
        self._sleep_checking(ctx, self.config.warmup)
        self._settled = self._settle(ctx, self.config.per_producer)

    def _measure(self, ctx: RunContext) -> _Window:
        """MEASURE for ``duration``, bounded by offset reads (and commits, with consumers,
        whose lag is also read every :data:`LAG_SAMPLE_S` in between)."""
        c = self.config
        assert self._bootstrap and self._topic
        committed_before = self._committed() if c.consumers else {}
        before = end_offsets(self._bootstrap, self._topic)
        start = ctx.phases.enter(Phase.MEASURE)
        if self._probe is not None:
            self._probe.release()
        lag_points: list[tuple[float, float]] = []
        if c.consumers:
            lag_points.append((start, float(max(0, before - sum(committed_before.values())))))
            self._sample_lag(ctx, start + c.duration, lag_points)
        else:
            self._sleep_checking(ctx, c.duration)
        committed_after = self._committed() if c.consumers else {}
        ends_after = partition_end_offsets(self._bootstrap, self._topic)
        end = ctx.phases.enter(Phase.COOLDOWN)
        if c.consumers:
            lag_points.append((end, float(_lag(ends_after, committed_after))))
        messages = sum(ends_after.values()) - before
        return _Window(
            start,
            end,
            messages,
            ends_after,
            committed_before,
            committed_after,
            tuple(lag_points),
        )

    def _sample_lag(self, ctx: RunContext, until: float, points: list[tuple[float, float]]) -> None:
        """Until ``until`` (greenflow's clock), read the group's lag every LAG_SAMPLE_S."""
        assert self._bootstrap and self._topic
        while (left := until - time.time()) > 0:
            self._sleep_checking(ctx, min(LAG_SAMPLE_S, left))
            if until - time.time() < LAG_SAMPLE_S / 2:
                break  # the end read is the last point
            try:
                committed = self._committed()
                ends = partition_end_offsets(self._bootstrap, self._topic)
            except KafkaAdminError as exc:  # a figure, not a failure: go on without it
                log.warning("kafka_ingest.lag_read_failed", error=str(exc))
                continue
            points.append((time.time(), float(_lag(ends, committed))))
        self._sleep_checking(ctx, until - time.time())

    def _producer_outputs(self) -> list[GeneratorOutput]:
        """Wait for the producers to finish their schedule; what they printed."""
        outputs = []
        for i, prod in enumerate(self._producers):
            res = prod.wait(timeout_s=max(30.0, 3 * self.config.tail + 20))
            if not res.complete:
                raise WorkloadError(
                    f"producer-{i} exited with {res.exit_code}"
                    f"{' (stopped at its deadline)' if res.timed_out else ''}; last lines of "
                    f"{res.output_path}:\n{_log_tail(res.output_path)}"
                )
            outputs.append(res.output)
        return outputs

    def _result(
        self,
        ctx: RunContext,
        window: _Window,
        outputs: list[GeneratorOutput],
        consumer_records: int,
        load_end: float,
    ) -> WorkloadResult:
        c = self.config
        achieved = window.messages / window.seconds
        measured = generator_window(outputs, window.start, window.end)
        metrics = producer_metrics(c, achieved_ratio(c, achieved), measured, outputs, self._settled)
        if c.consumers:
            lag = _lag(window.ends_after, window.committed_after)
            metrics.update(
                consumer_metrics(
                    ctx.run_id,
                    window.committed_before,
                    window.committed_after,
                    lag=lag,
                    messages=window.messages,
                    window_s=window.seconds,
                    consumer_records=consumer_records,
                    lag_points=window.lag_points,
                )
            )
            metrics.update(self._probe_metrics(ctx, window, load_end))
        result = WorkloadResult(
            units=float(window.messages),
            unit="message",
            payload_bytes=float(window.messages * c.message_size),
            achieved_rate=achieved,
            latency_ms=measured.latency.latency_ms(),
            metrics=metrics,
        )
        return judged(c, result)

    # ---------------------------------------------------------------- consumers

    def _start_consumers(self, ctx: RunContext, dist: KafkaDistribution) -> None:
        c = self.config
        assert self._bootstrap and self._topic
        # --timeout counts from the tool's start for a consumer that owns no partition, and
        # it must never exit by itself: it is stopped by signal when MEASURE ends.
        timeout_ms = round(1000 * (2 * READY_TIMEOUT_S + c.warmup + c.duration + c.tail + 60))
        for i in range(c.consumers):
            out = ctx.log_dir / "consumers" / f"{ctx.run_id}-{i}.log"
            cmd = consumer_perf_command(
                dist,
                bootstrap_servers=self._bootstrap,
                topic=self._topic,
                group=self._group,
                timeout_ms=timeout_ms,
                from_latest=True,
                consumer_props={"auto.commit.interval.ms": str(COMMIT_INTERVAL_MS)},
                props_file=ctx.work_dir / f"consumer-{i}.properties",
                heap=c.consumer_heap,
                name=f"consumer-{i}",
            )
            self._consumers.append(ProducerPerf.start(cmd, out))

    def _wait_group_ready(self, ctx: RunContext) -> None:
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
                timeout_s=READY_TIMEOUT_S,
                what=f"consumer group {group!r} to be stable with {want} members",
            )
        except WorkloadError as exc:
            raise WorkloadError(f"{exc}; last seen: {seen}") from None

    def _committed(self) -> dict[int, int]:
        assert self._bootstrap and self._topic
        return committed_offsets(self._bootstrap, self._group, self._topic)

    def _stop_consumers(self) -> int:
        """Stop every consumer (idempotent); return the records they last reported reading."""
        total = 0
        for cons in self._consumers:
            cons.stop()
            total += parse_consumer_output(_read(cons.output_path)).records
        self._consumers.clear()
        return total

    # ---------------------------------------------------------------- latency probe

    def _start_probe(self, ctx: RunContext, dist: KafkaDistribution) -> None:
        c = self.config
        assert self._bootstrap and self._probe_topic
        self._probe = LatencyProbe(
            dist,
            bootstrap_servers=self._bootstrap,
            topic=self._probe_topic,
            record_size=c.message_size,
            span_s=c.probe_span_s,
            output_dir=ctx.log_dir / "e2e-probe",
            acks=c.probe_acks,
            heap=c.consumer_heap,
        )
        self._probe.start()

    def _probe_metrics(self, ctx: RunContext, window: _Window, load_end: float) -> dict[str, float]:
        probe = self._probe
        if probe is None:
            return {}
        # Sized to end before the load does; a round slowed by more than the calibration's
        # margin may finish a little after it (reported as e2e_probe_overrun_s).
        measured = probe.finish(timeout_s=load_end + self.config.probe_grace_s - time.time())
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
        return probe_metrics(
            measured,
            coverage=measured.coverage(window.start, window.end),
            overrun_s=max(0.0, measured.ended_at - load_end),
        )

    # ---------------------------------------------------------------- waiting and checking

    def _check(self, ctx: RunContext) -> None:
        for i, prod in enumerate(self._producers):
            code = prod.poll()
            if code not in (None, 0):
                raise WorkloadError(
                    f"producer-{i} exited with {code}; last lines of "
                    f"{prod.output_path}:\n{_log_tail(prod.output_path)}"
                )
        for i, cons in enumerate(self._consumers):
            code = cons.poll()
            if code is not None:
                raise WorkloadError(
                    f"consumer-{i} exited with {code} during the run; last "
                    f"lines of {cons.output_path}:\n{_log_tail(cons.output_path)}"
                )
        probe = self._probe
        if probe is not None and probe.error:
            raise WorkloadError(probe.error)
        reason = ctx.services[self.config.target].health()
        if reason:
            raise WorkloadError(f"service {self.config.target!r} failed during the run: {reason}")

    def _settle(self, ctx: RunContext, per_producer: float) -> bool:
        """Wait (up to ``settle``) until each producer's last report interval is within
        15 % above its rate; False when the budget ran out. The generator never sends above
        its rate, so this only waits for every producer's first report."""
        end = time.monotonic() + self.config.settle
        while True:
            rates = [prod.output().last_rate() for prod in self._producers]
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

    def _wait(
        self, ctx: RunContext, ready: Callable[[], bool], *, timeout_s: float, what: str
    ) -> None:
        end = time.monotonic() + timeout_s
        while not ready():
            self._check(ctx)
            if time.monotonic() > end:
                raise WorkloadError(f"timed out after {timeout_s:g}s waiting for {what}")
            ctx.sleep(0.1)


def _lag(ends: Mapping[int, int], committed: Mapping[int, int]) -> int:
    """Messages on the log not yet committed by the group, over every partition."""
    return sum(max(0, off - committed.get(p, 0)) for p, off in ends.items())


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def _log_tail(path: Path) -> str:
    return "\n".join(tail(path, _LOG_LINES)) or "(no output)"


__all__ = ["READY_TIMEOUT_S", "LocalIngestRun"]
