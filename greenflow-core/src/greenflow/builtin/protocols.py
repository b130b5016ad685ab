"""Built-in protocols: ``max-throughput``, ``proportionality`` and ``idle``, and the
sustained-rate criterion the first two judge their probes by (docs/plan-reference.md,
"What sustained means")."""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import attrs

from greenflow.api import Probe, Protocol, Step
from greenflow.plan.durations import Duration
from greenflow.plan.validators import at_least, non_negative, ratio
from greenflow.plan.validators import fraction as _fraction
from greenflow.plan.validators import positive as _positive

#: ``WorkloadResult.metrics`` key: how fast the load generator fell behind its send schedule
#: over MEASURE (least-squares slope of its time behind schedule, seconds per second; 0 on
#: schedule). Any workload that reports it gets the "on schedule" test.
SCHEDULE_LAG_TREND = "schedule_lag_trend_s_per_s"
#: ``WorkloadResult.metrics`` key: how fast the consumers' lag grew over MEASURE
#: (least-squares slope, messages per second). Any workload that reports it gets the
#: "lag not growing" test, relative to the asked rate.
LAG_TREND = "consumer_lag_trend_messages_per_s"
#: The latency percentile the criterion bounds (a ``WorkloadResult.latency_ms`` key).
PERCENTILE = "p99"

#: Why a probe did not sustain its load (``Failure.reason``).
FAILED = "failed"  # the run did not finish (the workload failed it, or it was aborted)
NO_RATE = "no-rate"  # finished without an achieved rate to compare with the asked one
BELOW = "below-asked"  # achieved < (1 − tolerance) × asked: the system fell short
ABOVE = "above-asked"  # achieved > (1 + tolerance) × asked: a backlog was being drained
LATENCY = "latency"  # p99 above the bound
BEHIND = "behind-schedule"  # the load generator fell behind its schedule
LAG = "lag-growing"  # the consumers' lag grew
REASONS = (FAILED, NO_RATE, BELOW, ABOVE, LATENCY, BEHIND, LAG)


@attrs.frozen
class Failure:
    """One reason a probe did not sustain its load: a code of :data:`REASONS` and the
    figures that made it fail."""

    reason: str
    detail: str

    def as_dict(self) -> dict[str, str]:
        return {"reason": self.reason, "detail": self.detail}


@attrs.frozen
class Verdict:
    """Whether one probe sustained its load, why not, and what was checked."""

    failures: tuple[Failure, ...] = ()
    #: The parts of the criterion that had figures to check (``ratio``, ``latency``,
    #: ``schedule``, ``lag``); a part without figures is not checked.
    checked: tuple[str, ...] = ()

    @property
    def sustained(self) -> bool:
        return not self.failures

    @property
    def reasons(self) -> list[str]:
        return [f.reason for f in self.failures]


