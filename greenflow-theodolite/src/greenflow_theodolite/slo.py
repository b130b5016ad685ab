"""Theodolite's "lag trend" service-level objective, without numpy, pandas or sklearn.

Emulated: Theodolite's lag-trend SLO checker (``slo-checker/record-lag/app/main.py`` and
``trend_slope_computer.py`` in github.com/cau-se/theodolite, read for this module). There,
the operator samples consumer lag every 5 s over each repetition of an experiment; per
repetition, the checker flattens every returned series into (timestamp, lag) rows, turns a
``NaN`` lag into 0, drops the rows earlier than the first timestamp plus the warm-up, fits
``lag ~ timestamp`` by ordinary least squares (sklearn ``LinearRegression``) and takes the
slope, in records per second, as the repetition's result; a fit that fails counts as
``+inf``. The SLO holds iff the median of the per-repetition slopes is below the threshold
(shipped benchmarks: warm-up 60 s, threshold 2000 records/s).

Several consumer groups: Theodolite pools them — every group's rows go into one regression
as separate points. :func:`lag_trend_slope` does the same with whatever rows it is given:
it never sums rows that share a timestamp. A caller that wants the trend of the *total* lag
sums per sample time first (one row per timestamp); a caller that wants Theodolite's
behaviour passes one row per group per sample. For the shipped UC benchmarks both are the
same, since their PromQL selects a single group (``sum by(consumergroup)(
kafka_consumergroup_lag{consumergroup='theodolite-ucN-application-0.0.1'} >= 0)``).

Differences from Theodolite, on purpose:

- The warm-up is measured from the earliest timestamp; Theodolite uses the first row of its
  flattened frame, which is the same unless a later-listed group started sampling earlier.
- Timestamps are used as given (float seconds); Theodolite truncates them with ``int()``,
  a no-op for Prometheus' whole-second 5 s steps.
- Fewer than two rows after the warm-up, or no spread in their timestamps, give ``+inf``
  (no trend can be measured, so the SLO fails). In Theodolite ``+inf`` comes only from an
  exception in the fit: certainly for zero rows, and its own tests expect one for a single
  row; several rows at one timestamp presumably get least squares' minimum-norm slope 0
  (not checked: sklearn is not installed here). A non-finite slope (from infinite lag
  values) is also reported as ``+inf``.
- :func:`verdict` refuses an empty list of slopes (``statistics.median`` would raise too).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from typing import Final

import attrs

__all__ = [
    "DEFAULT_THRESHOLD",
    "DEFAULT_WARMUP_S",
    "SAMPLE_INTERVAL_S",
    "LagSample",
    "SloVerdict",
    "lag_trend_slope",
    "verdict",
]

# Theodolite's shipped lag-trend SLO and its Prometheus query step.
DEFAULT_WARMUP_S: Final = 60.0
DEFAULT_THRESHOLD: Final = 2000.0
SAMPLE_INTERVAL_S: Final = 5.0


@attrs.frozen
class LagSample:
    """Consumer lag (records) at a time (seconds, e.g. Unix time)."""

    timestamp_s: float
    lag: float


def _rows(samples: Iterable[LagSample | tuple[float, float]]) -> list[tuple[float, float]]:
    rows = []
    for sample in samples:
        t, lag = (sample.timestamp_s, sample.lag) if isinstance(sample, LagSample) else sample
        # Theodolite maps Prometheus' "NaN" (no data for the group at that step) to 0.
        rows.append((float(t), 0.0 if math.isnan(lag) else float(lag)))
    return rows


def lag_trend_slope(
    samples: Iterable[LagSample | tuple[float, float]], warmup_s: float = DEFAULT_WARMUP_S
) -> float:
    """The least-squares slope of lag over time after the warm-up, in records per second.

    ``samples`` are :class:`LagSample` or ``(timestamp_s, lag)`` rows, in any order; rows of
    several consumer groups are pooled (see the module docstring). Returns ``+inf`` when no
    line can be fitted: fewer than two rows left after the warm-up, or all at one time.
    """
    rows = _rows(samples)
    if not rows:
        return math.inf
    start = min(t for t, _ in rows)
    kept = [(t, lag) for t, lag in rows if t - start >= warmup_s]
    if len(kept) < 2:
        return math.inf
    # Closed-form OLS on centred values (timestamps are ~1e9 s: centring keeps the sums
    # small); fsum keeps the sums exact enough for long runs.
    n = len(kept)
    mean_t = math.fsum(t for t, _ in kept) / n
    mean_lag = math.fsum(lag for _, lag in kept) / n
    sxx = math.fsum((t - mean_t) ** 2 for t, _ in kept)
    if sxx == 0.0:
        return math.inf
    sxy = math.fsum((t - mean_t) * (lag - mean_lag) for t, lag in kept)
    slope = sxy / sxx
    return slope if math.isfinite(slope) else math.inf


@attrs.frozen
class SloVerdict:
    """The lag-trend SLO over repetitions: met iff ``median < threshold``."""

    slopes: tuple[float, ...]
    median: float
    threshold: float
    met: bool


def verdict(slopes: Sequence[float], threshold: float = DEFAULT_THRESHOLD) -> SloVerdict:
    """Judge the repetitions' slopes (records/s) as Theodolite does: median below threshold.

    With an even number of repetitions the median is the mean of the middle two, so one
    ``+inf`` among two repetitions fails the SLO.
    """
    if not slopes:
        raise ValueError("no repetitions to judge: the lag-trend SLO needs at least one slope")
    values = tuple(float(s) for s in slopes)
    median = statistics.median(values)
    # NaN (e.g. the median of -inf and +inf) compares false: not met.
    return SloVerdict(values, median, float(threshold), median < threshold)
