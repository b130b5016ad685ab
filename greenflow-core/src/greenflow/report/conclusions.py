"""The conclusions of a protocol (``max-throughput``, ``proportionality``) read from an
experiment's provenance into plain values, and the words for them that ``greenflow
results`` and the report share. The stored shape is docs/plan-reference.md, "What is
stored"; a key an older record lacks reads as None rather than failing."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import attrs

from greenflow.report.data import RunFigures, Value, short_axis

#: Where the protocol's record is in the experiment's provenance.
PROVENANCE_KEY = "protocol"
#: The roles of a curve point, in the order they are explained.
ROLES = ("search", "recheck", "confirmation", "level")


@attrs.frozen
class Failure:
    """Why a probe did not sustain its load: a reason code and the figures behind it."""

    reason: str
    detail: str


@attrs.frozen
class CurvePoint:
    """One probe of the saturation curve (one stored run)."""

    value: float | None  # the asked load
    repetition: int | None
    role: str  # search, confirmation or level
    status: str
    achieved: float | None
    ratio: float | None  # achieved ÷ asked
    p99_ms: float | None
    schedule_lag_trend: float | None  # s behind schedule per s of MEASURE
    lag_trend: float | None  # consumer lag growth, messages/s
    sustained: bool
    checked: tuple[str, ...]
    failures: tuple[Failure, ...]
    run_id: str | None
    energy_per_unit: float | None  # the hosts' host-scope J per unit, summed
    service_energy_per_unit: float | None  # the services' J per unit, summed
    energy_method: str | None
    service_energy_method: str | None  # the host's method + "+cpu-share"

    @property
    def reasons(self) -> list[str]:
        return [f.reason for f in self.failures]

    def host_energy(self, run: RunFigures | None = None) -> Value | None:
        """The host J per unit with its method: the record's, else the run's own figure."""
        if self.energy_per_unit is not None and self.energy_method:
            return Value(self.energy_per_unit, self.energy_method)
        return run.per_unit if run is not None and run.finished else None

    def service_energy(self, run: RunFigures | None = None) -> Value | None:
        """The services' J per unit with its method: the record's, else the sum of the
        run's attributed services (``<method>+cpu-share``)."""
        if self.service_energy_per_unit is not None and self.service_energy_method:
            return Value(self.service_energy_per_unit, self.service_energy_method)
        if run is None or not run.finished:
            return None
        found = [g for g in run.groups.values() if g.scope == "service" and g.per_unit is not None]
        if not found:
            return None
        return Value(math.fsum(g.per_unit or 0.0 for g in found), found[0].method)


@attrs.frozen
class Confirmation:
    """The confirmation runs at the concluded value: their achieved rate's mean and 95 %
    Student-t interval (None with fewer than two rates), the worst p99."""

    value: float
    wanted: int
    runs: int
    passed: int  # as stored: the confirmation runs that finished
    achieved_mean: float | None
    achieved_ci_low: float | None
    achieved_ci_high: float | None
    ratio_mean: float | None
    p99_ms_max: float | None


@attrs.frozen
class Conclusion:
    """What a protocol concluded for one point of the other sweep axes (``base``)."""

    protocol: str  # the protocol's type
    base: dict[str, Any]
    axis: str | None
    #: The concluded maximum: max-throughput's ``max_sustained``, proportionality's
    #: ``maximum`` (None: nothing sustained, or not confirmed).
    maximum: float | None
    #: proportionality's maximum came from the plan (no search was run).
    given: bool
    candidate: float | None  # the highest sustained value, confirmed or not
    confirmed: bool
    first_unsustained: float | None
    confirmation: Confirmation | None
    probes: int | None  # search probes run
    criterion: dict[str, Any]
    levels: tuple[float, ...]  # proportionality's levels, % of the maximum
    curve: tuple[CurvePoint, ...]

    @property
    def p99_bound_ms(self) -> float | None:
        return _number(self.criterion.get("p99_bound_ms"))

    @property
    def reference_p99_ms(self) -> float | None:
        return _number(self.criterion.get("reference_p99_ms"))

    @property
    def tolerance(self) -> float | None:
        return _number(self.criterion.get("tolerance"))

    def confirmations(self) -> list[CurvePoint]:
        """The confirmation runs at the confirmed (or candidate) value."""
        value = self.confirmation.value if self.confirmation is not None else self.candidate
        return [
            p
            for p in self.curve
            if p.role == "confirmation" and value is not None and _same(p.value, value)
        ]

    def sustained_confirmations(self) -> int | None:
        """How many confirmation runs sustained the value (from the curve's verdicts)."""
        return sum(p.sustained for p in self.confirmations()) if self.confirmation else None


