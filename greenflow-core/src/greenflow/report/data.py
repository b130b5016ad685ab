"""What the report shows, read from the store into plain values; no plotting here.

One :class:`ExperimentData` per experiment: its runs with their per-run figures, the runs
grouped into points (series × x), the idle baselines and warnings, and the rules that pick
the x axis and the series. ``greenflow results`` reads its headline figures from here too.
"""

from __future__ import annotations

import json
import math
from bisect import bisect_left
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import attrs

from greenflow.api import Metric, Sample, WorkloadResult
from greenflow.errors import StoreError
from greenflow.measure.integrate import power_series, split_series
from greenflow.measure.rapl import host_energy_domains
from greenflow.stats import PointSummary, Stat, describe, summarize
from greenflow.store.db import BaselineRow, ExperimentRow, RunRow, RunStatus, Store, WarningRow

#: Axis names (the last dotted part) that name the system under test: runs are grouped
#: by them first (`target = ["kafka", "redpanda"]` compares systems).
VARIANT_AXES = ("target", "variant", "system")
#: Axis names (the last dotted part) that hold the asked load when no workload figure does.
LOAD_AXES = ("load", "rate")
#: The per-run scope whose energy is the host's (docs/results.md).
HOST_SCOPE = "host"
SHARE_SUFFIX = "+cpu-share"
IDLE_PART = "idle"
OTHER_PART = "other"
#: Scopes of the attributed groups, in the order they are shown: the system under test
#: first, then the load generator, then the rest of the host.
GROUP_SCOPES = ("service", "loadgen", "other")


@attrs.frozen
class Value:
    """A figure and how it was obtained (``rapl``, ``model:linear``, ``workload``...)."""

    value: float
    method: str


@attrs.frozen
class Group:
    """An attributed group's figures over MEASURE, summed over the hosts it ran on.

    ``name`` is ``service:<name>``, ``loadgen:<name>`` or ``other``; ``share`` is its
    energy ÷ the energy of those hosts (the ``energy_share_ratio`` of one host).
    """

    name: str
    scope: str
    energy: float  # J
    per_unit: float | None  # J per unit of work
    share: float | None
    method: str  # <host method>+cpu-share

    @property
    def label(self) -> str:
        """``kafka`` for ``service:kafka``; ``other`` stays ``other``."""
        return self.name.split(":", 1)[-1]


@attrs.frozen
class RunFigures:
    """One run and the figures the report draws from it (None: not stored)."""

    run: RunRow
    result: WorkloadResult | None
    energy: Value | None  # host energy over MEASURE, J
    per_unit: Value | None  # host J per unit of work
    per_unit_name: str | None  # its metric, energy_per_<unit>_joules
    asked: Value | None  # asked rate, units/s; method says where it came from
    parts: dict[str, float]  # energy breakdown over MEASURE, J
    parts_method: str
    idle_measured: bool
    #: Dynamic (idle-subtracted) host J per unit of work.
    active_per_unit: Value | None = None
    #: Attributed groups by name, services first, then load generators, then other.
    groups: dict[str, Group] = attrs.field(factory=dict)

    @property
    def finished(self) -> bool:
        return self.run.status is RunStatus.FINISHED


@attrs.frozen
class Point:
    """The runs of one parameter point: one series at one x."""

    series: str
    x: Any  # the x axis's value, or None when there is no x axis
    runs: tuple[RunFigures, ...]
    #: greenflow.stats' figures of this point (None: no run of it is in the summary).
    summary: PointSummary | None

    @property
    def finished(self) -> list[RunFigures]:
        return [r for r in self.runs if r.finished]


@attrs.frozen
class PowerLine:
    """Power of one host over a run, from its cumulative energy counters."""

    host: str
    method: str
    points: list[tuple[float, float]]  # (Unix s, W)


