"""Cumulative counters over windows: value at an instant, difference over a window, power.

Energy (and CPU time, and I/O bytes) arrive as cumulative counters sampled at irregular
instants (:class:`~greenflow.api.Sample`). The energy over a window is the counter at its
end minus the counter at its start, each interpolated linearly between the two samples
that bracket the instant. Nothing outside the window leaks in beyond that interpolation,
and nothing is ever averaged over a longer span than the window itself.

Every function here takes the samples of **one series** (same host, metric, method and
labels); :func:`split_series` cuts a mixed list into series.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Sequence
from itertools import pairwise

from greenflow.api import Sample, Window
from greenflow.errors import CollectorError

#: Identity of a series: host, metric, method and sorted labels.
SeriesKey = tuple[str, str, str, tuple[tuple[str, str], ...]]


class NotCoveredError(CollectorError):
    """The samples of a series do not reach both ends of the window asked for."""


def series_key(sample: Sample) -> SeriesKey:
    """The identity of ``sample``'s series: ``(host, metric, method, sorted labels)``."""
    return sample.host, sample.metric, sample.method, tuple(sorted(sample.labels.items()))


def split_series(samples: Iterable[Sample]) -> dict[SeriesKey, list[Sample]]:
    """Samples grouped by :func:`series_key`, each series sorted by timestamp."""
    out: dict[SeriesKey, list[Sample]] = {}
    for s in samples:
        out.setdefault(series_key(s), []).append(s)
    for series in out.values():
        series.sort(key=lambda s: s.timestamp)
    return out


def _describe(samples: Sequence[Sample]) -> str:
    s = samples[0]
    labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
    return f"{s.metric}{{{labels}}} of host {s.host!r} ({s.method})"


def _points(samples: Sequence[Sample]) -> tuple[list[float], list[float]]:
    if not samples:
        raise NotCoveredError("no samples: cannot read a counter from an empty series")
    key = series_key(samples[0])
    if any(series_key(s) != key for s in samples):
        mixed = sorted({f"{s.metric}/{s.host}/{s.method}/{dict(s.labels)}" for s in samples})
        msg = f"expected the samples of one series, got several: {', '.join(mixed[:4])}"
        raise ValueError(msg)
    ordered = sorted(samples, key=lambda s: s.timestamp)
    return [s.timestamp for s in ordered], [s.value for s in ordered]


def _at(ts: list[float], vs: list[float], t: float, samples: Sequence[Sample]) -> float:
    if not ts[0] <= t <= ts[-1]:
        msg = (
            f"{_describe(samples)} has samples from {ts[0]:.3f} to {ts[-1]:.3f}, which do "
            f"not cover {t:.3f} ({t - ts[0]:+.3f} s from the first); the collector "
            "started late, stopped early or dropped old samples"
        )
        raise NotCoveredError(msg)
    i = bisect_left(ts, t)
    if ts[i] == t:
        return vs[i]
    # ts[i-1] < t < ts[i] here, so the span is never zero.
    t0, t1 = ts[i - 1], ts[i]
    return vs[i - 1] + (vs[i] - vs[i - 1]) * (t - t0) / (t1 - t0)


def counter_at(samples: Sequence[Sample], t: float) -> float:
    """The counter at instant ``t``, interpolated linearly between the samples around it.

    Raises :class:`NotCoveredError` when ``t`` is before the first or after the last sample:
    a counter is never extrapolated.
    """
    ts, vs = _points(samples)
    return _at(ts, vs, t, samples)


def counter_delta(samples: Sequence[Sample], window: Window) -> float:
    """How much the counter grew over ``window``: its value at the end minus at the start.

    Only the window counts: each end is interpolated between the samples bracketing it,
    so samples further out do not change the result. Raises :class:`NotCoveredError` when
    the samples do not reach both ends.
    """
    ts, vs = _points(samples)
    return _at(ts, vs, window.end, samples) - _at(ts, vs, window.start, samples)


def power_series(samples: Sequence[Sample]) -> list[tuple[float, float]]:
    """Mean power between consecutive samples of an energy counter, as ``(t, watts)``.

    ``t`` is the middle of each interval, where the mean is the best estimate of the
    instantaneous power. Samples sharing a timestamp are skipped over.
    """
    ts, vs = _points(samples)
    return [
        ((t0 + t1) / 2, (v1 - v0) / (t1 - t0))
        for t0, t1, v0, v1 in zip(ts, ts[1:], vs, vs[1:], strict=False)
        if t1 > t0
    ]


def mean_power_watts(samples: Sequence[Sample], window: Window) -> float:
    """Mean power over ``window`` from an energy counter in joules: energy / duration."""
    if window.duration_s <= 0:
        raise ValueError(f"window {window.start}..{window.end} has no duration")
    return counter_delta(samples, window) / window.duration_s


#: A gap between two samples longer than this many times the series' usual interval (its
#: median), and longer than :data:`MIN_GAP_LIMIT_S`, is flagged: a counter read across it
#: is an interpolation, not a measurement.
GAP_FACTOR = 3.0
MIN_GAP_LIMIT_S = 2.0


def longest_gap(samples: Sequence[Sample], window: Window) -> tuple[float, float]:
    """(the longest interval between consecutive samples that overlaps ``window``, the limit
    above which it is flagged: :data:`GAP_FACTOR` × the series' median interval, at least
    :data:`MIN_GAP_LIMIT_S`). (0, limit) for fewer than two samples."""
    ts = sorted(s.timestamp for s in samples)
    steps = [b - a for a, b in pairwise(ts) if b > a]
    if not steps:
        return 0.0, MIN_GAP_LIMIT_S
    median = sorted(steps)[len(steps) // 2]
    limit = max(MIN_GAP_LIMIT_S, GAP_FACTOR * median)
    overlapping = [b - a for a, b in pairwise(ts) if b > window.start and a < window.end]
    return max(overlapping, default=0.0), limit
