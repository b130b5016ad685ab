"""Student's t distribution: CDF and quantiles, without scipy.

The CDF goes through the regularized incomplete beta function,
``P(T ≤ t) = 1 − ½·I_x(ν/2, ½)`` with ``x = ν / (ν + t²)`` for ``t ≥ 0``, evaluated with
``math.lgamma`` and the continued fraction of Numerical Recipes §6.4 (modified Lentz).
The quantile inverts the CDF by bisection. Both are accurate to about 1e-12, far more
than a confidence interval needs; scipy would be a large dependency for one number.
"""

from __future__ import annotations

import functools
import math

# The continued fraction converges in a few dozen terms for the a, b of a t
# distribution; the cap only guards against a bug looping forever.
_MAX_TERMS = 10_000
_EPS = 1e-16
_TINY = 1e-300


def _beta_cf(a: float, b: float, x: float) -> float:
    """Continued fraction of I_x(a, b), converging fast for x < (a + 1) / (a + b + 2)."""
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c = 1.0
    d = 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > _TINY else _TINY)
    h = d
    for m in range(1, _MAX_TERMS + 1):
        m2 = 2 * m
        for aa in (
            m * (b - m) * x / ((qam + m2) * (a + m2)),
            -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2)),
        ):
            d = 1.0 + aa * d
            d = 1.0 / (d if abs(d) > _TINY else _TINY)
            c = 1.0 + aa / c
            c = c if abs(c) > _TINY else _TINY
            h *= d * c
        if abs(d * c - 1.0) < _EPS:
            return h
    msg = f"incomplete beta continued fraction did not converge for a={a}, b={b}, x={x}"
    raise ArithmeticError(msg)


def betainc(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b), for a, b > 0 and 0 ≤ x ≤ 1."""
    if a <= 0 or b <= 0:
        raise ValueError(f"betainc needs a > 0 and b > 0, got a={a}, b={b}")
    if not 0.0 <= x <= 1.0:
        raise ValueError(f"betainc needs 0 ≤ x ≤ 1, got x={x}")
    if x == 0.0 or x == 1.0:
        return x
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _beta_cf(a, b, x) / a
    # Symmetry I_x(a, b) = 1 − I_{1−x}(b, a) keeps the fraction in its fast region.
    return 1.0 - math.exp(log_front) * _beta_cf(b, a, 1.0 - x) / b


def _upper_tail(t: float, df: float) -> float:
    """P(T > t) for t ≥ 0, computed directly so that small tails keep their precision."""
    return 0.5 * betainc(df / 2.0, 0.5, df / (df + t * t))


def t_cdf(t: float, df: float) -> float:
    """P(T ≤ t) for Student's t with ``df`` degrees of freedom (df > 0)."""
    if df <= 0:
        raise ValueError(f"degrees of freedom must be > 0, got {df}")
    if math.isnan(t):
        return math.nan
    if math.isinf(t):
        return 1.0 if t > 0 else 0.0
    tail = _upper_tail(abs(t), df)
    return 1.0 - tail if t >= 0 else tail


@functools.lru_cache(maxsize=1024)
def t_quantile(p: float, df: float) -> float:
    """The t such that P(T ≤ t) = p, for 0 < p < 1 and df > 0.

    ``t_quantile(0.975, n - 1)`` is the factor of a two-sided 95 % confidence interval
    of a mean of n values: 12.706 for n = 2, 4.303 for n = 3, → 1.960 as n grows.
    """
    if df <= 0:
        raise ValueError(f"degrees of freedom must be > 0, got {df}")
    if not 0.0 < p < 1.0:
        raise ValueError(f"t_quantile needs 0 < p < 1, got {p}")
    if p == 0.5:
        return 0.0
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    tail = 1.0 - p
    lo, hi = 0.0, 1.0
    while _upper_tail(hi, df) > tail:
        lo, hi = hi, hi * 2.0
    # The upper tail falls strictly as t grows, so bisection converges on the root;
    # stop when the bracket is at the resolution of a double.
    while hi - lo > 4 * math.ulp(hi):
        mid = 0.5 * (lo + hi)
        if _upper_tail(mid, df) > tail:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)
