"""The max-throughput search against a simulated system of known capacity."""

from __future__ import annotations

import pytest

from greenflow.api import Probe, WorkloadResult
from greenflow.builtin.protocols import (
    MaxThroughputConfig,
    MaxThroughputProtocol,
    ProportionalityConfig,
    ProportionalityProtocol,
)


def _simulate(
    protocol: MaxThroughputProtocol | ProportionalityProtocol, capacity: float, repetitions: int = 1
) -> list[Probe]:
    probes: list[Probe] = []
    while steps := protocol.next_steps(probes, repetitions):
        for s in steps:
            achieved = min(float(s.value), capacity)
            probes.append(
                Probe(
                    s.value,
                    s.repetition,
                    "finished",
                    WorkloadResult(units=achieved, achieved_rate=achieved),
                )
            )
        assert len(probes) < 200
    return probes


@pytest.mark.parametrize("capacity", [150, 999, 1000, 7300, 123456])
def test_bracket_contains_capacity(capacity: float) -> None:
    """Doubling then bisecting ends with low ≤ capacity/threshold < high within precision."""
    proto = MaxThroughputProtocol(
        MaxThroughputConfig(start=1000, threshold=0.95, precision=0.05, max_runs=40)
    )
    probes = _simulate(proto, capacity)
    c = proto.conclusion(probes)
    low, high = c["max_sustained"], c["first_unsustained"]
    assert low is not None and high is not None
    assert low <= capacity / 0.95 < high
    assert (high - low) / high <= 0.05 + 1 / high  # integer rounding


def test_run_cap_is_respected() -> None:
    """No more probes than max_runs."""
    proto = MaxThroughputProtocol(MaxThroughputConfig(start=1, max_runs=5))
    assert len(_simulate(proto, 1e9)) == 5


def test_steps_are_deterministic() -> None:
    """The same probes give the same next step (resume replays from the store)."""
    proto = MaxThroughputProtocol(MaxThroughputConfig())
    probes = _simulate(proto, 5000)[:3]
    assert proto.next_steps(probes, 1) == proto.next_steps(list(probes), 1)


def test_proportionality_finds_maximum_first() -> None:
    """Without a maximum, the search runs first (repetition −1), then the levels."""
    proto = ProportionalityProtocol(ProportionalityConfig(levels=[50, 100], precision=0.05))
    probes = _simulate(proto, 4000, repetitions=2)
    search = [p for p in probes if p.repetition < 0]
    levels = [p for p in probes if p.repetition >= 0]
    top = proto.maximum(probes)
    assert search and top is not None and top <= 4000 / 0.95
    assert sorted(float(p.value) for p in levels) == sorted([round(top / 2)] * 2 + [top] * 2)
