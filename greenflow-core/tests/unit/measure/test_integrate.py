"""Cumulative counters over windows: interpolation, differences, power."""

from __future__ import annotations

import pytest

from greenflow.api import Sample, Window
from greenflow.errors import CollectorError
from greenflow.measure.integrate import (
    NotCoveredError,
    counter_at,
    counter_delta,
    mean_power_watts,
    power_series,
    split_series,
)


def _series(points: list[tuple[float, float]], domain: str = "package-0") -> list[Sample]:
    return [
        Sample(t, "energy_joules", v, "joules", "rapl", "n1", {"domain": domain}) for t, v in points
    ]


def test_counter_at_interpolates_between_bracketing_samples() -> None:
    """Between two samples the counter is interpolated linearly; at a sample it is exact."""
    s = _series([(0, 0), (10, 100), (20, 300)])
    assert counter_at(s, 10) == 100
    assert counter_at(s, 5) == pytest.approx(50)
    assert counter_at(s, 15) == pytest.approx(200)
    assert counter_at(list(reversed(s)), 15) == pytest.approx(200)


def test_counter_is_never_extrapolated() -> None:
    """An instant outside the samples raises a CollectorError saying what is covered."""
    s = _series([(10, 0), (20, 100)])
    with pytest.raises(NotCoveredError, match=r"do not cover 9\.000") as info:
        counter_at(s, 9)
    assert isinstance(info.value, CollectorError)
    assert "domain=package-0" in str(info.value)
    with pytest.raises(NotCoveredError):
        counter_delta(s, Window(15, 21))
    with pytest.raises(NotCoveredError, match="empty"):
        counter_at([], 1)


def test_delta_counts_only_the_window() -> None:
    """Energy outside the window, even right next to it, does not leak in."""
    # 10 W inside [10, 20]; a 1000 J burst before and after it.
    s = _series([(0, 0), (9, 1000), (10, 1000), (20, 1100), (21, 1100), (30, 2100)])
    assert counter_delta(s, Window(10, 20)) == pytest.approx(100)
    assert counter_delta(s, Window(12, 18)) == pytest.approx(60)
    assert mean_power_watts(s, Window(12, 18)) == pytest.approx(10)


def test_one_series_at_a_time() -> None:
    """Samples of two series are refused rather than mixed; split_series separates them."""
    mixed = _series([(0, 0), (1, 10)]) + _series([(0, 0), (1, 5)], domain="dram-0")
    with pytest.raises(ValueError, match="one series"):
        counter_at(mixed, 0.5)
    parts = split_series(mixed)
    assert len(parts) == 2
    assert sorted(counter_delta(p, Window(0, 1)) for p in parts.values()) == [5, 10]


def test_power_series_differences_consecutive_samples() -> None:
    """Power is the mean over each interval, placed at its middle; zero-length gaps skipped."""
    s = _series([(0, 0), (2, 100), (2, 100), (3, 250)])
    assert power_series(s) == [(1.0, 50.0), (2.5, 150.0)]


def test_mean_power_needs_a_window_with_duration() -> None:
    """A zero-length window has no mean power."""
    with pytest.raises(ValueError, match="no duration"):
        mean_power_watts(_series([(0, 0), (1, 1)]), Window(0.5, 0.5))