@attrs.frozen
class Criterion:
    """What "sustained" means (docs/plan-reference.md): all of

    * the run finished;
    * achieved ÷ asked within ``tolerance`` of 1, on **both** sides: more than asked is a
      backlog being drained (a generator catching up), not capacity;
    * p99 latency at most ``max_p99_ms`` or, unset, ``p99_factor`` × the p99 at the lowest
      probed load (at least ``p99_floor_ms``);
    * the load generator kept its schedule: time behind schedule growing by at most
      ``max_schedule_lag_trend`` seconds per second of MEASURE (:data:`SCHEDULE_LAG_TREND`);
    * the consumers' lag growing by at most ``max_lag_trend`` × the asked rate, messages per
      second (:data:`LAG_TREND`, Theodolite's lag-trend SLO).

    Unset, the two trend limits are ``tolerance``: one share of the asked rate for every count
    of it (the broker's, the generator's schedule, the consumers').

    A part whose figures the workload does not report is not checked, and the verdict says
    which parts were.
    """

    tolerance: float = 0.05
    p99_factor: float = 50.0
    p99_floor_ms: float = 0.0
    max_p99_ms: float | None = None
    max_schedule_lag_trend: float | None = None
    max_lag_trend: float | None = None

    @property
    def schedule_limit(self) -> float:
        """The generator's largest allowed fall behind its schedule, seconds per second."""
        s = self.max_schedule_lag_trend
        return self.tolerance if s is None else s

    @property
    def lag_limit(self) -> float:
        """The consumers' largest allowed lag growth, as a fraction of the asked rate."""
        s = self.max_lag_trend
        return self.tolerance if s is None else s

    def p99_bound(self, probes: Sequence[Probe]) -> float | None:
        """The p99 bound (ms) for these probes: ``max_p99_ms``, else ``p99_factor`` × the
        p99 of the lowest probed load that has one (None: no probe reports a p99 yet)."""
        if self.max_p99_ms is not None:
            return self.max_p99_ms
        ref = reference_p99(probes)
        return None if ref is None else max(self.p99_factor * ref, self.p99_floor_ms)

    def judge(self, probe: Probe, p99_bound_ms: float | None) -> Verdict:
        """The verdict on one probe, its latency held to ``p99_bound_ms`` (None: unchecked)."""
        if probe.status != "finished" or probe.result is None:
            why = (probe.error or "").splitlines()[0] if probe.error else "no result"
            return Verdict((Failure(FAILED, f"run {probe.status}: {why}"),))
        result, failures, checked = probe.result, [], ["ratio"]
        r = probe.ratio
        if r is None or not math.isfinite(r):
            failures.append(Failure(NO_RATE, "the workload reported no achieved rate"))
        elif r < 1 - self.tolerance:
            failures.append(
                Failure(BELOW, f"achieved {r:.3f} × asked, below 1 − {self.tolerance:g}")
            )
        elif r > 1 + self.tolerance:
            failures.append(
                Failure(
                    ABOVE,
                    f"achieved {r:.3f} × asked, above 1 + {self.tolerance:g}: a backlog "
                    "was being drained, which is not capacity",
                )
            )
        p99 = result.latency_ms.get(PERCENTILE)
        if p99 is not None and p99_bound_ms is not None:
            checked.append("latency")
            if not math.isfinite(p99) or p99 > p99_bound_ms:
                failures.append(Failure(LATENCY, f"p99 {p99:.3g} ms > bound {p99_bound_ms:.3g} ms"))
        trend = result.metrics.get(SCHEDULE_LAG_TREND)
        if trend is not None:
            checked.append("schedule")
            if not math.isfinite(trend) or trend > self.schedule_limit:
                failures.append(
                    Failure(
                        BEHIND,
                        f"the load generator fell behind its schedule by {trend:.3g} s per s "
                        f"of MEASURE (at most {self.schedule_limit:g})",
                    )
                )
        lag = result.metrics.get(LAG_TREND)
        if lag is not None and probe.value:
            checked.append("lag")
            limit = self.lag_limit * float(probe.value)
            if not math.isfinite(lag) or lag > limit:
                failures.append(
                    Failure(
                        LAG,
                        f"consumer lag grew by {lag:.3g} msg/s (at most {self.lag_limit:g}"
                        f" × asked = {limit:.3g})",
                    )
                )
        return Verdict(tuple(failures), tuple(checked))


def reference_p99(probes: Sequence[Probe]) -> float | None:
    """The p99 (ms) of the lowest probed load: the median over the finished probes there
    that report one (a search probe and, once it is confirmed, its confirmations)."""
    found = [
        (float(p.value), p.result.latency_ms[PERCENTILE])
        for p in probes
        if p.status == "finished"
        and p.result is not None
        and PERCENTILE in p.result.latency_ms
        and math.isfinite(p.result.latency_ms[PERCENTILE])
        and p.value is not None
    ]
    if not found:
        return None
    lowest = min(v for v, _ in found)
    return statistics.median(p99 for v, p99 in found if v == lowest)


def sustained(
    probe: Probe, criterion: Criterion | None = None, p99_bound_ms: float | None = None
) -> bool:
    """Whether ``probe`` sustained its load under ``criterion`` (default keys)."""
    return (criterion or Criterion()).judge(probe, p99_bound_ms).sustained


