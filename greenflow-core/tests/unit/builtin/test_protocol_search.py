"""The max-throughput search and its confirmations against simulated systems of known
capacity, including one that bursts above the asked rate once saturated."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from greenflow.api import Metric, Probe, WorkloadResult
from greenflow.builtin.protocols import (
    SCHEDULE_LAG_TREND,
    MaxThroughputConfig,
    MaxThroughputProtocol,
    ProportionalityConfig,
    ProportionalityProtocol,
    add_run_figures,
)

System = Callable[[float, int], WorkloadResult]


def capped(capacity: float) -> System:
    """Achieves min(asked, capacity); reports nothing else."""

    def run(asked: float, _rep: int) -> WorkloadResult:
        achieved = min(asked, capacity)
        return WorkloadResult(units=achieved, achieved_rate=achieved)

    return run


def catching_up(capacity: float) -> System:
    """Past capacity its generator bursts to catch up: achieved 1.12 × asked and p99 60×
    what it is at low load, as a saturated Kafka with ProducerPerformance did (issue 17)."""

    def run(asked: float, _rep: int) -> WorkloadResult:
        if asked <= capacity:
            return WorkloadResult(
                units=asked, achieved_rate=asked, latency_ms={"p99": 5 + 10 * asked / capacity}
            )
        return WorkloadResult(units=asked, achieved_rate=1.12 * asked, latency_ms={"p99": 600.0})

    return run


def _simulate(
    protocol: MaxThroughputProtocol | ProportionalityProtocol,
    system: System,
    repetitions: int = 1,
) -> list[Probe]:
    probes: list[Probe] = []
    while steps := protocol.next_steps(probes, repetitions):
        for s in steps:
            result = system(float(s.value), s.repetition)
            probes.append(Probe(s.value, s.repetition, "finished", result))
        assert len(probes) < 200
    return probes


@pytest.mark.parametrize("capacity", [150, 999, 1000, 7300, 123456])
def test_bracket_contains_capacity(capacity: float) -> None:
    """Doubling then bisecting ends with low ≤ capacity/(1 − tolerance) < high within
    precision, and the concluded value is confirmed."""
    proto = MaxThroughputProtocol(MaxThroughputConfig(start=1000, precision=0.05, max_runs=40))
    c = proto.conclusion(_simulate(proto, capped(capacity)))
    low, high = c["max_sustained"], c["first_unsustained"]
    assert low is not None and high is not None and c["confirmed"]
    assert low <= capacity / 0.95 < high
    assert (high - low) / high <= 0.05 + 1 / high  # integer rounding


@pytest.mark.parametrize("capacity", [3000, 41000])
def test_catch_up_bursts_are_not_capacity(capacity: float) -> None:
    """A system whose achieved rate overshoots the asked one once saturated is concluded at
    its capacity, not at the overshooting loads."""
    proto = MaxThroughputProtocol(MaxThroughputConfig(start=1000, max_runs=30))
    probes = _simulate(proto, catching_up(capacity))
    c = proto.conclusion(probes)
    assert c["max_sustained"] is not None
    assert 0.9 * capacity <= c["max_sustained"] <= capacity
    over = [pt for pt in c["curve"] if float(pt["value"]) > capacity]
    assert over and all(not pt["sustained"] for pt in over)
    assert all({"above-asked", "latency"} <= {f["reason"] for f in pt["failures"]} for pt in over)


def test_confirmations_run_at_the_concluded_value() -> None:
    """max(3, repetitions) confirmations (repetitions 1…n) run at the concluded value and
    all passed; the run cap counts search probes only."""
    proto = MaxThroughputProtocol(MaxThroughputConfig(start=1000, max_runs=6))
    probes = _simulate(proto, capped(5000), repetitions=4)
    c = proto.conclusion(probes)
    top = c["max_sustained"]
    assert sum(p.repetition == 0 for p in probes) <= 6
    assert sorted(p.repetition for p in probes if float(p.value) == top) == [0, 1, 2, 3, 4]
    assert c["confirmation"]["runs"] == 4 and c["confirmation"]["wanted"] == 4
    assert c["confirmation"]["achieved_ci_low"] <= top <= c["confirmation"]["achieved_ci_high"]


def test_a_failed_confirmation_steps_the_search_down() -> None:
    """A value whose second confirmation falls short is not sustained: the search goes on
    below it and concludes a lower value whose confirmations all passed."""

    def flaky(asked: float, rep: int) -> WorkloadResult:
        # Sustains up to 5000, except that at 4000 and above a confirmation (rep 2) fails.
        achieved = min(asked, 5000) * (0.8 if rep == 2 and asked >= 4000 else 1.0)
        return WorkloadResult(units=achieved, achieved_rate=achieved)

    proto = MaxThroughputProtocol(MaxThroughputConfig(start=1000, max_runs=20))
    probes = _simulate(proto, flaky)
    c = proto.conclusion(probes)
    assert c["confirmed"] and c["max_sustained"] < 4000
    assert any(
        pt["role"] == "confirmation" and not pt["sustained"] and float(pt["value"]) >= 4000
        for pt in c["curve"]
    )
    at_max = [p for p in probes if float(p.value) == c["max_sustained"]]
    assert sorted(p.repetition for p in at_max) == [0, 1, 2, 3]
    assert all((p.result.achieved_rate or 0) == float(p.value) for p in at_max if p.result)


def stalls_once_after_overload(capacity: float, collapse: float = 0.15) -> System:
    """Like ``capped``, but the first probe within capacity that follows an overload probe
    stalls (achieves ``collapse`` of its asked rate), as one local broker did after the
    protocol's overload probes (benchmarks/README.md, issue 17); its recheck does not.
    Without the recheck that stall would bound the search at the stalled value."""
    state = {"overloaded": False, "stalled": False}

    def run(asked: float, rep: int) -> WorkloadResult:
        if asked > capacity:
            state["overloaded"] = True
        elif state["overloaded"] and not state["stalled"]:
            state["stalled"] = True
            return WorkloadResult(units=asked * collapse, achieved_rate=asked * collapse)
        achieved = min(asked, capacity)
        return WorkloadResult(units=achieved, achieved_rate=achieved)

    return run


def test_a_stall_below_a_delivered_rate_is_rechecked() -> None:
    """One failed search probe at a rate the system already delivered is run again (a
    recheck, repetition −1); its pass keeps the search near capacity instead of ending it
    at half of it."""
    proto = MaxThroughputProtocol(MaxThroughputConfig(start=1000, max_runs=20))
    probes = _simulate(proto, stalls_once_after_overload(6000))
    c = proto.conclusion(probes)
    assert c["confirmed"] and 0.95 * 6000 <= c["max_sustained"] <= 6000 / 0.95
    assert c["rechecks"] == 1
    (recheck,) = [pt for pt in c["curve"] if pt["role"] == "recheck"]
    assert recheck["repetition"] == -1 and recheck["sustained"]
    stalled = [
        pt
        for pt in c["curve"]
        if pt["role"] == "search" and pt["value"] == recheck["value"] and not pt["sustained"]
    ]
    assert stalled and {f["reason"] for f in stalled[0]["failures"]} == {"below-asked"}


def test_a_failure_above_every_delivered_rate_is_not_rechecked() -> None:
    """A probe that fails above anything the system achieved is its capacity showing: no
    recheck (a capped system never gets one)."""
    proto = MaxThroughputProtocol(MaxThroughputConfig(start=1000, max_runs=20))
    probes = _simulate(proto, capped(7300))
    assert proto.conclusion(probes)["rechecks"] == 0
    assert all(p.repetition >= 0 for p in probes)


def test_a_failed_recheck_confirms_the_failure() -> None:
    """A value whose search probe and recheck both fall short is unsustained: the search
    ends below it, and the value is not run a third time."""

    def capped_short(asked: float, _rep: int) -> WorkloadResult:
        # Sustains up to 3000, delivers 2950 above: 3125 falls short (0.944) although a
        # probe delivered 3000 ≥ 3125 × 0.95, so 3125 is rechecked, and fails again.
        achieved = asked if asked <= 3000 else 2950.0
        return WorkloadResult(units=achieved, achieved_rate=achieved)

    proto = MaxThroughputProtocol(MaxThroughputConfig(start=1000, max_runs=20))
    probes = _simulate(proto, capped_short)
    c = proto.conclusion(probes)
    assert [p.repetition for p in probes if float(p.value) == 3125] == [0, -1]
    assert c["rechecks"] == 1 and c["first_unsustained"] == 3125
    assert c["confirmed"] and c["max_sustained"] == 3000


def test_latency_failures_are_not_rechecked() -> None:
    """A probe that kept the rate but not the latency failed on what capacity looks like
    (the knee): no recheck, even where a higher rate was delivered."""

    def knee(asked: float, _rep: int) -> WorkloadResult:
        p99 = 5.0 if asked <= 3000 else 900.0
        return WorkloadResult(units=asked, achieved_rate=asked, latency_ms={"p99": p99})

    proto = MaxThroughputProtocol(MaxThroughputConfig(start=1000, max_runs=20))
    probes = _simulate(proto, knee)
    c = proto.conclusion(probes)
    assert c["rechecks"] == 0 and c["confirmed"] and 2850 <= c["max_sustained"] <= 3000


def test_nothing_sustained_concludes_none() -> None:
    """A system that sustains nothing ends with no maximum and no confirmation."""

    def broken(asked: float, _rep: int) -> WorkloadResult:
        return WorkloadResult(units=1, achieved_rate=asked * 0.5)

    proto = MaxThroughputProtocol(MaxThroughputConfig(start=8))
    c = proto.conclusion(_simulate(proto, broken))
    assert c["max_sustained"] is None and not c["confirmed"] and c["confirmation"] is None


def test_run_cap_is_respected() -> None:
    """No more search probes than max_runs; the confirmations come on top."""
    proto = MaxThroughputProtocol(MaxThroughputConfig(start=1, max_runs=5))
    probes = _simulate(proto, capped(1e9))
    assert sum(p.repetition == 0 for p in probes) == 5
    assert len(probes) == 5 + 3


def test_schedule_lag_alone_fails_a_probe() -> None:
    """A generator that fell behind its schedule makes the probe unsustained even when the
    achieved rate looks right."""

    def lagging(asked: float, _rep: int) -> WorkloadResult:
        lag = 0.0 if asked <= 2000 else 0.3
        return WorkloadResult(units=asked, achieved_rate=asked, metrics={SCHEDULE_LAG_TREND: lag})

    proto = MaxThroughputProtocol(MaxThroughputConfig(start=1000))
    c = proto.conclusion(_simulate(proto, lagging))
    assert c["max_sustained"] is not None and c["max_sustained"] <= 2000


def test_steps_are_deterministic() -> None:
    """The same probes give the same next step (resume replays from the store)."""
    proto = MaxThroughputProtocol(MaxThroughputConfig())
    probes = _simulate(proto, capped(5000))[:3]
    assert proto.next_steps(probes, 1) == proto.next_steps(list(probes), 1)


def test_curve_has_every_probe_with_its_verdict() -> None:
    """The conclusion's curve lists every probe by asked value, with achieved, ratio, p99,
    verdict and failure reasons, and its index among the probes."""
    proto = MaxThroughputProtocol(MaxThroughputConfig(start=1000))
    probes = _simulate(proto, catching_up(3000))
    points = proto.conclusion(probes)["curve"]
    assert len(points) == len(probes)
    assert [float(pt["value"]) for pt in points] == sorted(float(pt["value"]) for pt in points)
    for pt in points:
        p = probes[pt["probe"]]
        assert p.value == pt["value"] and p.repetition == pt["repetition"]
        assert pt["achieved"] == p.result.achieved_rate if p.result else True
        assert pt["sustained"] == (not pt["failures"])


def test_run_figures_join_the_curve() -> None:
    """The runner's run ids and J per unit (host and service scope, one method) join each
    curve point by its probe index."""
    proto = MaxThroughputProtocol(MaxThroughputConfig(start=1000, max_runs=3))
    probes = _simulate(proto, capped(1500))
    ids = [f"run{i}" for i in range(len(probes))]

    def metrics(run_id: str) -> list[Metric]:
        i = float(run_id[3:])
        return [
            Metric(
                "energy_per_message_joules", i, "joules", "rapl", {"host": "a", "scope": "host"}
            ),
            Metric(
                "energy_per_message_joules", 1, "joules", "rapl", {"host": "b", "scope": "host"}
            ),
            # Services' figures are the host's split by CPU share, under their own method.
            Metric(
                "energy_per_message_joules",
                i / 2,
                "joules",
                "rapl+cpu-share",
                {"scope": "service", "group": "service:kafka"},
            ),
            Metric("energy_per_mib_joules", 99, "joules", "rapl", {"scope": "host"}),
        ]

    out = add_run_figures(proto.conclusion(probes), ids, metrics)
    for pt in out["curve"]:
        i = pt["probe"]
        assert pt["run_id"] == f"run{i}"
        assert pt["energy_per_unit_joules"] == i + 1
        assert pt["service_energy_per_unit_joules"] == i / 2
        assert pt["energy_method"] == "rapl"
        assert pt["service_energy_method"] == "rapl+cpu-share"


def test_proportionality_finds_maximum_first() -> None:
    """Without a maximum, the search (repetition −1) and its confirmations (−2, −3, −4)
    run first, then the levels."""
    proto = ProportionalityProtocol(ProportionalityConfig(levels=[50, 100], precision=0.05))
    probes = _simulate(proto, capped(4000), repetitions=2)
    search = [p for p in probes if p.repetition == -1]
    levels = [p for p in probes if p.repetition >= 0]
    top = proto.maximum(probes, 2)
    assert search and top is not None and top <= 4000 / 0.95
    assert sorted(p.repetition for p in probes if p.repetition < -1 and p.value == top) == [
        -4,
        -3,
        -2,
    ]
    assert sorted(float(p.value) for p in levels) == sorted([round(top / 2)] * 2 + [top] * 2)
    c = proto.conclusion(probes)
    assert c["maximum"] == top and c["search"]["confirmed"]
    assert {pt["role"] for pt in c["curve"]} == {"search", "confirmation", "level"}


def test_proportionality_rechecks_below_its_confirmations() -> None:
    """The proportionality search's recheck takes the repetition after its confirmations'
    (−2 … −n−1): −n−2, never a level's or a confirmation's."""
    proto = ProportionalityProtocol(ProportionalityConfig(levels=[100], precision=0.05))
    probes = _simulate(proto, stalls_once_after_overload(6000), repetitions=4)
    rechecks = [p for p in probes if p.repetition == -6]
    assert len(rechecks) == 1
    c = proto.conclusion(probes)
    assert c["search"]["rechecks"] == 1 and c["search"]["confirmed"]
    assert {pt["role"] for pt in c["curve"]} == {"search", "recheck", "confirmation", "level"}
