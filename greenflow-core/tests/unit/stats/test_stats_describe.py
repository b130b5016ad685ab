"""describe(): mean, sample sd and the Student-t interval, by hand."""

from __future__ import annotations

import math

import pytest
from test_stats_tdist import T_975

from greenflow.stats import describe


def test_hand_computed() -> None:
    """10, 12, 14 → mean 12, sd 2, CI 12 ± 4.303 × 2 / √3."""
    stat = describe([10.0, 12.0, 14.0], "rapl")
    assert stat.n == 3 and stat.method == "rapl"
    assert stat.mean == 12.0
    assert stat.sd == 2.0
    half = 4.303 * 2 / math.sqrt(3)  # 4.9687
    assert stat.ci_low == pytest.approx(12 - half, abs=1e-3)
    assert stat.ci_high == pytest.approx(12 + half, abs=1e-3)
    assert stat.half_width == pytest.approx(half, abs=1e-3)


def test_two_values() -> None:
    """1, 3 → mean 2, sd √2, CI 2 ± 12.706 × √2 / √2 = 2 ± 12.706."""
    stat = describe([1.0, 3.0], "model:linear")
    assert stat.mean == 2.0
    assert stat.sd == pytest.approx(math.sqrt(2), rel=1e-15)
    assert stat.ci_low == pytest.approx(2 - 12.706, abs=1e-3)
    assert stat.ci_high == pytest.approx(2 + 12.706, abs=1e-3)


def test_single_value_has_no_spread() -> None:
    """n = 1 gives the mean, and None (not 0) for sd and the interval."""
    stat = describe([42.5], "rapl")
    assert (stat.mean, stat.sd, stat.ci_low, stat.ci_high, stat.n) == (42.5, None, None, None, 1)
    assert stat.half_width is None


def test_equal_values_have_zero_width() -> None:
    """Identical repetitions give sd 0 and an interval of width 0."""
    stat = describe([4.0, 4.0, 4.0, 4.0], "rapl")
    assert (stat.sd, stat.ci_low, stat.ci_high) == (0.0, 4.0, 4.0)


def test_no_cancellation_on_large_values() -> None:
    """Values in the tens of kJ that differ by joules keep their exact spread."""
    stat = describe([1e8 + 10.0, 1e8 + 12.0, 1e8 + 14.0], "rapl")
    assert stat.sd == 2.0


@pytest.mark.parametrize("n", range(2, 31))
def test_interval_against_table(n: int) -> None:
    """For n = 2..30 the half-width is t_{0.975, n−1} × sd / √n with the table's t."""
    # 0, 1, ..., n−1: mean (n−1)/2 and variance n(n+1)/12, by the sums of integers.
    values = [float(i) for i in range(n)]
    stat = describe(values, "rapl")
    assert stat.mean == (n - 1) / 2
    assert stat.sd == pytest.approx(math.sqrt(n * (n + 1) / 12), rel=1e-14)
    t = stat.half_width / (stat.sd / math.sqrt(n))  # type: ignore[operator]
    assert round(t, 3) == T_975[n - 1]
    assert stat.ci_low == pytest.approx(stat.mean - stat.half_width, rel=1e-14)  # type: ignore[operator]


def test_rejects_empty_and_non_finite() -> None:
    """No values, NaN or infinity raise ValueError: the caller drops missing values."""
    for values in ([], [1.0, math.nan], [math.inf]):
        with pytest.raises(ValueError):
            describe(values, "rapl")