@attrs.frozen
class SustainedKeys:
    """The criterion's plan keys, shared by ``max-throughput`` and ``proportionality``."""

    #: Sustained needs achieved ÷ asked within 1 ± tolerance.
    tolerance: float = attrs.field(default=0.05, validator=_fraction)
    #: Without max_p99_ms: p99 ≤ p99_factor × the p99 at the lowest probed load...
    p99_factor: float = attrs.field(default=50.0, validator=_positive)
    #: ... and never below this (ms).
    p99_floor_ms: float = attrs.field(default=0.0, validator=non_negative)
    #: An absolute p99 bound (ms) instead.
    max_p99_ms: float | None = attrs.field(default=None, validator=_positive)
    #: The generator may fall behind its schedule by this many seconds per second (unset:
    #: tolerance).
    max_schedule_lag_trend: float | None = attrs.field(
        default=None, validator=attrs.validators.optional(ratio)
    )
    #: The consumers' lag may grow by this fraction of the asked rate, messages per second
    #: (unset: tolerance).
    max_lag_trend: float | None = attrs.field(
        default=None, validator=attrs.validators.optional(ratio)
    )

    @property
    def criterion(self) -> Criterion:
        return Criterion(
            tolerance=self.tolerance,
            p99_factor=self.p99_factor,
            p99_floor_ms=self.p99_floor_ms,
            max_p99_ms=self.max_p99_ms,
            max_schedule_lag_trend=self.max_schedule_lag_trend,
            max_lag_trend=self.max_lag_trend,
        )


@attrs.frozen
class SearchKeys(SustainedKeys):
    """The search's plan keys (``max-throughput``; ``proportionality`` without ``maximum``)."""

    #: The workload parameter to search (a rate: achieved is compared with it).
    axis: str = "load"
    #: First value tried.
    start: float = attrs.field(default=1000.0, validator=_positive)
    #: Stop bisecting when (high − low) / high ≤ precision.
    precision: float = attrs.field(default=0.05, validator=_fraction)
    #: At most this many search probes per point of the other axes (confirmations apart).
    max_runs: int = attrs.field(default=20, validator=at_least(1))
    #: Never ask for more than this (None: no ceiling).
    ceiling: float | None = attrs.field(default=None, validator=_positive)
    #: Round asked values to integers (rates in messages per second).
    integer: bool = True


#: The fewest confirmation runs at a concluded rate, whatever ``repetitions`` says.
MIN_CONFIRMATIONS = 3


def confirmations(repetitions: int) -> int:
    """Confirmation runs at the concluded rate: the plan's repetitions, at least 3."""
    return max(MIN_CONFIRMATIONS, repetitions)


