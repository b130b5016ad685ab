"""Theodolite's scalability metrics as GreenFlow protocols (docs/theodolite.md, "Demand and
capacity"): ``theodolite-demand`` — per load, the fewest instances that meet the SLO — and
``theodolite-capacity`` — per instance count, the highest load that meets it — with the
search strategies Theodolite defines (linear, binary, and the lower-bound restriction), and
the energy per record of every probe on the curve they store.

A value meets the SLO when the median, over the plan's repetitions, of its runs' lag-trend
slopes is below the threshold (Theodolite's ``repetitionAggregation: median``); a failed
run's slope counts as infinite.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import attrs

from greenflow.api import Probe, Protocol, Step
from greenflow.plan.validators import non_empty
from greenflow_theodolite.environment import LAG_TREND
from greenflow_theodolite.slo import verdict

STRATEGIES = ("linear", "binary")


def _strategy(_inst: Any, attribute: attrs.Attribute[Any], value: str) -> None:
    if value not in STRATEGIES:
        raise ValueError(
            f"{attribute.name}: expected one of {', '.join(STRATEGIES)}, got {value!r}"
        )


def _ascending(_inst: Any, attribute: attrs.Attribute[Any], value: list[int]) -> None:
    if any(not isinstance(v, int) or v < 1 for v in value) or sorted(set(value)) != value:
        raise ValueError(
            f"{attribute.name}: expected positive integers in ascending order, no repeats, "
            f"got {value!r}"
        )


def slope_of(probe: Probe) -> float:
    """A probe's lag-trend slope; infinite for a run that failed or reported none."""
    if probe.status != "finished" or probe.result is None:
        return math.inf
    value = probe.result.metrics.get(LAG_TREND)
    return float(value) if value is not None else math.inf


@attrs.frozen
class DemandConfig:
    """``[protocol] type = "theodolite-demand"``."""

    #: The instance counts to choose from, ascending.
    instances: list[int] = attrs.field(validator=[non_empty, _ascending])
    #: linear: from the lowest up; binary: bisect (demand assumed monotonic in instances).
    strategy: str = attrs.field(default="linear", validator=_strategy)
    #: Start each load at the demand of the load before it (Theodolite's LowerBound
    #: restriction: demand assumed never to fall as load rises; write loads ascending).
    lower_bound: bool = True
    #: The lag-trend SLO threshold, records/s (the workload's own is for its verdict line).
    slo_threshold: float = 2000.0


@attrs.frozen
class CapacityConfig:
    """``[protocol] type = "theodolite-capacity"``."""

    #: The loads to choose from, records/s, ascending.
    loads: list[int] = attrs.field(validator=[non_empty, _ascending])
    #: linear: from the lowest up until one fails; binary: bisect (monotonic in load).
    strategy: str = attrs.field(default="linear", validator=_strategy)
    slo_threshold: float = 2000.0


def _next_value(
    candidates: Sequence[int], good: Mapping[int, bool], strategy: str
) -> tuple[int | None, int | None]:
    """(the value to run next, the answer): the answer is the first candidate that is good
    in the candidates' order, assuming every later one is good too (monotonic); ``None``
    answer when none is. Exactly one of the two is not None, or both None (no answer)."""
    if strategy == "linear":
        for v in candidates:
            if v not in good:
                return v, None
            if good[v]:
                return None, v
        return None, None
    lo, hi = 0, len(candidates) - 1
    answer = None
    while lo <= hi:
        mid = (lo + hi) // 2
        v = candidates[mid]
        if v not in good:
            return v, None
        if good[v]:
            answer, hi = v, mid - 1
        else:
            lo = mid + 1
    return None, answer


def _curve(probes: Sequence[Probe], threshold: float) -> list[dict[str, Any]]:
    points = []
    for i, p in enumerate(probes):
        slope = slope_of(p)
        points.append(
            {
                "probe": i,
                "value": p.value,
                "repetition": p.repetition,
                "status": p.status,
                "lag_trend_records_per_s": slope if math.isfinite(slope) else None,
                "achieved": p.result.achieved_rate if p.result is not None else None,
                "met": slope < threshold,
            }
        )
    return sorted(points, key=lambda pt: (int(pt["value"]), pt["repetition"]))