def protocol_record(provenance: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The protocol's record as stored (``{"type", "conclusions"}``), or None."""
    record = provenance.get(PROVENANCE_KEY)
    return record if isinstance(record, Mapping) else None


def read_conclusions(provenance: Mapping[str, Any]) -> list[Conclusion]:
    """The conclusions with a maximum or a saturation curve (not ``idle``'s), in the
    order of the points of the other axes."""
    record = protocol_record(provenance)
    if record is None:
        return []
    kind = str(record.get("type") or "protocol")
    stored = record.get("conclusions")
    if not isinstance(stored, list):
        return []
    out = []
    for item in stored:
        if not isinstance(item, Mapping):
            continue
        if not any(k in item for k in ("curve", "max_sustained", "maximum")):
            continue  # idle: nothing to show here
        out.append(_conclusion(kind, item))
    return out


def by_run(provenance: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Each probe's share of the record, by run id, for a run's JSON object: ``type`` (the
    protocol's), ``conclusion`` (its point's, without the curve, which is the runs
    themselves) and ``point`` (the run's own point of the curve), as stored."""
    record = protocol_record(provenance)
    if record is None or not isinstance(record.get("conclusions"), list):
        return {}
    out: dict[str, dict[str, Any]] = {}
    for item in record["conclusions"]:
        if not isinstance(item, Mapping) or not isinstance(item.get("curve"), list):
            continue
        conclusion = {k: v for k, v in item.items() if k != "curve"}
        for point in item["curve"]:
            if isinstance(point, Mapping) and isinstance(point.get("run_id"), str):
                out[point["run_id"]] = {
                    "type": record.get("type"),
                    "conclusion": conclusion,
                    "point": dict(point),
                }
    return out


def _conclusion(kind: str, item: Mapping[str, Any]) -> Conclusion:
    search = item.get("search")
    # proportionality keeps its search under "search" (without a search: a given maximum).
    found = search if isinstance(search, Mapping) else item
    is_proportionality = "maximum" in item
    maximum = _number(item.get("maximum" if is_proportionality else "max_sustained"))
    criterion = item.get("criterion")
    levels = item.get("levels")
    base = item.get("base")
    return Conclusion(
        protocol=kind,
        base=dict(base) if isinstance(base, Mapping) else {},
        axis=str(item["axis"]) if item.get("axis") is not None else None,
        maximum=maximum,
        given=is_proportionality and not isinstance(search, Mapping),
        candidate=_number(found.get("candidate", maximum)),
        confirmed=bool(found.get("confirmed", maximum is not None)),
        first_unsustained=_number(found.get("first_unsustained")),
        confirmation=_confirmation(found.get("confirmation")),
        probes=_int(found.get("probes")),
        criterion=dict(criterion) if isinstance(criterion, Mapping) else {},
        levels=tuple(v for v in map(_number, levels) if v is not None)
        if isinstance(levels, list)
        else (),
        curve=tuple(_point(p) for p in item.get("curve") or () if isinstance(p, Mapping)),
    )


def _confirmation(stored: Any) -> Confirmation | None:
    if not isinstance(stored, Mapping) or _number(stored.get("value")) is None:
        return None
    return Confirmation(
        value=_number(stored.get("value")) or 0.0,
        wanted=_int(stored.get("wanted")) or 0,
        runs=_int(stored.get("runs")) or 0,
        passed=_int(stored.get("passed")) or 0,
        achieved_mean=_number(stored.get("achieved_mean")),
        achieved_ci_low=_number(stored.get("achieved_ci_low")),
        achieved_ci_high=_number(stored.get("achieved_ci_high")),
        ratio_mean=_number(stored.get("ratio_mean")),
        p99_ms_max=_number(stored.get("p99_ms_max")),
    )


def _point(p: Mapping[str, Any]) -> CurvePoint:
    failures = [
        Failure(str(f.get("reason", "")), str(f.get("detail", "")))
        for f in p.get("failures") or ()
        if isinstance(f, Mapping)
    ]
    method = p.get("energy_method")
    service_method = p.get("service_energy_method")
    run_id = p.get("run_id")
    return CurvePoint(
        value=_number(p.get("value")),
        repetition=_int(p.get("repetition")),
        role=str(p.get("role") or ""),
        status=str(p.get("status") or ""),
        achieved=_number(p.get("achieved")),
        ratio=_number(p.get("ratio")),
        p99_ms=_number(p.get("p99_ms")),
        schedule_lag_trend=_number(p.get("schedule_lag_trend_s_per_s")),
        lag_trend=_number(p.get("consumer_lag_trend_messages_per_s")),
        sustained=bool(p.get("sustained")),
        checked=tuple(str(c) for c in p.get("checked") or ()),
        failures=tuple(failures),
        run_id=run_id if isinstance(run_id, str) else None,
        energy_per_unit=_number(p.get("energy_per_unit_joules")),
        service_energy_per_unit=_number(p.get("service_energy_per_unit_joules")),
        energy_method=method if isinstance(method, str) else None,
        service_energy_method=service_method if isinstance(service_method, str) else None,
    )


def _number(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    return float(v) if math.isfinite(v) else None


def _int(v: Any) -> int | None:
    return int(v) if isinstance(v, int) and not isinstance(v, bool) else None


def _same(a: float | None, b: float) -> bool:
    return a is not None and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


# -- words shared by `greenflow results` and the report ---------------------------------


def amount(value: float | None) -> str:
    """A load or rate: whole numbers with thousands separators, others to 5 digits."""
    if value is None:
        return ""
    if float(value).is_integer() and abs(value) < 1e15:
        return f"{value:,.0f}"
    return f"{value:,.5g}"


def base_label(base: Mapping[str, Any]) -> str:
    """``size=100, target=kafka``; "" for an experiment without other axes."""
    return ", ".join(f"{short_axis(k)}={v}" for k, v in base.items())


def maximum_text(c: Conclusion) -> str:
    """The concluded maximum, or why there is none."""
    if c.maximum is not None:
        return amount(c.maximum) + (" (given in the plan)" if c.given else "")
    if c.candidate is not None:
        return f"not confirmed: candidate {amount(c.candidate)}"
    return "none sustained"


def interval_text(conf: Confirmation | None) -> str:
    """The confirmations' mean achieved rate and its 95 % interval, ``2,988.0 (95 % CI
    2,973.1–3,002.9)``: both ends to the decimal place of the interval's half-width's
    second significant digit."""
    if conf is None or conf.achieved_mean is None:
        return ""
    mean, low, high = conf.achieved_mean, conf.achieved_ci_low, conf.achieved_ci_high
    if low is None or high is None:
        return f"{mean:,.5g} (one run: no interval)"
    half = (high - low) / 2
    decimals = 1 - math.floor(math.log10(half)) if half > 0 else 1
    decimals = min(max(decimals, 0), 6)
    return f"{mean:,.{decimals}f} (95 % CI {low:,.{decimals}f}–{high:,.{decimals}f})"


def runs_text(c: Conclusion) -> str:
    """``3/3 sustained``: the confirmation runs that sustained the value, of those wanted."""
    conf = c.confirmation
    if conf is None:
        return ""
    ok = c.sustained_confirmations()
    return f"{conf.passed if ok is None else ok}/{conf.wanted} sustained"


def bound_text(c: Conclusion) -> str:
    """The p99 bound in force and where it came from."""
    bound = c.p99_bound_ms
    if bound is None:
        return "none (no p99 reported)"
    ref, factor = c.reference_p99_ms, _number(c.criterion.get("p99_factor"))
    if c.criterion.get("max_p99_ms") is None and ref is not None and factor is not None:
        return f"{bound:.3g} ms ({factor:g} × {ref:.3g} ms at the lowest load)"
    return f"{bound:.3g} ms"


def criterion_text(c: Conclusion) -> str:
    """What sustained meant for these probes, in one line: the parts some probe had the
    figures for (a workload that reports no p99 is not held to a bound)."""
    k = c.criterion
    checked = {part for p in c.curve for part in p.checked}
    parts = []
    tol = c.tolerance
    if tol is not None:
        parts.append(f"achieved ÷ asked within 1 ± {tol:g}")
    if c.p99_bound_ms is not None and "latency" in checked:
        parts.append(f"p99 ≤ {bound_text(c)}")
    schedule, lag = _number(k.get("schedule_limit")), _number(k.get("lag_limit"))
    if schedule is not None and "schedule" in checked:
        parts.append(f"behind schedule ≤ {schedule:g} s per s")
    if lag is not None and "lag" in checked:
        parts.append(f"consumer lag growth ≤ {lag:g} × asked per s")
    return "; ".join(parts)


def energy_text(v: Value | None) -> str:
    """``0.0012 J (model:linear)``: a J per unit always with its method."""
    return "" if v is None else f"{v.value:.3g} J ({v.method})"


def ratio_text(v: float | None) -> str:
    return "" if v is None else f"{v:.3f}"


def reasons_text(p: CurvePoint, details: bool = False) -> str:
    """Why a probe was not sustained: its reason codes (with their figures)."""
    if details:
        return "; ".join(f"{f.reason}: {f.detail}" if f.detail else f.reason for f in p.failures)
    return ", ".join(p.reasons)
