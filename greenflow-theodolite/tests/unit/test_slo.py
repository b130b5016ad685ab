"""The lag-trend SLO, checked against hand-computed cases and the stdlib's own regression."""

from __future__ import annotations

import math
import random
import statistics

import pytest

from greenflow_theodolite.slo import (
    DEFAULT_THRESHOLD,
    DEFAULT_WARMUP_S,
    SAMPLE_INTERVAL_S,
    LagSample,
    SloVerdict,
    lag_trend_slope,
    verdict,
)

T0 = 1_700_000_000.0  # Unix-time-sized timestamps, as Prometheus returns them


def series(
    lags: list[float], start: float = T0, step: float = SAMPLE_INTERVAL_S
) -> list[LagSample]:
    return [LagSample(start + i * step, lag) for i, lag in enumerate(lags)]


def stdlib_slope(samples: list[LagSample]) -> float:
    """The independent reference: ``statistics.linear_regression`` (Python ≥ 3.10)."""
    return statistics.linear_regression(
        [s.timestamp_s for s in samples], [s.lag for s in samples]
    ).slope


# --- lag_trend_slope ---------------------------------------------------------------------------


def test_hand_computed_small_cases() -> None:
    assert lag_trend_slope([(0, 0), (1, 1), (2, 2)], warmup_s=0) == 1.0
    # t̄ = 1, ȳ = 2: Σ(t-t̄)(y-ȳ) = 1·1 + 0 + 1·0 = 1, Σ(t-t̄)² = 2 → 0.5
    assert lag_trend_slope([(0, 1), (1, 3), (2, 2)], warmup_s=0) == 0.5
    # Two points: the line through them.
    assert lag_trend_slope([(10, 100), (15, 50)], warmup_s=0) == -10.0
    # Theodolite's own test data (trend_slope_computer tests): slope 5 and -5.
    rising = [(1000, 10.0), (1001, 15.0), (1002, 20.0), (1003, 25.0), (1004, 30.0)]
    assert lag_trend_slope(rising, warmup_s=0) == 5.0
    assert lag_trend_slope([(t, 40.0 - lag) for t, lag in rising], warmup_s=0) == -5.0


def test_rising_series_records_per_second() -> None:
    # 10 minutes at 5 s, lag growing by 2500 records/s on top of 1000.
    samples = series([1000.0 + 2500.0 * SAMPLE_INTERVAL_S * i for i in range(121)])
    assert lag_trend_slope(samples) == pytest.approx(2500.0, rel=1e-12)
    assert lag_trend_slope(samples) == pytest.approx(stdlib_slope(samples[12:]), rel=1e-12)


def test_flat_series_has_zero_slope() -> None:
    assert lag_trend_slope(series([20.0] * 60)) == 0.0
    assert lag_trend_slope(series([0.0] * 60)) == 0.0


def test_noisy_series_matches_stdlib_regression() -> None:
    rng = random.Random(20240917)
    for true_slope in (-50.0, 0.0, 3.0, 1999.0, 2001.0, 40_000.0):
        lags = [
            max(0.0, 5000.0 + true_slope * SAMPLE_INTERVAL_S * i + rng.gauss(0.0, 800.0))
            for i in range(72)
        ]
        samples = series(lags)
        kept = [s for s in samples if s.timestamp_s >= T0 + DEFAULT_WARMUP_S]
        assert len(kept) == 72 - 12
        assert lag_trend_slope(samples) == pytest.approx(stdlib_slope(kept), rel=1e-9, abs=1e-9)


def test_warmup_cut() -> None:
    # A burst in the warm-up (the app starting up), then a steady decline.
    warmup = [0.0, 90_000.0, 150_000.0, 120_000.0, 80_000.0, 60_000.0, 50_000.0]
    after = [10_000.0 - 20.0 * SAMPLE_INTERVAL_S * i for i in range(30)]
    samples = series(warmup + after, step=10.0)
    # Rows with t - first < 60 s go; the row at exactly first + 60 s stays (Theodolite: >=).
    assert samples[6].timestamp_s == T0 + 60.0
    kept = samples[6:]
    assert lag_trend_slope(samples) == pytest.approx(stdlib_slope(kept), rel=1e-12)
    assert lag_trend_slope(samples, warmup_s=0.0) == pytest.approx(stdlib_slope(samples), rel=1e-12)
    # Shorter run than warm-up plus one sample: nothing to fit.
    assert lag_trend_slope(series([1.0] * 13), warmup_s=60.0) == math.inf
    assert lag_trend_slope(series([1.0, 2.0] * 7), warmup_s=60.0) == pytest.approx(
        stdlib_slope(series([1.0, 2.0] * 7)[12:])
    )