class TheodoliteDemandProtocol(Protocol):
    """Per load (the plan's other axes, loads ascending), the fewest ``instances`` whose
    runs meet the lag-trend SLO (module docstring)."""

    Config: ClassVar[type] = DemandConfig
    config: DemandConfig

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        #: The last point's demand: where the lower-bound restriction starts the next.
        self._floor: int | None = None

    @property
    def axis(self) -> str:
        return "instances"

    def _candidates(self) -> list[int]:
        values = self.config.instances
        if self.config.lower_bound and self._floor is not None:
            return [v for v in values if v >= self._floor]
        return list(values)

    def _good(self, probes: Sequence[Probe], repetitions: int) -> dict[int, bool]:
        slopes: dict[int, list[float]] = {}
        for p in probes:
            slopes.setdefault(int(p.value), []).append(slope_of(p))
        return {
            v: verdict(s, self.config.slo_threshold).met
            for v, s in slopes.items()
            if len(s) >= repetitions
        }

    def next_steps(self, probes: Sequence[Probe], repetitions: int) -> list[Step]:
        self._repetitions = repetitions
        good = self._good(probes, repetitions)
        value, _ = _next_value(self._candidates(), good, self.config.strategy)
        if value is None:
            return []
        done = {p.repetition for p in probes if int(p.value) == value}
        return [Step(value, repetition=r) for r in range(repetitions) if r not in done]

    def conclusion(self, probes: Sequence[Probe]) -> Mapping[str, Any]:
        repetitions = getattr(self, "_repetitions", 1)
        good = self._good(probes, repetitions)
        _, demand = _next_value(self._candidates(), good, self.config.strategy)
        if demand is not None:
            self._floor = demand
        return {
            "axis": self.axis,
            "metric": "demand",
            "demand": demand,
            "strategy": self.config.strategy,
            "lower_bound": self.config.lower_bound,
            "slo_threshold": self.config.slo_threshold,
            "met": {str(v): ok for v, ok in sorted(good.items())},
            "curve": _curve(probes, self.config.slo_threshold),
        }


class TheodoliteCapacityProtocol(Protocol):
    """Per instance count (the plan's other axes), the highest ``loads`` value whose runs
    meet the lag-trend SLO."""

    Config: ClassVar[type] = CapacityConfig
    config: CapacityConfig

    @property
    def axis(self) -> str:
        return "load"

    def _good(self, probes: Sequence[Probe], repetitions: int) -> dict[int, bool]:
        slopes: dict[int, list[float]] = {}
        for p in probes:
            slopes.setdefault(int(p.value), []).append(slope_of(p))
        # In the search's terms a value is "good" when it FAILS: the capacity is just
        # below the first failing load, searched from the lowest up.
        return {
            v: not verdict(s, self.config.slo_threshold).met
            for v, s in slopes.items()
            if len(s) >= repetitions
        }

    def next_steps(self, probes: Sequence[Probe], repetitions: int) -> list[Step]:
        self._repetitions = repetitions
        fails = self._good(probes, repetitions)
        value, _ = _next_value(self.config.loads, fails, self.config.strategy)
        if value is None:
            return []
        done = {p.repetition for p in probes if int(p.value) == value}
        return [Step(value, repetition=r) for r in range(repetitions) if r not in done]

    def conclusion(self, probes: Sequence[Probe]) -> Mapping[str, Any]:
        repetitions = getattr(self, "_repetitions", 1)
        fails = self._good(probes, repetitions)
        _, first_failing = _next_value(self.config.loads, fails, self.config.strategy)
        loads = self.config.loads
        decided = bool(fails) and not self.next_steps(probes, repetitions)
        # Monotonic in load (both strategies assume it): the load just below the first that
        # fails; every load when none fails.
        if not decided:
            capacity = None
        elif first_failing is None:
            capacity = loads[-1]
        else:
            index = loads.index(first_failing)
            capacity = loads[index - 1] if index > 0 else None
        return {
            "axis": self.axis,
            "metric": "capacity",
            "capacity": capacity,
            "first_failing": first_failing,
            "strategy": self.config.strategy,
            "slo_threshold": self.config.slo_threshold,
            "met": {str(v): not f for v, f in sorted(fails.items())},
            "curve": _curve(probes, self.config.slo_threshold),
        }