@attrs.frozen
class ExperimentData:
    experiment: ExperimentRow
    runs: list[RunFigures]
    axes: list[str]
    x_axis: str | None
    x_numeric: bool
    series_axes: list[str]
    points: list[Point]
    x_categories: list[str]  # a non-numeric x axis's values, in plan order, as text
    unit: str | None  # what a unit of work is, when every result agrees
    per_unit_name: str | None  # energy_per_<unit>_joules
    idle: list[IdlePower] = attrs.field(factory=list)
    warnings: list[WarningRow] = attrs.field(factory=list)

    def groups(self, scope: str | None = None) -> list[str]:
        """Attributed group names of finished runs (``service:kafka``...), in display
        order; only those of ``scope`` when given."""
        names = {n: g.scope for r in self.runs if r.finished for n, g in r.groups.items()}
        return [n for n in order_groups(names) if scope is None or names[n] == scope]

    def counts(self) -> dict[str, int]:
        """Runs per status, in the order finished, failed, aborted, running, pending."""
        out = {s.value: 0 for s in RunStatus}
        for r in self.runs:
            out[r.run.status.value] += 1
        order = ("finished", "failed", "aborted", "running", "pending")
        return {k: out[k] for k in order}

    def methods(self, pick: str) -> list[str]:
        """The distinct methods of one figure (``energy``, ``per_unit``, ``parts``) over
        finished runs, in first-seen order."""
        seen: dict[str, None] = {}
        for r in self.runs:
            if not r.finished:
                continue
            if pick == "parts":
                method = r.parts_method if r.parts else None
            else:
                v = getattr(r, pick)
                method = v.method if v is not None else None
            if method:
                seen[method] = None
        return list(seen)


# -- statistics -----------------------------------------------------------------------


def describe_finite(values: Iterable[float | None], method: str) -> Stat | None:
    """:func:`greenflow.stats.describe` of the finite ``values``; None when there are none."""
    data = [float(v) for v in values if v is not None and math.isfinite(v)]
    return describe(data, method) if data else None


# -- per-run figures --------------------------------------------------------------------


def _host_figure(metrics: Sequence[Metric], accept: Any) -> Value | None:
    """A host-scope figure summed over hosts: the stored total if any, else the sum of
    the per-host values of the first method stored (never a sum across methods)."""
    found = [
        m
        for m in metrics
        if m.labels.get("scope") == HOST_SCOPE
        and accept(m.name)
        and "domain" not in m.labels
        and "group" not in m.labels
    ]
    if not found:
        return None
    method = found[0].method
    same = [m for m in found if m.method == method]
    total = next((m for m in same if "host" not in m.labels), None)
    if total is not None:
        return Value(total.value, method)
    per_host = {m.labels["host"]: m.value for m in same}
    return Value(math.fsum(per_host.values()), method)


def _is_per_unit(name: str) -> bool:
    return (
        name.startswith("energy_per_")
        and name.endswith("_joules")
        and name != "energy_per_mib_joules"
    )


def _asked(metrics: Sequence[Metric], params: Mapping[str, Any]) -> Value | None:
    for m in metrics:
        if m.name.startswith("asked_") and m.name.endswith("_per_s") and math.isfinite(m.value):
            return Value(m.value, f"workload ({m.name})")
    for key, value in params.items():
        if key.rsplit(".", 1)[-1] in LOAD_AXES and _is_number(value):
            return Value(float(value), f"plan ({key})")
    return None


def _parts(metrics: Sequence[Metric], method: str) -> tuple[dict[str, float], str, bool]:
    """Energy over MEASURE split into services, load generators, idle and other (J),
    summed over hosts; the method of the split; whether idle was measured."""
    parts: dict[str, float] = {}
    shared = method + SHARE_SUFFIX
    idle_measured = False
    for m in metrics:
        scope = m.labels.get("scope")
        if "domain" in m.labels or not math.isfinite(m.value):
            continue
        if m.name == "idle_energy_joules" and scope == "idle" and m.method == method:
            parts[IDLE_PART] = parts.get(IDLE_PART, 0.0) + m.value
            idle_measured = True
        elif m.name == "energy_joules" and m.method == shared and scope != HOST_SCOPE:
            part = m.labels.get("group") or OTHER_PART
            parts[part] = parts.get(part, 0.0) + m.value
    if any(p != IDLE_PART for p in parts):
        return parts, shared, idle_measured
    # No process collector: nothing to attribute by; show active energy as one part.
    active = [
        m
        for m in metrics
        if m.name == "active_energy_joules"
        and m.method == method
        and m.labels.get("scope") == HOST_SCOPE
        and "domain" not in m.labels
    ]
    if active:
        label = "active (not attributed)" if idle_measured else "host (idle not measured)"
        parts[label] = math.fsum({m.labels.get("host", ""): m.value for m in active}.values())
    return parts, method, idle_measured