class Search:
    """The max-throughput search over the probes of one point: double from ``start`` until a
    value is not sustained, bisect the bracket to ``precision`` (halve first when ``start``
    fails), then run the confirmations at the highest sustained value; if one fails, that
    value is not sustained and the search goes on below it.

    A search probe that fell short of its asked rate at a value the system was already seen
    to deliver (another probe of this search achieved at least the value less the
    tolerance, counting no more than what that probe was asked) runs once more, a
    *recheck*: the system demonstrably carried that rate, so one shortfall there is more
    likely a disturbance (a stall after an overload probe, another process) than its
    capacity, and taking it as capacity would end the search far below the knee. A value
    fails when its search probe and its recheck both fail, or any confirmation does; it is
    sustained when its search probe or its recheck passed and every confirmation did.
    Shortfalls above every delivered rate, and failures on latency, schedule or lag alone,
    are not rechecked: that is what capacity looks like.

    ``search_repetition`` tells the search probes apart, ``confirmation_repetitions(n)``
    names the confirmations' repetitions and ``recheck_repetition(n)`` the rechecks' (all
    differ between the two protocols; ``n`` is the number of confirmations)."""

    def __init__(
        self,
        keys: SearchKeys,
        *,
        search_repetition: int = 0,
        confirmation_repetitions: Callable[[int], Sequence[int]] = lambda n: range(1, n + 1),
        recheck_repetition: Callable[[int], int] = lambda n: -1,
    ) -> None:
        self.keys = keys
        self.criterion = keys.criterion
        self.search_repetition = search_repetition
        self.confirmation_repetitions = confirmation_repetitions
        self.recheck_repetition = recheck_repetition

    def _value(self, v: float) -> float | int:
        if self.keys.ceiling is not None:
            v = min(v, self.keys.ceiling)
        return max(1, round(v)) if self.keys.integer else v

    def repetitions(self, repetitions: int) -> set[int]:
        """The repetitions of this search's probes (search probes, rechecks, confirmations)."""
        n = confirmations(repetitions)
        return {
            self.search_repetition,
            self.recheck_repetition(n),
            *self.confirmation_repetitions(n),
        }

    def mine(self, probes: Sequence[Probe], repetitions: int) -> list[Probe]:
        """The probes of this search (search probes, rechecks and confirmations)."""
        reps = self.repetitions(repetitions)
        return [p for p in probes if p.repetition in reps]

    def role(self, probe: Probe, repetitions: int) -> str:
        """``search``, ``recheck`` or ``confirmation``: what ``probe`` was run for."""
        if probe.repetition == self.search_repetition:
            return "search"
        if probe.repetition == self.recheck_repetition(confirmations(repetitions)):
            return "recheck"
        return "confirmation"

    def verdicts(self, probes: Sequence[Probe]) -> list[Verdict]:
        """Each probe's verdict, latency held to the bound these probes set."""
        bound = self.criterion.p99_bound(probes)
        return [self.criterion.judge(p, bound) for p in probes]

    def _outcomes(
        self, probes: Sequence[Probe], repetitions: int
    ) -> tuple[dict[float, bool], set[float]]:
        """Each value's outcome so far (True sustained, False not) and the values whose
        failed search probe waits for its recheck (no outcome yet)."""
        verdicts = self.verdicts(probes)
        by_value: dict[float, dict[str, list[bool]]] = {}
        short: set[float] = set()  # values whose search probe fell short of the asked rate
        for p, v in zip(probes, verdicts, strict=True):
            role = self.role(p, repetitions)
            by_value.setdefault(float(p.value), {}).setdefault(role, []).append(v.sustained)
            if role == "search" and BELOW in v.reasons:
                short.add(float(p.value))
        outcome: dict[float, bool] = {}
        pending: set[float] = set()
        for value, roles in by_value.items():
            first = roles.get("search", []) + roles.get("recheck", [])
            confirmed = all(roles.get("confirmation", []))
            if not confirmed or any(first):
                outcome[value] = confirmed
            elif "recheck" in roles or value not in short or not self._delivered(probes, value):
                outcome[value] = False
            else:
                pending.add(value)
        return outcome, pending

    def _delivered(self, probes: Sequence[Probe], value: float) -> bool:
        """Whether a probe at another value achieved ``value`` less the tolerance, counting
        no more than it was asked (a generator catching up proves nothing)."""
        floor = value * (1 - self.criterion.tolerance)
        return any(
            min(float(p.result.achieved_rate), float(p.value)) >= floor
            for p in probes
            if float(p.value) != value
            and p.result is not None
            and p.result.achieved_rate is not None
        )

    def bracket(
        self, probes: Sequence[Probe], repetitions: int
    ) -> tuple[float | None, float | None]:
        """(highest sustained value, lowest unsustained value above it)."""
        outcome, _ = self._outcomes(probes, repetitions)
        good = [v for v, fine in outcome.items() if fine]
        low = max(good) if good else None
        bad = [v for v, fine in outcome.items() if not fine and (low is None or v > low)]
        return low, (min(bad) if bad else None)

    def next_steps(self, all_probes: Sequence[Probe], repetitions: int) -> list[Step]:
        probes = self.mine(all_probes, repetitions)
        _, pending = self._outcomes(probes, repetitions)
        if pending:
            value = next(p.value for p in probes if float(p.value) == min(pending))
            recheck = self.recheck_repetition(confirmations(repetitions))
            return [Step(value, repetition=recheck)]
        low, high = self.bracket(probes, repetitions)
        step = self._search_step(probes, low, high)
        if step is not None:
            return [Step(step, repetition=self.search_repetition)]
        if low is None:
            return []  # nothing sustained
        done = {p.repetition for p in probes if float(p.value) == low}
        value = next(p.value for p in probes if float(p.value) == low)
        for rep in self.confirmation_repetitions(confirmations(repetitions)):
            if rep not in done:
                # One at a time: the first that fails ends this value's confirmation.
                return [Step(value, repetition=rep)]
        return []

    def _search_step(
        self, probes: Sequence[Probe], low: float | None, high: float | None
    ) -> float | int | None:
        """The next search probe's value, or None when the search is over."""
        c = self.keys
        searched = [p for p in probes if p.repetition == self.search_repetition]
        if not searched:
            return self._value(c.start)
        if len(searched) >= c.max_runs:
            return None
        tried = {float(p.value) for p in probes}
        if high is None:  # everything so far sustained: double
            nxt = self._value(2 * (low or c.start))
        elif low is None:  # nothing sustained yet: halve below the lowest failure
            nxt = self._value(high / 2)
            if nxt >= high:
                return None
        else:
            if (high - low) / high <= c.precision:
                return None
            nxt = self._value((low + high) / 2)
        return None if float(nxt) in tried else nxt

    def conclusion(self, all_probes: Sequence[Probe], repetitions: int) -> dict[str, Any]:
        """The confirmed maximum, its confirmation figures, the criterion and the curve."""
        probes = self.mine(all_probes, repetitions)
        low, high = self.bracket(probes, repetitions)
        n = confirmations(repetitions)
        reps = set(self.confirmation_repetitions(n))
        at_low = [p for p in probes if low is not None and float(p.value) == low]
        confirmed = low is not None and reps <= {p.repetition for p in at_low}
        confirming = [p for p in at_low if p.repetition in reps]
        bound = self.criterion.p99_bound(probes)
        passed = sum(self.criterion.judge(p, bound).sustained for p in confirming)
        return {
            "max_sustained": low if confirmed else None,
            "candidate": low,
            "first_unsustained": high,
            "confirmed": confirmed,
            "confirmation": confirmation_summary(confirming, low, n, passed),
            "criterion": self.describe_criterion(probes),
            "probes": sum(p.repetition == self.search_repetition for p in probes),
            "rechecks": sum(self.role(p, repetitions) == "recheck" for p in probes),
        }

    def describe_criterion(self, probes: Sequence[Probe]) -> dict[str, Any]:
        """The criterion's keys and the p99 bound they resolved to for these probes."""
        return {
            **attrs.asdict(self.criterion),
            "schedule_limit": self.criterion.schedule_limit,
            "lag_limit": self.criterion.lag_limit,
            "reference_p99_ms": reference_p99(probes),
            "p99_bound_ms": self.criterion.p99_bound(probes),
        }


