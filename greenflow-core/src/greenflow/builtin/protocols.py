"""Built-in protocols: ``max-throughput``, ``proportionality`` and ``idle``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import attrs

from greenflow.api import Probe, Protocol, Step
from greenflow.plan.durations import Duration
from greenflow.plan.validators import fraction as _fraction
from greenflow.plan.validators import positive as _positive


def sustained(probe: Probe, threshold: float) -> bool:
    """A probe sustained its load when its run finished with achieved/asked ≥ threshold.

    A failed run (e.g. kafka-ingest failing for achieved far below asked) did not."""
    ratio = probe.ratio
    return probe.status == "finished" and ratio is not None and ratio >= threshold


@attrs.frozen
class MaxThroughputConfig:
    """``[protocol] type = "max-throughput"``."""

    #: The workload parameter to search (a rate: achieved is compared with it).
    axis: str = "load"
    #: First value tried.
    start: float = attrs.field(default=1000.0, validator=_positive)
    #: Sustained means achieved ≥ threshold × asked.
    threshold: float = attrs.field(default=0.95, validator=_fraction)
    #: Stop bisecting when (high − low) / high ≤ precision.
    precision: float = attrs.field(default=0.05, validator=_fraction)
    #: At most this many probes per point of the other axes.
    max_runs: int = attrs.field(default=20, validator=_positive)
    #: Never ask for more than this (None: no ceiling).
    ceiling: float | None = None
    #: Round asked values to integers (rates in messages per second).
    integer: bool = True


def search_bracket(probes: Sequence[Probe], threshold: float) -> tuple[float | None, float | None]:
    """(highest sustained value, lowest unsustained value above it) among the probes."""
    ok = [float(p.value) for p in probes if sustained(p, threshold)]
    low = max(ok) if ok else None
    bad = [
        float(p.value)
        for p in probes
        if not sustained(p, threshold) and (low is None or float(p.value) > low)
    ]
    return low, (min(bad) if bad else None)


class MaxThroughputProtocol(Protocol):
    """Find the highest load the system sustains: double from ``start`` until a probe
    fails, then bisect the bracket until it is within ``precision``, with a run cap.
    If even ``start`` fails, halve until a probe succeeds. Every probe is a stored run."""

    Config: ClassVar[type] = MaxThroughputConfig
    config: MaxThroughputConfig

    @property
    def axis(self) -> str:
        return self.config.axis

    def _value(self, v: float) -> float | int:
        if self.config.ceiling is not None:
            v = min(v, self.config.ceiling)
        return max(1, round(v)) if self.config.integer else v

    def next_steps(self, probes: Sequence[Probe], repetitions: int) -> list[Step]:
        c = self.config
        if len(probes) >= c.max_runs:
            return []
        if not probes:
            return [Step(self._value(c.start))]
        low, high = search_bracket(probes, c.threshold)
        tried = {float(p.value) for p in probes}
        if high is None:  # everything so far sustained: double
            nxt = self._value(2 * (low or c.start))
        elif low is None:  # nothing sustained yet: halve below the lowest failure
            nxt = self._value(high / 2)
            if nxt >= high:
                return []
        else:
            if (high - low) / high <= c.precision:
                return []
            nxt = self._value((low + high) / 2)
        return [] if float(nxt) in tried else [Step(nxt)]

    def conclusion(self, probes: Sequence[Probe]) -> Mapping[str, Any]:
        low, high = search_bracket(probes, self.config.threshold)
        return {
            "axis": self.axis,
            "max_sustained": low,
            "first_unsustained": high,
            "threshold": self.config.threshold,
            "probes": len(probes),
        }


@attrs.frozen
class ProportionalityConfig:
    """``[protocol] type = "proportionality"``: loads as percentages of a maximum."""

    axis: str = "load"
    #: The 100 % load; None: found first with a max-throughput search (its settings below).
    maximum: float | None = None
    #: Percentages of the maximum to run, each `repetitions` times.
    levels: list[float] = attrs.field(
        factory=lambda: [10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0, 100.0]
    )
    start: float = 1000.0
    threshold: float = 0.95
    precision: float = 0.05
    max_runs: int = 20
    integer: bool = True


class ProportionalityProtocol(Protocol):
    """Energy-proportionality curves: runs at each level (% of the maximum), repeated.

    Without ``maximum`` the maximum is found first by a ``max-throughput`` search (its
    probes are stored runs too, told apart by repetition −1)."""

    Config: ClassVar[type] = ProportionalityConfig
    config: ProportionalityConfig

    @property
    def axis(self) -> str:
        return self.config.axis

    def _search(self) -> MaxThroughputProtocol:
        c = self.config
        return MaxThroughputProtocol(
            MaxThroughputConfig(
                axis=c.axis,
                start=c.start,
                threshold=c.threshold,
                precision=c.precision,
                max_runs=c.max_runs,
                integer=c.integer,
            )
        )

    def maximum(self, probes: Sequence[Probe]) -> float | None:
        if self.config.maximum is not None:
            return self.config.maximum
        search = [p for p in probes if p.repetition < 0]
        steps = self._search().next_steps(search, 1)
        if steps:
            return None
        low, _ = search_bracket(search, self.config.threshold)
        return low

    def next_steps(self, probes: Sequence[Probe], repetitions: int) -> list[Step]:
        if self.config.maximum is None:
            search = [p for p in probes if p.repetition < 0]
            steps = self._search().next_steps(search, 1)
            if steps:
                return [Step(s.value, repetition=-1) for s in steps]
        top = self.maximum(probes)
        if top is None:
            return []  # the search found no sustainable load
        done = {(float(p.value), p.repetition) for p in probes if p.repetition >= 0}
        out = []
        for rep in range(repetitions):
            for level in self.config.levels:
                v: float | int = top * level / 100
                v = max(1, round(v)) if self.config.integer else v
                if (float(v), rep) not in done:
                    out.append(Step(v, repetition=rep))
        return out

    def conclusion(self, probes: Sequence[Probe]) -> Mapping[str, Any]:
        return {
            "axis": self.axis,
            "maximum": self.maximum(probes),
            "levels": list(self.config.levels),
            "runs": sum(p.repetition >= 0 for p in probes),
        }


@attrs.frozen
class IdleConfig:
    """``[protocol] type = "idle"``: services up, no load, MEASURE for ``duration``."""

    duration: Duration = attrs.field(default=Duration(30), validator=_positive)


class IdleProtocol(Protocol):
    """One run per repetition with the services up and no load at all."""

    Config: ClassVar[type] = IdleConfig
    config: IdleConfig

    @property
    def axis(self) -> None:
        return None

    def next_steps(self, probes: Sequence[Probe], repetitions: int) -> list[Step]:
        done = {p.repetition for p in probes}
        return [Step(None, repetition=r, idle=True) for r in range(repetitions) if r not in done]

    def conclusion(self, probes: Sequence[Probe]) -> Mapping[str, Any]:
        return {"idle_runs": len(probes)}