def order_groups(scopes: Mapping[str, str]) -> list[str]:
    """Group names (name → scope) in display order: services, load generators, other."""
    rank = {s: i for i, s in enumerate(GROUP_SCOPES)}
    return sorted(scopes, key=lambda n: (rank.get(scopes[n], len(rank)), n))


def attributed(metrics: Sequence[Metric], method: str) -> dict[str, Group]:
    """The groups that ``method``'s host energy was split into (``<method>+cpu-share``),
    each summed over its hosts, in display order (services first)."""
    shared = method + SHARE_SUFFIX
    host_energy: dict[str, float] = {}
    energy: dict[str, dict[str, float]] = {}
    per_unit: dict[str, dict[str, float]] = {}
    scopes: dict[str, str] = {}
    for m in metrics:
        if "domain" in m.labels or not math.isfinite(m.value):
            continue
        scope = m.labels.get("scope")
        host = m.labels.get("host", "")
        if m.name == "energy_joules" and scope == HOST_SCOPE and m.method == method:
            if "group" not in m.labels:
                host_energy[host] = m.value
            continue
        if m.method != shared or scope not in GROUP_SCOPES:
            continue
        name = m.labels.get("group") or OTHER_PART
        scopes[name] = scope
        if m.name == "energy_joules":
            energy.setdefault(name, {})[host] = m.value
        elif _is_per_unit(m.name):
            per_unit.setdefault(name, {})[host] = m.value
    out = {}
    for name in order_groups(scopes):
        if name not in energy:
            continue
        hosts = energy[name]
        total = math.fsum(hosts.values())
        # The share of the hosts the group ran on; a per-host figure without a host label
        # is a total, compared with the hosts' total.
        whole = [host_energy.get(h) for h in hosts] if "" not in hosts else [_total(host_energy)]
        share = None
        if all(w is not None for w in whole):
            denominator = math.fsum(w for w in whole if w is not None)
            share = total / denominator if denominator > 0 else None
        units = per_unit.get(name)
        out[name] = Group(
            name,
            scopes[name],
            total,
            math.fsum(units.values()) if units else None,
            share,
            shared,
        )
    return out


def _total(by_host: Mapping[str, float]) -> float | None:
    if "" in by_host:
        return by_host[""]
    return math.fsum(by_host.values()) if by_host else None


def run_figures(store: Store, run: RunRow) -> RunFigures:
    metrics = store.metrics(run.run_id) if run.status is RunStatus.FINISHED else []
    result = store.result(run.run_id) if run.status is RunStatus.FINISHED else None
    energy = _host_figure(metrics, lambda n: n == "energy_joules")
    per_unit = _host_figure(metrics, _is_per_unit)
    parts, parts_method, idle = _parts(metrics, energy.method) if energy else ({}, "", False)
    name = next((m.name for m in metrics if _is_per_unit(m.name)), None)
    asked = _asked(metrics, run.params)
    active = None
    if name is not None and energy is not None:
        active = _host_figure(
            [m for m in metrics if m.method == energy.method], lambda n: n == f"active_{name}"
        )
    groups = attributed(metrics, energy.method) if energy else {}
    return RunFigures(
        run, result, energy, per_unit, name, asked, parts, parts_method, idle, active, groups
    )


# -- axes and points -----------------------------------------------------------------


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def sweep_axes(experiment: ExperimentRow, runs: Sequence[RunRow]) -> list[str]:
    """The plan's sweep axes in plan order (from provenance), then any other run parameter."""
    recorded = experiment.provenance.get("axes")
    names = list(recorded) if isinstance(recorded, dict) else []
    for run in runs:
        names += [k for k in run.params if k not in names]
    return names


def _axis_values(axis: str, runs: Sequence[RunRow]) -> list[Any]:
    return [r.params[axis] for r in runs if axis in r.params]