def confirmation_summary(
    runs: Sequence[Probe], value: float | None, wanted: int, passed: int
) -> dict[str, Any] | None:
    """Achieved rate and p99 over the confirmation runs at ``value``: mean and 95 %
    Student-t interval of the achieved rate (``greenflow.stats``), worst p99; ``passed``
    is how many of them the criterion found sustained."""
    from greenflow.stats.describe import describe

    if value is None:
        return None
    rates = [
        float(p.result.achieved_rate)
        for p in runs
        if p.result is not None and p.result.achieved_rate is not None
    ]
    p99s = [
        p.result.latency_ms[PERCENTILE]
        for p in runs
        if p.result is not None and PERCENTILE in p.result.latency_ms
    ]
    out: dict[str, Any] = {"value": value, "wanted": wanted, "runs": len(runs)}
    out["passed"] = passed
    if rates:
        stat = describe(rates, "workload")
        out.update(
            achieved_mean=stat.mean,
            achieved_ci_low=stat.ci_low,
            achieved_ci_high=stat.ci_high,
            ratio_mean=stat.mean / value if value else None,
        )
    if p99s:
        out["p99_ms_max"] = max(p99s)
    return out


def curve(
    probes: Sequence[tuple[int, Probe]],
    verdicts: Sequence[Verdict],
    role: Callable[[Probe], str],
) -> list[dict[str, Any]]:
    """The saturation curve: one point per probe, by asked value then repetition, with the
    achieved rate, ratio, p99, the generator's and the consumers' trends, and the verdict.
    ``probes`` pairs each probe with its index among all the probes the protocol was given,
    stored as ``probe`` (the runner adds the run's id and energy per unit by it)."""
    points = []
    for (i, p), v in zip(probes, verdicts, strict=True):
        r = p.result
        points.append(
            {
                "probe": i,
                "value": p.value,
                "repetition": p.repetition,
                "role": role(p),
                "status": p.status,
                "achieved": r.achieved_rate if r is not None else None,
                "ratio": p.ratio,
                "p99_ms": r.latency_ms.get(PERCENTILE) if r is not None else None,
                "schedule_lag_trend_s_per_s": r.metrics.get(SCHEDULE_LAG_TREND) if r else None,
                "consumer_lag_trend_messages_per_s": r.metrics.get(LAG_TREND) if r else None,
                "sustained": v.sustained,
                "checked": list(v.checked),
                "failures": [f.as_dict() for f in v.failures],
            }
        )
    return sorted(points, key=lambda pt: (float(pt["value"] or 0), pt["repetition"]))


