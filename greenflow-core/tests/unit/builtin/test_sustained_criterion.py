"""The sustained-rate criterion: each reason a probe fails, its p99 bound, and what it
leaves unchecked when a workload does not report the figures."""

from __future__ import annotations

from collections.abc import Mapping

import cattrs
import pytest

from greenflow.api import Probe, WorkloadResult
from greenflow.builtin.protocols import (
    ABOVE,
    BEHIND,
    BELOW,
    FAILED,
    LAG,
    LAG_TREND,
    LATENCY,
    NO_RATE,
    REASONS,
    SCHEDULE_LAG_TREND,
    Criterion,
    MaxThroughputConfig,
    reference_p99,
    sustained,
)
from greenflow.plan.converter import converter


def probe(
    asked: float = 1000,
    achieved: float | None = 1000,
    *,
    p99: float | None = None,
    metrics: Mapping[str, float] | None = None,
    status: str = "finished",
    rep: int = 0,
) -> Probe:
    latency = {"p99": p99} if p99 is not None else {}
    result = WorkloadResult(
        units=achieved or 0, achieved_rate=achieved, latency_ms=latency, metrics=metrics or {}
    )
    return Probe(asked, rep, status, result, "producer-0 exited with 1\nlog" if status else None)


def reasons(p: Probe, bound: float | None = None, **keys: float) -> list[str]:
    return Criterion(**keys).judge(p, bound).reasons  # type: ignore[arg-type]


def test_a_probe_on_every_count_sustains() -> None:
    """Achieved = asked, p99 within the bound, on schedule, lag flat: sustained, with every
    part checked."""
    p = probe(p99=8, metrics={SCHEDULE_LAG_TREND: 0.0, LAG_TREND: 1.0})
    v = Criterion().judge(p, 50.0)
    assert v.sustained and v.failures == ()
    assert v.checked == ("ratio", "latency", "schedule", "lag")


def test_failed_run() -> None:
    """A run that did not finish fails with its error's first line, whatever its figures."""
    v = Criterion().judge(probe(status="failed"), None)
    assert v.reasons == [FAILED] and "producer-0 exited with 1" in v.failures[0].detail
    assert "log" not in v.failures[0].detail


def test_no_rate() -> None:
    """A finished run without an achieved rate cannot show it sustained anything."""
    assert reasons(probe(achieved=None)) == [NO_RATE]


@pytest.mark.parametrize(
    ("achieved", "expected"), [(949, [BELOW]), (950, []), (1050, []), (1051, [ABOVE])]
)
def test_achieved_within_tolerance_on_both_sides(achieved: float, expected: list[str]) -> None:
    """Achieved ÷ asked must lie in [1 − tolerance, 1 + tolerance]: above it is a backlog
    being drained, not capacity."""
    assert reasons(probe(achieved=achieved)) == expected


def test_overshoot_detail_says_backlog() -> None:
    """The overshoot's reason says what it means."""
    (failure,) = Criterion().judge(probe(achieved=1140), None).failures
    assert failure.reason == ABOVE and "backlog" in failure.detail and "1.140" in failure.detail


def test_latency_above_the_bound() -> None:
    """p99 above the bound fails; at the bound passes; NaN fails."""
    assert reasons(probe(p99=50.1), 50.0) == [LATENCY]
    assert reasons(probe(p99=50.0), 50.0) == []
    assert reasons(probe(p99=float("nan")), 50.0) == [LATENCY]


def test_behind_schedule() -> None:
    """A generator falling behind its schedule faster than max_schedule_lag_trend (unset:
    the tolerance) fails."""
    assert reasons(probe(metrics={SCHEDULE_LAG_TREND: 0.051})) == [BEHIND]
    assert reasons(probe(metrics={SCHEDULE_LAG_TREND: 0.05})) == []
    assert reasons(probe(metrics={SCHEDULE_LAG_TREND: 0.03}), tolerance=0.02) == [BEHIND]
    assert reasons(probe(metrics={SCHEDULE_LAG_TREND: 0.021}), max_schedule_lag_trend=0.02) == [
        BEHIND
    ]
    assert reasons(probe(metrics={SCHEDULE_LAG_TREND: 0.5}), max_schedule_lag_trend=0.6) == []


def test_lag_growing_relative_to_asked() -> None:
    """Consumer lag growing faster than max_lag_trend (unset: the tolerance) × asked,
    messages per second, fails; a shrinking lag never does."""
    assert reasons(probe(asked=1000, metrics={LAG_TREND: 51.0})) == [LAG]
    assert reasons(probe(asked=1000, metrics={LAG_TREND: 50.0})) == []
    assert reasons(probe(asked=1000, metrics={LAG_TREND: 21.0}), max_lag_trend=0.02) == [LAG]
    assert reasons(probe(asked=1000, metrics={LAG_TREND: -300.0})) == []


def test_every_failure_at_once() -> None:
    """Each broken part adds its own reason, in the criterion's order."""
    p = probe(achieved=1200, p99=900, metrics={SCHEDULE_LAG_TREND: 0.3, LAG_TREND: 500})
    assert reasons(p, 50.0) == [ABOVE, LATENCY, BEHIND, LAG]
    assert set(REASONS) >= {ABOVE, LATENCY, BEHIND, LAG, BELOW, FAILED, NO_RATE}


def test_parts_without_figures_are_not_checked() -> None:
    """A workload reporting only a rate is judged on the rate alone, and the verdict says so."""
    v = Criterion().judge(probe(p99=10_000), None)
    assert v.sustained and v.checked == ("ratio",)


def test_p99_bound_from_the_lowest_probed_load() -> None:
    """The bound is p99_factor × the p99 of the lowest probed load (the median there), at
    least p99_floor_ms; max_p99_ms replaces it."""
    probes = [
        probe(4000, 4000, p99=30),
        probe(1000, 1000, p99=4, rep=1),
        probe(1000, 1000, p99=3, rep=0),
        probe(1000, 1000, p99=90, rep=2),
        probe(500, 100, p99=None),
        probe(250, 250, p99=99, status="failed"),
    ]
    assert reference_p99(probes) == 4
    assert Criterion().p99_bound(probes) == 200
    assert Criterion(p99_factor=4).p99_bound(probes) == 16
    assert Criterion(p99_factor=4, p99_floor_ms=20).p99_bound(probes) == 20
    assert Criterion(max_p99_ms=7).p99_bound(probes) == 7
    assert Criterion().p99_bound([probe(1000, 1000)]) is None


def test_sustained_is_the_verdict() -> None:
    """sustained() is the default criterion's verdict."""
    assert sustained(probe())
    assert not sustained(probe(status="failed"))
    assert not sustained(probe(achieved=800))
    assert not sustained(probe(p99=100), p99_bound_ms=10)


def test_plan_keys_reach_the_criterion() -> None:
    """The protocol's plan keys set the criterion; unknown keys (the old threshold) are refused."""
    config = converter.structure(
        {"tolerance": 0.1, "p99_factor": 5, "max_p99_ms": 200, "max_lag_trend": 0.05},
        MaxThroughputConfig,
    )
    assert config.criterion == Criterion(
        tolerance=0.1, p99_factor=5, max_p99_ms=200, max_lag_trend=0.05
    )
    with pytest.raises(cattrs.ClassValidationError) as err:
        converter.structure({"threshold": 0.95}, MaxThroughputConfig)
    assert "threshold" in " ".join(cattrs.transform_error(err.value))
