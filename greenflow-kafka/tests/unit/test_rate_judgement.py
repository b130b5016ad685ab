"""What a kafka-ingest run's counted rate does to the run: kept, or failed with its figures
(docs/kafka.md, "Overload"). Pure logic on a WorkloadResult; nothing is simulated."""

from __future__ import annotations

import pytest

from greenflow.api import WorkloadResult
from greenflow.errors import WorkloadError
from greenflow_kafka.ingest.config import KafkaIngestConfig
from greenflow_kafka.ingest.metrics import MAX_ACHIEVED_RATIO, judged


def _result(rate: float) -> WorkloadResult:
    return WorkloadResult(units=rate * 3, unit="message", achieved_rate=rate)


def test_a_rate_within_the_bounds_is_kept() -> None:
    config = KafkaIngestConfig(load=1000)
    result = _result(980.0)
    assert judged(config, result) is result


def test_falling_short_fails_saying_the_rate_reached_and_keeps_it() -> None:
    """The documented message, and the result rides on the error to be stored."""
    config = KafkaIngestConfig(load=10_000_000)
    result = _result(612_345.0)
    with pytest.raises(WorkloadError) as info:
        judged(config, result)
    assert str(info.value).startswith("achieved 612345 msg/s, 6.1% of the asked 1e+07 msg/s")
    assert "min_achieved_ratio = 0" in str(info.value)
    assert info.value.result is result


def test_min_achieved_ratio_zero_keeps_an_overloaded_run() -> None:
    config = KafkaIngestConfig(load=10_000_000, min_achieved_ratio=0)
    result = _result(612_345.0)
    assert judged(config, result) is result


def test_more_than_asked_beyond_the_guard_is_not_a_clean_finish() -> None:
    """A second producer on the topic (a crashed run's orphan) shows as counts above the
    asked rate: the run fails even with min_achieved_ratio = 0, naming the likely cause."""
    config = KafkaIngestConfig(load=1000, min_achieved_ratio=0)
    result = _result(1000 * (MAX_ACHIEVED_RATIO + 0.2))
    with pytest.raises(WorkloadError, match="another producer may be writing") as info:
        judged(config, result)
    assert info.value.result is result
