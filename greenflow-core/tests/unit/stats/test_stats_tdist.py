"""Student's t quantiles and CDF against a printed table and closed forms."""

from __future__ import annotations

import math

import pytest

from greenflow.stats import betainc, t_cdf, t_quantile

#: t_{0.975, df} for df = 1..30, as printed in statistics textbooks (3 decimals).
T_975 = {
    1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306,
    9: 2.262, 10: 2.228, 11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131,
    16: 2.120, 17: 2.110, 18: 2.101, 19: 2.093, 20: 2.086, 21: 2.080, 22: 2.074,
    23: 2.069, 24: 2.064, 25: 2.060, 26: 2.056, 27: 2.052, 28: 2.048, 29: 2.045,
    30: 2.042,
}  # fmt: skip


@pytest.mark.parametrize("df", sorted(T_975))
def test_quantile_matches_table(df: int) -> None:
    """t_quantile(0.975, df) rounds to the table's value for df = 1..30."""
    assert round(t_quantile(0.975, df), 3) == T_975[df]


def test_quantile_closed_forms() -> None:
    """df = 1 is the Cauchy quantile and df = 2 has a closed form; both match to 1e-12."""
    for p in (0.6, 0.9, 0.975, 0.995):
        assert t_quantile(p, 1) == pytest.approx(math.tan(math.pi * (p - 0.5)), rel=1e-12)
        exact = (2 * p - 1) / math.sqrt(2 * p * (1 - p))
        assert t_quantile(p, 2) == pytest.approx(exact, rel=1e-12)


def test_quantile_large_df_tends_to_normal() -> None:
    """With many degrees of freedom the quantile approaches the normal 1.959964."""
    assert t_quantile(0.975, 120) == pytest.approx(1.980, abs=5e-4)
    assert t_quantile(0.975, 100_000) == pytest.approx(1.959964, abs=1e-4)


def test_quantile_symmetry_and_median() -> None:
    """The lower quantile is minus the upper one, and the median is 0."""
    assert t_quantile(0.025, 7) == -t_quantile(0.975, 7)
    assert t_quantile(0.5, 3) == 0.0


@pytest.mark.parametrize("df", [1, 2, 5, 29, 300])
def test_cdf_inverts_quantile(df: int) -> None:
    """t_cdf(t_quantile(p)) gives p back."""
    for p in (0.05, 0.5, 0.9, 0.975, 0.999):
        assert t_cdf(t_quantile(p, df), df) == pytest.approx(p, abs=1e-12)


def test_betainc_known_values() -> None:
    """I_x(1, 1) = x, I_x(a, 1) = x^a, and I_½(a, a) = ½."""
    assert betainc(1, 1, 0.3) == pytest.approx(0.3, rel=1e-14)
    assert betainc(3, 1, 0.4) == pytest.approx(0.4**3, rel=1e-13)
    assert betainc(7.5, 7.5, 0.5) == pytest.approx(0.5, rel=1e-13)
    assert betainc(2, 3, 0.0) == 0.0 and betainc(2, 3, 1.0) == 1.0


def test_invalid_arguments() -> None:
    """Out-of-range p, df, a, b or x raise ValueError."""
    for call in (
        lambda: t_quantile(1.0, 3),
        lambda: t_quantile(0.0, 3),
        lambda: t_quantile(0.9, 0),
        lambda: t_cdf(1.0, -1),
        lambda: betainc(0, 1, 0.5),
        lambda: betainc(1, 1, 1.5),
    ):
        with pytest.raises(ValueError):
            call()
