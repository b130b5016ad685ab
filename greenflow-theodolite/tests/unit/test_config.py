"""The theodolite workload's [workload] settings, checked when the plan is read: defaults
as Theodolite's, the derived sensors and generator instances, and a message naming the key
for each plan it refuses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from greenflow.plan.structure import PlanErrors, structure
from greenflow_theodolite.config import TheodoliteConfig

PLAN = Path("plan.toml")


def _config(**raw: Any) -> TheodoliteConfig:
    config: TheodoliteConfig = structure(
        {"use_case": "uc1", "load": 1000, **raw}, TheodoliteConfig, path=PLAN, section="workload"
    )
    return config


def _refused(**raw: Any) -> str:
    with pytest.raises(PlanErrors) as info:
        _config(**raw)
    (problem,) = info.value.problems
    return problem


def test_defaults_follow_theodolite() -> None:
    """Kafka Streams, one instance of one thread, sensors every second (records/s =
    sensors), ceil(load / 150,000) generators, the lag-trend SLO at 2000 records/s, lag
    read every 5 s, the consumer group named as Theodolite names it."""
    c = _config()
    assert (c.engine, c.instances, c.threads, c.partitions) == ("kstreams", 1, 1, 12)
    assert (c.sensor_count, c.generator_count, float(c.period)) == (1000, 1, 1.0)
    assert (c.slo_threshold, float(c.lag_interval), float(c.warmup)) == (2000.0, 5.0, 60.0)
    assert c.application_id == "theodolite-uc1-application-0.0.1"
    assert _config(load=400_000).generator_count == 3
    assert _config(load=500, period="100ms").sensor_count == 50


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"use_case": "uc5"}, "[workload] use_case: expected one of uc1, uc2, uc3, uc4, got 'uc5'"),
        ({"engine": "flink", "use_case": "uc2"}, "engine: flink implements uc1 here, not uc2"),
        ({"engine": "spark"}, "engine: expected one of kstreams, flink, got 'spark'"),
        (
            {"instances": 4, "threads": 4, "partitions": 12},
            "instances: 4 instance(s) × 4 thread(s) = 16 consumers for 12 partitions",
        ),
        (
            {"load": 400_000, "generators": 2},
            "load: 400000 records/s from 2 generator instance(s) is more than 150,000 each",
        ),
        (
            {"sensors": 10, "load": 1000},
            "sensors: 10 sensors every 1 s send 10 records/s, not load = 1000",
        ),
        (
            {"load": 2, "generators": 3},
            "load: 2 sensor(s) cannot be split over 3 generator instances",
        ),
        ({"load": 0}, "[workload] load"),
        ({"loads": 10}, "unknown key(s): loads"),
    ],
)
def test_a_wrong_plan_is_refused_naming_the_key(raw: dict[str, Any], expected: str) -> None:
    assert expected in _refused(**raw)