def protocol_axis(experiment: ExperimentRow) -> str | None:
    """The parameter a protocol set run by run (``load``), from its stored conclusions."""
    record = experiment.provenance.get("protocol")
    found = record.get("conclusions") if isinstance(record, dict) else None
    for conclusion in found if isinstance(found, list) else []:
        axis = conclusion.get("axis") if isinstance(conclusion, dict) else None
        if isinstance(axis, str):
            return axis
    return None


def default_x_axis(axes: Sequence[str], runs: Sequence[RunRow]) -> str | None:
    """The first numeric axis that varies, else the first numeric one, else None."""
    numeric = [a for a in axes if (vs := _axis_values(a, runs)) and all(map(_is_number, vs))]
    varying = [a for a in numeric if len(set(_axis_values(a, runs))) > 1]
    found = varying or numeric
    return found[0] if found else None


def _is_variant(axis: str) -> bool:
    return axis.rsplit(".", 1)[-1] in VARIANT_AXES


def _short(axis: str) -> str:
    # The command workload's table-valued field: `params.load` reads better as `load`.
    return axis.removeprefix("params.")


def _order(experiment: ExperimentRow, axis: str) -> Callable[[Any], tuple[int, Any]]:
    """Sort key for an axis's values: their order in the plan, else by text."""
    recorded = experiment.provenance.get("axes")
    plan_values = recorded.get(axis) if isinstance(recorded, dict) else None
    listed = plan_values if isinstance(plan_values, list) else []

    def key(value: Any) -> tuple[int, Any]:
        if value in listed:
            return 0, listed.index(value)
        return (1, value) if _is_number(value) else (2, str(value))

    return key


def point_label(axes: Sequence[str], values: Sequence[Any]) -> str:
    """``kafka, message_size=100``: a variant axis's value alone (it names a system),
    other axes as name=value."""
    if not axes:
        return "all runs"
    return ", ".join(
        ("—" if v is None else str(v))
        if _is_variant(a)
        else f"{_short(a)}={'—' if v is None else v}"
        for a, v in zip(axes, values, strict=True)
    )


def _params_key(params: Mapping[str, Any]) -> str:
    # How greenflow.stats groups runs into points: by all their parameters.
    return json.dumps(params, sort_keys=True, default=str)


def _points(
    experiment: ExperimentRow,
    runs: Sequence[RunFigures],
    x_axis: str | None,
    series_axes: Sequence[str],
    summaries: Sequence[PointSummary],
) -> list[Point]:
    keys = {a: _order(experiment, a) for a in [*series_axes, *([x_axis] if x_axis else [])]}
    groups: dict[tuple[Any, ...], list[RunFigures]] = {}
    for r in runs:
        values = tuple(r.run.params.get(a) for a in series_axes)
        x = r.run.params.get(x_axis) if x_axis else None
        groups.setdefault((*values, x), []).append(r)

    def sort_key(key: tuple[Any, ...]) -> tuple[Any, ...]:
        axes = [*series_axes, *([x_axis] if x_axis else [])]
        return tuple(
            keys[a](v) if v is not None else (3, "")
            for a, v in zip(axes, key[: len(axes)], strict=True)
        )

    by_params = {_params_key(s.params): s for s in summaries}
    out = []
    for key in sorted(groups, key=sort_key):
        members = sorted(groups[key], key=lambda r: (r.run.repetition, r.run.order))
        summary = by_params.get(_params_key(members[0].run.params))
        out.append(Point(point_label(series_axes, key[:-1]), key[-1], tuple(members), summary))
    return out