def add_run_figures(
    conclusion: Mapping[str, Any],
    run_ids: Sequence[str],
    metrics: Callable[[str], Sequence[Any]],
) -> dict[str, Any]:
    """``conclusion`` with each curve point's run id and energy per unit of work (J per
    message for kafka-ingest): the host's (every host's host-scope figure summed) and the
    services' (every service-scope figure summed), of the first energy method the run has.
    ``metrics(run_id)`` returns the run's stored ``greenflow.api.Metric`` figures."""
    out = dict(conclusion)
    points = out.get("curve")
    if not isinstance(points, list):
        return out
    enriched = []
    for point in points:
        i = point.get("probe")
        point = dict(point)
        if isinstance(i, int) and 0 <= i < len(run_ids):
            point["run_id"] = run_ids[i]
            point.update(_energy_per_unit(metrics(run_ids[i])))
        enriched.append(point)
    out["curve"] = enriched
    return out


def _energy_per_unit(metrics: Sequence[Any]) -> dict[str, Any]:
    per_unit = [
        m for m in metrics if m.name.startswith("energy_per_") and m.name != "energy_per_mib_joules"
    ]
    if not per_unit:
        return {}
    hosts = [m for m in per_unit if m.labels.get("scope") == "host"]
    method = (hosts or per_unit)[0].method
    host = [m.value for m in hosts if m.method == method]
    # The services' figures are the host's energy split by CPU share: stored under their
    # own method (``<host method>+cpu-share``), which is named beside them.
    services = [m for m in per_unit if m.labels.get("scope") == "service"]
    service_method = services[0].method if services else None
    service = [m.value for m in services if m.method == service_method]
    return {
        "energy_per_unit_joules": sum(host) if host else None,
        "service_energy_per_unit_joules": sum(service) if service else None,
        "energy_method": method,
        "service_energy_method": service_method,
    }


@attrs.frozen
class MaxThroughputConfig(SearchKeys):
    """``[protocol] type = "max-throughput"``: the search's keys and the criterion's."""


