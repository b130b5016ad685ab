"""Mean, sample standard deviation and Student-t confidence interval of repeated values."""

from __future__ import annotations

import math
from collections.abc import Iterable

import attrs

from greenflow.stats.tdist import t_quantile

#: Two-sided confidence level of every interval GreenFlow reports.
CONFIDENCE = 0.95


@attrs.frozen
class Stat:
    """One figure of one parameter point across its repetitions.

    ``sd`` is the sample standard deviation (n − 1); ``ci_low``/``ci_high`` the two-sided
    95 % Student-t interval of the mean. With ``n`` = 1 there is no spread to estimate:
    ``sd`` and the interval are None (not 0, which would claim certainty). ``method`` is
    how every value was obtained (``rapl``, ``model:linear``, ``workload``, ...); values of
    different methods are never in one Stat. ``systematic`` is an uncertainty shared by all
    repetitions (see :func:`widen`).
    """

    mean: float
    sd: float | None
    ci_low: float | None
    ci_high: float | None
    n: int
    method: str
    #: One standard uncertainty common to every repetition (the idle power subtracted from
    #: dynamic figures), included in the interval; None for figures without one.
    systematic: float | None = None

    @property
    def half_width(self) -> float | None:
        """Half the width of the confidence interval (the "±" of ``mean ± x``)."""
        return None if self.ci_high is None else self.ci_high - self.mean


def describe(values: Iterable[float], method: str, confidence: float = CONFIDENCE) -> Stat:
    """The :class:`Stat` of ``values``: mean, sd (n − 1), t-interval at ``confidence``.

    Values must be finite (callers drop missing ones); at least one is needed.

    >>> describe([10.0, 12.0, 14.0], "rapl").sd
    2.0
    """
    data = [float(v) for v in values]
    if not data:
        raise ValueError("describe() needs at least one value")
    bad = [v for v in data if not math.isfinite(v)]
    if bad:
        raise ValueError(f"describe() needs finite values, got {bad[0]}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence}")
    n = len(data)
    mean = math.fsum(data) / n
    if n == 1:
        return Stat(mean, None, None, None, 1, method)
    # Two passes (mean first) rather than Σx² − n·mean², which cancels catastrophically
    # for values like energies in the tens of kJ that differ by a few joules.
    sd = math.sqrt(math.fsum((v - mean) ** 2 for v in data) / (n - 1))
    half = t_quantile(1.0 - (1.0 - confidence) / 2.0, n - 1) * sd / math.sqrt(n)
    return Stat(mean, sd, mean - half, mean + half, n, method)


def widen(stat: Stat, systematic: float) -> Stat:
    """``stat`` with a standard uncertainty ``systematic`` shared by all its repetitions
    (it does not shrink with n) added to the interval: half-width √(h² + (z·u)²), z the
    normal quantile of the confidence level. With n = 1 there is still no interval."""
    if stat.ci_high is None or stat.ci_low is None:
        return attrs.evolve(stat, systematic=systematic)
    z = 1.959963984540054  # the standard normal's 97.5 % quantile
    half = math.hypot(stat.ci_high - stat.mean, z * systematic)
    return attrs.evolve(
        stat, ci_low=stat.mean - half, ci_high=stat.mean + half, systematic=systematic
    )