def load_experiment(
    store: Store, experiment: ExperimentRow, x_axis: str | None = None
) -> ExperimentData:
    """Read one experiment; ``x_axis`` overrides the default (first numeric sweep axis)."""
    rows = store.get_runs(experiment.id)
    axes = sweep_axes(experiment, rows)
    if x_axis is not None and x_axis not in axes:
        # Accept the short form of the command workload's axes (`load` for `params.load`).
        matches = [a for a in axes if _short(a) == x_axis]
        if len(matches) != 1:
            known = ", ".join(axes) or "none (the plan has no sweep axis)"
            msg = f"--x-axis {x_axis!r} is not a sweep axis of experiment {experiment.name!r}; axes: {known}"
            raise StoreError(msg)
        x_axis = matches[0]
    protocol = protocol_axis(experiment)
    if x_axis is not None:
        chosen: str | None = x_axis
    elif protocol in axes:
        chosen = protocol  # the load a protocol chose: what every figure is against
    else:
        chosen = default_x_axis(axes, rows)
    x_numeric = chosen is not None and all(map(_is_number, _axis_values(chosen, rows)))
    others = [a for a in axes if a != chosen]
    series_axes = [a for a in others if _is_variant(a)] + [a for a in others if not _is_variant(a)]
    # Axes with one value in the whole experiment do not tell series apart.
    series_axes = [a for a in series_axes if len({repr(v) for v in _axis_values(a, rows)}) > 1]
    runs = [run_figures(store, r) for r in rows]
    units = {r.result.unit for r in runs if r.result is not None}
    categories: list[str] = []
    if chosen is not None and not x_numeric:
        ordered = sorted(_axis_values(chosen, rows), key=_order(experiment, chosen))
        categories = list(dict.fromkeys(str(v) for v in ordered))
    return ExperimentData(
        experiment=experiment,
        runs=runs,
        axes=axes,
        x_axis=chosen,
        x_numeric=x_numeric,
        series_axes=series_axes,
        points=_points(experiment, runs, chosen, series_axes, summarize(store, experiment.name)),
        x_categories=categories,
        unit=units.pop() if len(units) == 1 else None,
        per_unit_name=next((r.per_unit_name for r in runs if r.per_unit_name), None),
        idle=idle_power(store.baselines(experiment.id), rows),
        warnings=store.warnings(experiment.id),
    )


def short_axis(axis: str) -> str:
    """An axis name as the report shows it."""
    return _short(axis)


# -- power over time -------------------------------------------------------------------


def _method_rank(method: str) -> tuple[int, str]:
    # The preference of greenflow.measure.attribution: RAPL, other measurements, models.
    return (0 if method == "rapl" else 2 if method.startswith("model:") else 1, method)


def power_lines(samples: Sequence[Sample]) -> list[PowerLine]:
    """Per host, power from the energy counters the host energy is made of (same domains
    and method preference as the per-run figures): each counter differenced between
    consecutive samples, the domains summed."""
    domains: dict[str, dict[str, dict[str, list[Sample]]]] = {}
    for (host, metric, method, labels), series in split_series(samples).items():
        if metric == "energy_joules":
            domain = dict(labels).get("domain", "host")
        elif metric == "host_energy_joules":
            domain = "host"
        else:
            continue
        domains.setdefault(host, {}).setdefault(method, {})[domain] = series
    lines = []
    for host in sorted(domains):
        method = min(domains[host], key=_method_rank)
        by_domain = domains[host][method]
        chosen = ["host"] if "host" in by_domain else host_energy_domains(by_domain)
        parts = [power_series(by_domain[d]) for d in chosen if len(by_domain[d]) >= 2]
        if not parts or not parts[0]:
            continue
        base = parts[0]
        total = [(t, w + sum(_interpolate(p, t) for p in parts[1:])) for t, w in base]
        lines.append(PowerLine(host, method, total))
    return lines


def _interpolate(points: Sequence[tuple[float, float]], t: float) -> float:
    """Linear interpolation in (t, value) points sorted by t, held flat past either end."""
    if not points:
        return 0.0
    i = bisect_left(points, t, key=lambda p: p[0])
    if i == 0:
        return points[0][1]
    if i == len(points):
        return points[-1][1]
    (t0, v0), (t1, v1) = points[i - 1], points[i]
    return v0 + (v1 - v0) * (t - t0) / (t1 - t0) if t1 > t0 else v1


def select_power_runs(points: Sequence[Point], limit: int) -> list[RunFigures]:
    """At most ``limit`` runs that may have samples (not pending, not aborted), taken
    round-robin over the points: every point's first repetition, then the second..."""
    queues = [
        [r for r in p.runs if r.run.status in (RunStatus.FINISHED, RunStatus.FAILED)]
        for p in points
    ]
    chosen: list[RunFigures] = []
    depth = 0
    while len(chosen) < limit and any(len(q) > depth for q in queues):
        for q in queues:
            if len(q) > depth and len(chosen) < limit:
                chosen.append(q[depth])
        depth += 1
    return sorted(chosen, key=lambda r: r.run.order)


