"""A kafka-ingest run's figures from what it read, the same for the local and the Kubernetes
run: both store the same metric names (docs/kafka.md, "What is measured")."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import structlog

from greenflow.api import WorkloadResult
from greenflow.errors import WorkloadError
from greenflow_kafka.consumer import ProbeRound
from greenflow_kafka.generator import GeneratorOutput, GeneratorWindow, trend
from greenflow_kafka.ingest.config import BEHIND_RATIO, KafkaIngestConfig

log = structlog.get_logger("greenflow.kafka_ingest")

#: Metric names the sustained-rate criterion of greenflow's protocols reads
#: (``greenflow.builtin.protocols.SCHEDULE_LAG_TREND`` and ``LAG_TREND``).
SCHEDULE_LAG_TREND = "schedule_lag_trend_s_per_s"
LAG_TREND = "consumer_lag_trend_messages_per_s"


#: A broker count this far above what was asked is not a measurement of this run: another
#: producer wrote to the topic (an orphan of a crashed run), or the generator burst to catch
#: up, which it must never do. The run fails, its figures kept (the criterion's own overshoot
#: tolerance, tighter, judges sustained rates; this one only guards the store).
MAX_ACHIEVED_RATIO = 1.15


def achieved_ratio(config: KafkaIngestConfig, achieved: float) -> float:
    """``achieved / load``."""
    return achieved / config.load


def judged(config: KafkaIngestConfig, result: WorkloadResult) -> WorkloadResult:
    """``result``, unless the rate it counts fails the run: below ``min_achieved_ratio`` of
    the asked load, or above :data:`MAX_ACHIEVED_RATIO`. The WorkloadError then carries the
    result, so the failed run keeps the rate it reached (docs/kafka.md, "Overload")."""
    achieved = result.achieved_rate or 0.0
    ratio = achieved_ratio(config, achieved)
    if ratio < config.min_achieved_ratio:
        msg = (
            f"achieved {achieved:.0f} msg/s, {ratio:.1%} of the asked {config.load:g} msg/s "
            f"(below min_achieved_ratio {config.min_achieved_ratio:g}); the broker or the "
            "producers cannot keep up at this load (min_achieved_ratio = 0 keeps such a run "
            "as finished)"
        )
        raise WorkloadError(msg, result=result)
    if ratio > MAX_ACHIEVED_RATIO:
        msg = (
            f"achieved {achieved:.0f} msg/s, {ratio:.1%} of the asked {config.load:g} msg/s: "
            "more messages reached the topic than this run sent; another producer may be "
            "writing to it (a crashed run's: `greenflow down`, then run again)"
        )
        raise WorkloadError(msg, result=result)
    return result


def producer_metrics(
    config: KafkaIngestConfig,
    ratio: float,
    measured: GeneratorWindow,
    outputs: Sequence[GeneratorOutput],
    settled: bool,
) -> dict[str, float]:
    """What was asked, what was achieved, and what the generators reported: over MEASURE
    (their report intervals inside it) unless the name says ``total``."""
    metrics = {
        "asked_messages_per_s": config.load,
        "achieved_ratio": ratio,
        # 1 when every producer was on its rate when MEASURE began (see `settle`).
        "producers_settled": 1.0 if settled else 0.0,
        "producer_sent_messages": float(measured.sent),
        "producer_missed_sends": float(measured.missed),
        "producer_records_total": float(
            sum(o.end.acked if o.end is not None else o.acked for o in outputs)
        ),
        "producer_send_errors_total": float(
            sum(o.end.errors if o.end is not None else 0 for o in outputs)
        ),
        "latency_samples": float(measured.latency.n),
    }
    optional = {
        "producer_reported_messages_per_s": (
            measured.acked / measured.seconds if measured.seconds else None
        ),
        "producer_missed_ratio": measured.missed_ratio,
        SCHEDULE_LAG_TREND: measured.schedule_lag_trend,
        "schedule_lag_growth_s": measured.schedule_lag_growth_s,
        "schedule_lag_max_s": measured.schedule_lag_max_s,
        "producer_inflight_max_messages": (
            float(measured.inflight_max) if measured.inflight_max is not None else None
        ),
    }
    metrics.update({k: v for k, v in optional.items() if v is not None})
    return metrics


def consumer_metrics(
    run_id: str,
    before: Mapping[int, int],
    after: Mapping[int, int],
    *,
    lag: int,
    messages: int,
    window_s: float,
    consumer_records: int,
    lag_points: Sequence[tuple[float, float]] = (),
) -> dict[str, float]:
    """Messages consumed in MEASURE from the group's committed offsets ``before`` and
    ``after`` it (partition → offset), with the lag when it ended and, from ``lag_points``
    (time, lag) read through MEASURE, the lag's least-squares trend (messages per second);
    logs ``kafka_ingest.consumers_behind`` when the consumers fell behind (a figure, not a
    failure)."""
    consumed = sum(after.get(p, 0) - before.get(p, 0) for p in after)
    metrics = {
        "consumed_messages": float(consumed),
        "consumed_messages_per_s": consumed / window_s,
        "consumer_lag_messages": float(lag),
        "consumer_records_total": float(consumer_records),
    }
    slope = trend(lag_points)
    if slope is not None:
        metrics[LAG_TREND] = slope
        metrics["consumer_lag_samples"] = float(len(lag_points))
    if messages:
        metrics["consumed_ratio"] = consumed / messages
    if messages and consumed < BEHIND_RATIO * messages:
        log.warning(
            "kafka_ingest.consumers_behind",
            run=run_id,
            consumed=consumed,
            produced=messages,
            lag=lag,
        )
    return metrics


def probe_metrics(measured: ProbeRound, *, coverage: float, overrun_s: float) -> dict[str, float]:
    """The latency probe's figures from its measured round (which printed its summary)."""
    s = measured.stats
    if s is None:
        msg = "probe_metrics needs a round that printed its summary"
        raise ValueError(msg)
    return {
        "e2e_latency_avg_ms": measured.avg_ms if measured.avg_ms is not None else s.avg_ms,
        "e2e_latency_p50_ms": s.p50_ms,
        "e2e_latency_p99_ms": s.p99_ms,
        "e2e_latency_p999_ms": s.p999_ms,
        "e2e_probe_records": float(measured.records),
        "e2e_probe_coverage_ratio": coverage,
        "e2e_probe_overrun_s": overrun_s,
        **(
            {"e2e_probe_first_record_ms": measured.first_ms}
            if measured.first_ms is not None
            else {}
        ),
    }


__all__ = [
    "LAG_TREND",
    "SCHEDULE_LAG_TREND",
    "achieved_ratio",
    "consumer_metrics",
    "probe_metrics",
    "producer_metrics",
]
