"""theodolite-demand and theodolite-capacity against a simulated system of known
scalability: each instance processes 1,000 records/s, and the consumer lag grows by
whatever the instances cannot take (slope = load − 1000 × instances, at least 0). Demand
is then ceil(load / 1000) instances, and capacity 1000 × instances records/s — exactly
what Theodolite's definitions give."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest

from greenflow.api import Probe, WorkloadResult
from greenflow_theodolite.environment import LAG_TREND
from greenflow_theodolite.protocols import (
    CapacityConfig,
    DemandConfig,
    TheodoliteCapacityProtocol,
    TheodoliteDemandProtocol,
)

PER_INSTANCE = 1000.0


def slope(load: float, instances: int) -> float:
    return max(0.0, load - PER_INSTANCE * instances)


def _run(
    protocol: TheodoliteDemandProtocol | TheodoliteCapacityProtocol,
    result: Callable[[int, int], WorkloadResult | None],
    repetitions: int = 1,
) -> list[Probe]:
    probes: list[Probe] = []
    while steps := protocol.next_steps(probes, repetitions):
        for s in steps:
            r = result(int(s.value), s.repetition)
            probes.append(Probe(s.value, s.repetition, "finished" if r else "failed", r))
        assert len(probes) < 100
    return probes


def _demand_system(load: float) -> Callable[[int, int], WorkloadResult]:
    def run(instances: int, _rep: int) -> WorkloadResult:
        return WorkloadResult(units=load, metrics={LAG_TREND: slope(load, instances) * 10})

    return run


@pytest.mark.parametrize("strategy", ["linear", "binary"])
@pytest.mark.parametrize("load", [500, 2500, 7900])
def test_demand_is_the_fewest_instances_that_keep_up(strategy: str, load: int) -> None:
    """The SLO (slope < 2000) holds from ceil(load / 1000) instances: that is the demand,
    whichever search."""
    proto = TheodoliteDemandProtocol(
        DemandConfig(instances=list(range(1, 11)), strategy=strategy, lower_bound=False)
    )
    probes = _run(proto, _demand_system(load))
    c = proto.conclusion(probes)
    assert c["demand"] == math.ceil(load / PER_INSTANCE)
    assert all(pt["met"] == (pt["lag_trend_records_per_s"] < 2000) for pt in c["curve"])


def test_binary_search_tries_fewer_values_than_linear() -> None:
    config = {"instances": list(range(1, 33)), "lower_bound": False}
    linear = TheodoliteDemandProtocol(DemandConfig(**config, strategy="linear"))
    binary = TheodoliteDemandProtocol(DemandConfig(**config, strategy="binary"))
    n_linear = len(_run(linear, _demand_system(25_000)))
    n_binary = len(_run(binary, _demand_system(25_000)))
    assert n_binary < n_linear and n_linear == 25


def test_lower_bound_starts_each_load_at_the_last_demand() -> None:
    """Loads ascending; with the restriction, the next load's search starts at the last
    demand (3), so instances 1 and 2 are not tried again."""
    proto = TheodoliteDemandProtocol(DemandConfig(instances=list(range(1, 11))))
    first = _run(proto, _demand_system(2500))
    assert proto.conclusion(first)["demand"] == 3
    second = _run(proto, _demand_system(4500))
    assert proto.conclusion(second)["demand"] == 5
    assert min(int(p.value) for p in second) == 3


def test_the_median_over_repetitions_decides() -> None:
    """One repetition of three misses the SLO (a slow run): the median still meets it."""

    def flaky(instances: int, rep: int) -> WorkloadResult:
        base = slope(2500, instances) * 10
        return WorkloadResult(units=1, metrics={LAG_TREND: 50_000.0 if rep == 1 else base})

    proto = TheodoliteDemandProtocol(DemandConfig(instances=list(range(1, 6)), lower_bound=False))
    probes = _run(proto, flaky, repetitions=3)
    assert proto.conclusion(probes)["demand"] == 3
    assert {p.repetition for p in probes if p.value == 3} == {0, 1, 2}


def test_failed_runs_do_not_meet_the_slo() -> None:
    def crashing(instances: int, _rep: int) -> WorkloadResult | None:
        return None if instances < 4 else WorkloadResult(units=1, metrics={LAG_TREND: 0.0})

    proto = TheodoliteDemandProtocol(DemandConfig(instances=[1, 2, 4, 8], lower_bound=False))
    assert proto.conclusion(_run(proto, crashing))["demand"] == 4


def test_no_instance_count_suffices_concludes_none() -> None:
    proto = TheodoliteDemandProtocol(DemandConfig(instances=[1, 2], lower_bound=False))
    c = proto.conclusion(_run(proto, _demand_system(9000)))
    assert c["demand"] is None and c["met"] == {"1": False, "2": False}


@pytest.mark.parametrize("strategy", ["linear", "binary"])
@pytest.mark.parametrize("instances", [1, 3])
def test_capacity_is_the_highest_load_that_keeps_up(strategy: str, instances: int) -> None:
    """Loads 500, 1000, ... 6000: the SLO holds up to 1000 × instances + 199 (slope × 10 <
    2000): capacity is the highest listed load at or below it."""

    def run(load: int, _rep: int) -> WorkloadResult:
        return WorkloadResult(units=load, metrics={LAG_TREND: slope(load, instances) * 10})

    loads = list(range(500, 6001, 500))
    proto = TheodoliteCapacityProtocol(CapacityConfig(loads=loads, strategy=strategy))
    c = proto.conclusion(_run(proto, run))
    assert c["capacity"] == 1000 * instances
    assert c["first_failing"] == 1000 * instances + 500


def test_bad_protocol_keys_are_refused() -> None:
    with pytest.raises(ValueError, match="ascending"):
        DemandConfig(instances=[2, 1])
    with pytest.raises(ValueError, match="strategy"):
        CapacityConfig(loads=[1000], strategy="random")
