"""The Protocol interface: which runs to do next, decided from the runs already done."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import attrs

from greenflow.api.context import WorkloadResult


@attrs.frozen
class Probe:
    """One finished run as a protocol sees it.

    ``value`` is the protocol axis's value (e.g. the asked load), ``status`` the run's
    (``finished``, ``failed``, ``aborted``), ``result`` what the workload reported when it
    finished. :attr:`ratio` is achieved rate ÷ asked value, the usual test of "sustained".
    """

    value: Any
    repetition: int
    status: str
    result: WorkloadResult | None = None
    error: str | None = None

    @property
    def ratio(self) -> float | None:
        if self.result is None or self.result.achieved_rate is None or not self.value:
            return None
        return float(self.result.achieved_rate) / float(self.value)


@attrs.frozen
class Step:
    """What to run next: axis values (with their repetition) or, with ``idle``, a run
    that measures with services up and no load at all."""

    value: Any = None
    repetition: int = 0
    idle: bool = False


class Protocol(ABC):
    """Decides the runs of an experiment adaptively (``[protocol]`` in a plan).

    The runner calls :meth:`next_steps` with every probe so far (for one point of the
    plan's other sweep axes) and runs what it returns, until it returns an empty list.
    Probes are ordinary stored runs: their identity includes the axis value, so re-running
    a plan replays finished probes from the store instead of running them again — which
    requires :meth:`next_steps` to be deterministic given the probes.
    """

    Config: ClassVar[type]

    def __init__(self, config: Any) -> None:
        self.config = config

    @property
    @abstractmethod
    def axis(self) -> str | None:
        """**REQUIRED.** The workload parameter the protocol sets (e.g. ``"load"``), or
        None when it sets none (``idle``)."""

    @abstractmethod
    def next_steps(self, probes: Sequence[Probe], repetitions: int) -> list[Step]:
        """**REQUIRED.** The next runs given the finished ``probes``; ``[]`` when done.

        ``repetitions`` is the plan's ``[experiment] repetitions``. Must be deterministic.
        """

    @abstractmethod
    def conclusion(self, probes: Sequence[Probe]) -> Mapping[str, Any]:
        """**REQUIRED.** What the probes established (e.g. the highest sustained load),
        JSON-serialisable; stored with the experiment."""
