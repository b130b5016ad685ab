"""What the local processes (workload.py) and the Kubernetes pods (kube.py) share: the
environment Theodolite's components read their settings from (its names; GreenFlow's builds
in ``data/apps`` honour the same), the topics, and a run's result."""

from __future__ import annotations

from collections.abc import Sequence
from typing import SupportsFloat

from greenflow.api import WorkloadResult
from greenflow_theodolite.config import TheodoliteConfig
from greenflow_theodolite.slo import LagSample, lag_trend_slope

#: The topics of every use case, and UC4's two more.
INPUT, OUTPUT = "input", "output"
UC4_TOPICS = ("configuration", "aggregation-feedback")


def _ms(seconds: SupportsFloat) -> str:
    """A duration (a plan ``Duration``, seconds) in whole milliseconds, as Theodolite's
    variables take it."""
    return str(round(float(seconds) * 1000))


def topics(cfg: TheodoliteConfig) -> dict[str, int]:
    """The use case's topics and their partitions. UC4's configuration topic has one: the
    sensor registry is one record every instance must read from the start."""
    out = {INPUT: cfg.partitions, OUTPUT: cfg.partitions}
    if cfg.use_case == "uc4":
        out |= {"configuration": 1, "aggregation-feedback": cfg.partitions}
    return out


def app_env(cfg: TheodoliteConfig, bootstrap: str, registry_url: str) -> dict[str, str]:
    """A use case application's environment (each instance the same)."""
    return {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "SCHEMA_REGISTRY_URL": registry_url,
        "NUM_STREAM_THREADS": str(cfg.threads),
        # The lag is read from the group's commits: commit more often than it is read.
        "COMMIT_INTERVAL_MS": _ms(cfg.commit_interval),
        "APPLICATION_ID": cfg.application_id,
        "DOWNSAMPLE_INTERVAL_MS": _ms(cfg.downsample_interval),
        "AGGREGATION_DURATION_MS": _ms(cfg.aggregation_duration),
        "AGGREGATION_ADVANCE_MS": _ms(cfg.aggregation_advance),
        "EMIT_PERIOD_MS": _ms(cfg.emit_period),
        "GRACE_PERIOD_MS": _ms(cfg.grace_period),
        # Flink's names (Theodolite's Flink benchmarks): its source commits at checkpoints.
        "PARALLELISM": str(cfg.instances * cfg.threads),
        "CHECKPOINTING_INTERVAL_MS": _ms(cfg.commit_interval),
    }


def generator_env(cfg: TheodoliteConfig, bootstrap: str, registry_url: str) -> dict[str, str]:
    """A load generator instance's environment, less ``INSTANCE_INDEX`` (per instance)."""
    return {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "SCHEMA_REGISTRY_URL": registry_url,
        "KAFKA_INPUT_TOPIC": INPUT,
        "NUM_SENSORS": str(cfg.sensor_count),
        "PERIOD_MS": _ms(cfg.period),
        "VALUE": f"{cfg.value:g}",
        "THREADS": str(cfg.generator_threads),
        "INSTANCES": str(cfg.generator_count),
        "NUM_NESTED_GROUPS": str(cfg.nested_groups),
        # Instance 0 publishes UC4's sensor registry, then waits for the apps to read it.
        "SEND_REGISTRY": "true" if cfg.use_case == "uc4" else "false",
        "SLEEP_PERIOD_MS": "2000",
    }


#: Metric names in a run's result (units in the names).
LAG_TREND = "lag_trend_records_per_s"
#: The max-throughput criterion's consumer part reads this name.
CONSUMER_LAG_TREND = "consumer_lag_trend_messages_per_s"


def run_result(
    cfg: TheodoliteConfig,
    records: float,
    out_records: float,
    seconds: float,
    lags: Sequence[LagSample],
) -> WorkloadResult:
    """A run's result from what it counted over MEASURE: the input and output records and
    the lag samples, whose trend decides the SLO (the same locally and on Kubernetes)."""
    seconds = max(seconds, 1e-9)
    slope = lag_trend_slope(lags, warmup_s=0.0)
    return WorkloadResult(
        units=records,
        unit="record",
        achieved_rate=records / seconds,
        metrics={
            "asked_rate_per_s": float(cfg.load),
            "input_records_per_s": records / seconds,
            "output_records_per_s": out_records / seconds,
            "lag_records": lags[-1].lag if lags else 0.0,
            LAG_TREND: slope,
            CONSUMER_LAG_TREND: slope,
            "slo_lag_trend_met": 1.0 if slope < cfg.slo_threshold else 0.0,
            "slo_lag_trend_threshold_records_per_s": cfg.slo_threshold,
            "instances": float(cfg.instances),
        },
    )