class MaxThroughputProtocol(Protocol):
    """Find the highest load the system sustains (:class:`Criterion`): double from
    ``start`` until a probe fails, bisect the bracket until it is within ``precision``, with
    a cap of ``max_runs`` probes; halve first if even ``start`` fails. Then confirm the
    highest sustained value with max(3, repetitions) more runs (repetitions 1…n), which
    must all pass, else search on below it. Every probe is a stored run."""

    Config: ClassVar[type] = MaxThroughputConfig
    config: MaxThroughputConfig
    #: The plan's repetitions, as the last :meth:`next_steps` was given them: how many
    #: confirmations :meth:`conclusion` expects.
    repetitions: int = 1

    @property
    def axis(self) -> str:
        return self.config.axis

    @property
    def search(self) -> Search:
        return Search(self.config)

    def next_steps(self, probes: Sequence[Probe], repetitions: int) -> list[Step]:
        self.repetitions = repetitions
        return self.search.next_steps(probes, repetitions)

    def conclusion(self, probes: Sequence[Probe]) -> Mapping[str, Any]:
        search, repetitions = self.search, self.repetitions
        reps = search.repetitions(repetitions)
        indexed = [(i, p) for i, p in enumerate(probes) if p.repetition in reps]
        return {
            "axis": self.axis,
            **search.conclusion(probes, repetitions),
            "curve": curve(
                indexed,
                search.verdicts([p for _, p in indexed]),
                lambda p: search.role(p, repetitions),
            ),
        }


@attrs.frozen
class ProportionalityConfig(SearchKeys):
    """``[protocol] type = "proportionality"``: loads as percentages of a maximum."""

    #: The 100 % load; None: found first with a max-throughput search (its keys above).
    maximum: float | None = attrs.field(default=None, validator=_positive)
    #: Percentages of the maximum to run, each `repetitions` times.
    levels: list[float] = attrs.field(
        factory=lambda: [10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0, 100.0]
    )


class ProportionalityProtocol(Protocol):
    """Energy-proportionality curves: runs at each level (% of the maximum), repeated.

    Without ``maximum`` the maximum is found first by a ``max-throughput`` search and its
    confirmations (stored runs too, told apart by repetition −1 for the search and −2, −3 …
    for the confirmations)."""

    Config: ClassVar[type] = ProportionalityConfig
    config: ProportionalityConfig
    #: As for max-throughput: the repetitions the last :meth:`next_steps` was given.
    repetitions: int = 1

    @property
    def axis(self) -> str:
        return self.config.axis

    @property
    def search(self) -> Search:
        return Search(
            self.config,
            search_repetition=-1,
            confirmation_repetitions=lambda n: range(-2, -n - 2, -1),
            recheck_repetition=lambda n: -n - 2,
        )

    def maximum(self, probes: Sequence[Probe], repetitions: int = 1) -> float | None:
        if self.config.maximum is not None:
            return self.config.maximum
        search = self.search
        if search.next_steps(probes, repetitions):
            return None
        found = search.conclusion(probes, repetitions)["max_sustained"]
        return float(found) if found is not None else None

    def next_steps(self, probes: Sequence[Probe], repetitions: int) -> list[Step]:
        self.repetitions = repetitions
        if self.config.maximum is None:
            steps = self.search.next_steps(probes, repetitions)
            if steps:
                return steps
        top = self.maximum(probes, repetitions)
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
        repetitions = self.repetitions
        out: dict[str, Any] = {
            "axis": self.axis,
            "maximum": self.maximum(probes, repetitions),
            "levels": list(self.config.levels),
            "runs": sum(p.repetition >= 0 for p in probes),
        }
        search = self.search
        searched = self.config.maximum is None
        mine = search.mine(probes, repetitions) if searched else []
        if searched:
            found = search.conclusion(probes, repetitions)
            out["search"] = {k: v for k, v in found.items() if k != "criterion"}
        # Levels are judged with the search's p99 bound (their own without a search).
        basis = mine or [p for p in probes if p.repetition >= 0]
        bound = search.criterion.p99_bound(basis)
        out["criterion"] = search.describe_criterion(basis)
        reps = search.repetitions(repetitions) if searched else set()
        indexed = [
            (i, p) for i, p in enumerate(probes) if p.repetition >= 0 or p.repetition in reps
        ]
        out["curve"] = curve(
            indexed,
            [search.criterion.judge(p, bound) for _, p in indexed],
            lambda p: "level" if p.repetition >= 0 else search.role(p, repetitions),
        )
        return out


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
