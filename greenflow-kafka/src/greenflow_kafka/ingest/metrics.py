"""A kafka-ingest run's figures from what it read, the same for the local and the Kubernetes
run: both store the same metric names (docs/kafka.md, "What is measured")."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import structlog

from greenflow.errors import WorkloadError
from greenflow_kafka.consumer import ProbeRound
from greenflow_kafka.ingest.config import BEHIND_RATIO, KafkaIngestConfig
from greenflow_kafka.perf import ProducerStats

log = structlog.get_logger("greenflow.kafka_ingest")


def combine_latency(stats: Sequence[ProducerStats]) -> dict[str, float]:
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


def achieved_ratio(config: KafkaIngestConfig, achieved: float) -> float:
    """``achieved / load``; WorkloadError when below ``min_achieved_ratio``."""
    ratio = achieved / config.load
    if ratio < config.min_achieved_ratio:
        msg = (
            f"achieved {achieved:.0f} msg/s, {ratio:.1%} of the asked {config.load:g} msg/s "
            f"(below min_achieved_ratio {config.min_achieved_ratio:g}); the broker or the "
            "producers cannot keep up at this load"
        )
        raise WorkloadError(msg)
    return ratio


def producer_metrics(
    config: KafkaIngestConfig, ratio: float, stats: Sequence[ProducerStats], settled: bool
) -> dict[str, float]:
    """What was asked, what was achieved, and what the producers reported."""
    return {
        "asked_messages_per_s": config.load,
        "achieved_ratio": ratio,
        # 1 when every producer was back on its rate when MEASURE began (see `settle`).
        "producers_settled": 1.0 if settled else 0.0,
        "producer_reported_messages_per_s": sum(s.records_per_s for s in stats),
        "producer_records_total": float(sum(s.records for s in stats)),
    }


def consumer_metrics(
    run_id: str,
    before: Mapping[int, int],
    after: Mapping[int, int],
    *,
    lag: int,
    messages: int,
    window_s: float,
    consumer_records: int,
) -> dict[str, float]:
    """Messages consumed in MEASURE from the group's committed offsets ``before`` and
    ``after`` it (partition → offset), with the lag when it ended; logs
    ``kafka_ingest.consumers_behind`` when the consumers fell behind (a figure, not a
    failure)."""
    consumed = sum(after.get(p, 0) - before.get(p, 0) for p in after)
    metrics = {
        "consumed_messages": float(consumed),
        "consumed_messages_per_s": consumed / window_s,
        "consumer_lag_messages": float(lag),
        "consumer_records_total": float(consumer_records),
    }
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
    "achieved_ratio",
    "combine_latency",
    "consumer_metrics",
    "probe_metrics",
    "producer_metrics",
]