def test_rows_in_any_order_and_tuple_rows() -> None:
    samples = series([float((i * 37) % 11) for i in range(40)])
    shuffled = samples[::-1]
    rows = [(s.timestamp_s, s.lag) for s in shuffled]
    expected = stdlib_slope(samples[12:])
    # The warm-up counts from the earliest timestamp, wherever it is in the input.
    assert lag_trend_slope(shuffled) == pytest.approx(expected, rel=1e-12)
    assert lag_trend_slope(rows) == pytest.approx(expected, rel=1e-12)


def test_groups_are_pooled_not_summed() -> None:
    # Two consumer groups sampled at the same times: Theodolite regresses all rows together,
    # so the slope is that of the pooled cloud (here the mean of 100 and 300), not the sum.
    group_a = series([100.0 * SAMPLE_INTERVAL_S * i for i in range(30)])
    group_b = series([300.0 * SAMPLE_INTERVAL_S * i for i in range(30)])
    pooled = lag_trend_slope(group_a + group_b, warmup_s=0)
    assert pooled == pytest.approx(200.0, rel=1e-12)
    assert pooled == pytest.approx(stdlib_slope(group_a + group_b), rel=1e-12)
    summed = [
        LagSample(a.timestamp_s, a.lag + b.lag) for a, b in zip(group_a, group_b, strict=True)
    ]
    assert lag_trend_slope(summed, warmup_s=0) == pytest.approx(400.0, rel=1e-12)


def test_nan_lag_counts_as_zero() -> None:
    lags = [10.0 * i for i in range(30)]
    with_nan = list(lags)
    with_nan[15] = math.nan
    with_nan[20] = math.nan
    as_zero = [0.0 if math.isnan(lag) else lag for lag in with_nan]
    result = lag_trend_slope(series(with_nan), warmup_s=0)
    assert result == lag_trend_slope(series(as_zero), warmup_s=0)
    assert result == pytest.approx(stdlib_slope(series(as_zero)), rel=1e-12)
    assert result < 2.0  # the zeros pull the trend below the clean series' 2 records/s


@pytest.mark.parametrize(
    "rows",
    [
        pytest.param([], id="no-rows"),
        pytest.param([(T0, 5.0)], id="one-row"),
        pytest.param([(T0, 5.0), (T0, 7.0), (T0, 9.0)], id="one-timestamp"),
        pytest.param([(T0, 1.0), (T0 + 30, 2.0), (T0 + 60, 3.0)], id="one-row-after-warmup"),
        pytest.param([(T0, 0.0), (T0 + 60, 1.0), (T0 + 60, 2.0)], id="one-timestamp-after-warmup"),
        pytest.param([(T0, 0.0), (T0 + 60, 1.0), (T0 + 65, math.inf)], id="infinite-lag"),
    ],
)
def test_failed_fit_is_infinite(rows: list[tuple[float, float]]) -> None:
    assert lag_trend_slope(rows) == math.inf


# --- verdict ------------------------------------------------------------------------------------


def test_verdict_odd_repetitions() -> None:
    result = verdict([2500.0, 100.0, 1200.0])
    assert result == SloVerdict((2500.0, 100.0, 1200.0), 1200.0, DEFAULT_THRESHOLD, True)
    assert verdict([2500.0, 100.0, 2100.0]).met is False


def test_verdict_median_of_even_repetitions() -> None:
    # Middle two are 1000 and 3000: median 2000, not below 2000.
    at_threshold = verdict([5000.0, 1000.0, 100.0, 3000.0])
    assert at_threshold.median == 2000.0
    assert at_threshold.met is False
    below = verdict([5000.0, 1000.0, 100.0, 2900.0])
    assert below.median == 1950.0
    assert below.met is True


def test_verdict_with_infinite_slopes() -> None:
    # One failed repetition out of three is outvoted; out of two it is not.
    assert verdict([10.0, math.inf, 20.0]) == SloVerdict((10.0, math.inf, 20.0), 20.0, 2000.0, True)
    assert verdict([10.0, math.inf]).median == math.inf
    assert verdict([10.0, math.inf]).met is False
    assert verdict([math.inf]).met is False
    # The median of -inf and +inf is NaN, which is not below anything.
    assert verdict([-math.inf, math.inf]).met is False


def test_verdict_threshold_and_empty() -> None:
    assert verdict([150.0], threshold=100.0).met is False
    assert verdict([-3.0, 0.0], threshold=0.0).met is True
    with pytest.raises(ValueError, match="at least one slope"):
        verdict([])


def test_end_to_end_repetitions() -> None:
    stable = series([800.0 + 3.0 * i for i in range(60)])
    overloaded = series([800.0 + 4000.0 * SAMPLE_INTERVAL_S * i for i in range(60)])
    slopes = [lag_trend_slope(stable), lag_trend_slope(overloaded), lag_trend_slope(stable)]
    assert verdict(slopes).met is True
    assert verdict([lag_trend_slope(overloaded), lag_trend_slope([])]).met is False