# -- idle baselines --------------------------------------------------------------------


@attrs.frozen
class IdlePower:
    """One host's idle power over one deployment (``group``; "" for the services-down
    baseline, before anything was deployed): its opening and closing baselines."""

    group: str
    host: str
    method: str
    opening: BaselineRow | None
    closing: BaselineRow | None
    services_down: BaselineRow | None
    runs: int  # runs of the deployment
    first_order: int | None  # the # of its first run

    @property
    def modelled(self) -> bool:
        """Whether the idle power is a model's input rather than a measurement."""
        return self.method.startswith("model:")

    @property
    def drift(self) -> float | None:
        """Closing − opening mean power, W (None without both, or by different methods)."""
        if self.opening is None or self.closing is None:
            return None
        if self.opening.method != self.closing.method:
            return None
        return self.closing.mean_watts - self.opening.mean_watts

    @property
    def drift_ratio(self) -> float | None:
        drift = self.drift
        if drift is None or self.opening is None or not self.opening.mean_watts:
            return None
        return drift / self.opening.mean_watts


def standard_error(baseline: BaselineRow) -> float | None:
    """The baseline mean's standard error: sd ÷ √(readings' intervals)."""
    if baseline.intervals < 1 or not math.isfinite(baseline.stdev_watts):
        return None
    return baseline.stdev_watts / math.sqrt(baseline.intervals)


def idle_power(baselines: Sequence[BaselineRow], runs: Sequence[RunRow]) -> list[IdlePower]:
    """Baselines paired per deployment and host, in the order the deployments ran."""
    found: dict[tuple[str, str, str], dict[str, BaselineRow]] = {}
    for b in baselines:
        # The latest of a kind wins: a resumed experiment measures its deployments again.
        found.setdefault((b.group, b.host, b.method), {})[b.kind] = b
    members: dict[str, list[RunRow]] = {}
    for r in runs:
        members.setdefault(r.group, []).append(r)
    out = []
    for (group, host, method), kinds in found.items():
        mine = members.get(group, []) if group else []
        out.append(
            IdlePower(
                group,
                host,
                method,
                kinds.get("opening"),
                kinds.get("closing"),
                kinds.get("services-down"),
                len(mine),
                min((r.order for r in mine), default=None),
            )
        )
    return out


def baseline_samples(samples: Sequence[Sample], baseline: BaselineRow) -> list[Sample]:
    """The samples of one baseline's window: those inside it and, per series, the first
    at or after its end. The runner reads every counter at the window's edges, just after
    each boundary; readings a moment before the start or after the end (the next phase's
    marks) would add intervals of milliseconds whose power is all noise."""
    inside: list[Sample] = []
    ended: set[tuple[str, str, str, str]] = set()
    for s in sorted(samples, key=lambda s: s.timestamp):
        if s.timestamp < baseline.start:
            continue
        key = (s.host, s.metric, s.method, json.dumps(s.labels, sort_keys=True))
        if s.timestamp < baseline.end:
            inside.append(s)
        elif key not in ended:
            inside.append(s)
            ended.add(key)
    return inside


@attrs.frozen
class WallCheck:
    """One run's cross-check on one host: another instrument's energy over MEASURE ÷ the
    energy measured at the plug (``energy_to_wall_ratio``)."""

    order: int
    run_id: str
    host: str
    instrument: str
    wall: str
    ratio: float


def wall_checks(store: Store, runs: Sequence[RunRow]) -> list[WallCheck]:
    """Every stored ``energy_to_wall_ratio`` of ``runs``' finished runs, by run order and
    host (docs/measurement.md, "Wall power")."""
    out = []
    for run in sorted(runs, key=lambda r: r.order):
        if run.status is not RunStatus.FINISHED:
            continue
        for m in store.metrics(run.run_id):
            if m.name != "energy_to_wall_ratio":
                continue
            instrument, _, wall = m.method.partition("/")
            out.append(
                WallCheck(
                    run.order, run.run_id, m.labels.get("host", ""), instrument, wall, m.value
                )
            )
    return sorted(out, key=lambda c: (c.order, c.host, c.instrument))
