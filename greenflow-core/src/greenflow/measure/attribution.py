"""Per-run energy figures: host energy over MEASURE, idle and active energy, and shares.

**Inputs** (what the built-in collectors produce, per host):

* cumulative ``energy_joules`` samples labelled ``domain``: one series per RAPL zone
  (``package-0``, ``dram-0``, ``core-0``, ``psys``; method ``rapl``), or one series
  ``domain="host"`` from a model (method ``model:<name>``) or any other whole-host source.
  A ``host_energy_joules`` series (e.g. Scaphandre through the prometheus collector) counts
  as ``domain="host"``.
* cumulative ``cpu_seconds`` samples labelled ``group``: ``host`` is all busy CPU time of
  the host, the others are attribution groups (``service:kafka``, ``loadgen:kafka-ingest``).
  A group's counter starts at zero when the group first appears, so a group that appears
  during MEASURE counts from zero.

**Host energy.** The energy of the host over MEASURE is the sum, over the domains chosen
by :func:`~greenflow.measure.rapl.host_energy_domains` (or the ``host`` domain), of each
counter's value at MEASURE's end minus at its start (:func:`counter_delta`). A host with
energy from several methods uses one: a wall measurement (samples labelled
``source="wall"``: a wattmeter or BMC at the plug, the whole machine), else ``rapl``, else
another measurement (alphabetical), else a model; the others stay in the stored samples.
A host measured at the plug and by another instrument also gets ``energy_to_wall_ratio``
(:func:`wall_crosscheck`).

**Idle and active.** ``idle_power_watts`` comes from the baseline (services up, no load;
:func:`idle_power_from_baseline`). Idle energy = idle power × MEASURE duration; active
energy = host energy − idle energy, reported as is: under noise, a lightly loaded run can
show a slightly negative active energy, and clamping it to zero would bias averages
across repetitions upwards. Without a baseline with the same method, active energy is
the host energy and the figures that derive from it carry ``idle="unmeasured"``.

**Attribution** (as Scaphandre and Kepler do): a group's energy is the active energy ×
its share of the host's busy CPU time over MEASURE (group CPU seconds / host busy CPU
seconds). What no group used goes to scope ``other``. Attributed figures carry the method
``<energy method>+cpu-share`` (e.g. ``rapl+cpu-share``), so that nobody mistakes them
for a direct measurement. When the groups' CPU time exceeds the host's busy time (the
reads are a few milliseconds apart), the shares are scaled to add up to one, ``other``
is zero and the excess is stored as ``cpu_excess_seconds`` (scope ``other``).

**Outputs** (:class:`~greenflow.api.Metric`, labels ``host`` and ``scope``):

============================  =======  ===================================================
name                          scope    value
============================  =======  ===================================================
``energy_joules``             host     host energy over MEASURE
``mean_power_watts``          host     host energy / MEASURE duration
``idle_power_watts``          idle     from the baseline (when measured)
``idle_energy_joules``        idle     idle power × MEASURE duration (when measured)
``active_energy_joules``      host     energy − idle energy
``cpu_seconds``               host     busy CPU seconds of the host (``group="host"``)
``energy_joules``             service  active energy × CPU share, ``group="service:kafka"``
                              loadgen  (scope = group name before ``:``; ``group`` if none)
``cpu_seconds``               service  the group's CPU seconds, same labels
                              loadgen
``energy_joules``             other    active energy not attributed to a group
``cpu_seconds``               other    busy CPU seconds not in a group (≥ 0)
``cpu_excess_seconds``        other    the groups' CPU seconds beyond the host's, when any
``energy_to_wall_ratio``      host     another instrument's energy ÷ the wall energy
============================  =======  ===================================================
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from greenflow.api import Metric, Sample, Window
from greenflow.errors import CollectorError, GreenFlowError
from greenflow.measure.integrate import (
    NotCoveredError,
    SeriesKey,
    counter_at,
    counter_delta,
    split_series,
)
from greenflow.measure.rapl import host_energy_domains

#: The ``group`` of the host's own busy CPU time in ``cpu_seconds`` samples.
HOST_GROUP = "host"
#: Appended to the energy method on attributed figures.
SHARE_SUFFIX = "+cpu-share"
#: The ``source`` label of energy measured at the plug (a wattmeter, a BMC): the whole
#: machine, preferred as the host's energy and the cross-check's reference.
WALL = "wall"

_ENERGY = "energy_joules"
_HOST_ENERGY = "host_energy_joules"
_CPU = "cpu_seconds"

# host -> method -> the series whose deltas add up to the host's energy
_EnergySeries = dict[str, dict[str, list[list[Sample]]]]


def _energy_series(series: Mapping[SeriesKey, list[Sample]]) -> _EnergySeries:
    domains: dict[str, dict[str, dict[str, list[Sample]]]] = {}
    for (host, metric, method, labels), samples in series.items():
        if metric == _ENERGY:
            domain = dict(labels).get("domain", "host")
        elif metric == _HOST_ENERGY:
            domain = "host"
        else:
            continue
        domains.setdefault(host, {}).setdefault(method, {})[domain] = samples
    out: _EnergySeries = {}
    for host, by_method in domains.items():
        for method, by_domain in by_method.items():
            chosen = ["host"] if "host" in by_domain else host_energy_domains(by_domain)
            if chosen:
                out.setdefault(host, {})[method] = [by_domain[d] for d in chosen]
    return out


def _wall_methods(series: Mapping[SeriesKey, list[Sample]]) -> set[tuple[str, str]]:
    """(host, method) of the energy series measured at the plug (label ``source="wall"``)."""
    return {
        (host, method)
        for (host, metric, method, labels), _ in series.items()
        if metric in (_ENERGY, _HOST_ENERGY) and dict(labels).get("source") == WALL
    }


def _primary(methods: Iterable[str], wall: Iterable[str] = ()) -> str:
    """Wall power first (the whole machine), then RAPL, then other measurements, then
    models; alphabetical within each."""
    walls = set(wall)
    return min(
        methods,
        key=lambda m: (
            -1 if m in walls else 0 if m == "rapl" else 2 if m.startswith("model:") else 1,
            m,
        ),
    )


def host_energy_series(samples: Sequence[Sample]) -> dict[str, tuple[str, list[list[Sample]]]]:
    """Host → (the preferred method, the series whose deltas add up to its energy), by the
    host energy rule and method preference of the module docstring."""
    series = split_series(samples)
    wall = _wall_methods(series)
    out = {}
    for host, by_method in _energy_series(series).items():
        method = _primary(by_method, {m for h, m in wall if h == host})
        out[host] = (method, by_method[method])
    return out


def wall_crosscheck(samples: Sequence[Sample], measure: Window) -> list[Metric]:
    """Per host measured at the plug and by another instrument (RAPL, Scaphandre — not a
    model): ``energy_to_wall_ratio``, that instrument's energy over MEASURE ÷ the wall
    energy, method ``<instrument>/<wall method>``. CPU-package counters leave out fans,
    disks, memory and power-supply losses: the ratio says how much of the machine they
    see, run by run."""
    series = split_series(samples)
    wall = _wall_methods(series)
    out = []
    for host, by_method in sorted(_energy_series(series).items()):
        walls = sorted(m for m in by_method if (host, m) in wall)
        others = sorted(
            m for m in by_method if (host, m) not in wall and not m.startswith("model:")
        )
        for w in walls:
            try:
                wall_joules = sum(counter_delta(s, measure) for s in by_method[w])
            except NotCoveredError:
                continue
            for other in others:
                try:
                    joules = sum(counter_delta(s, measure) for s in by_method[other])
                except NotCoveredError:
                    continue
                if wall_joules > 0:
                    out.append(
                        _metric(
                            host,
                            "energy_to_wall_ratio",
                            joules / wall_joules,
                            "ratio",
                            f"{other}/{w}",
                            "host",
                        )
                    )
    return out


def _host_energies(samples: Sequence[Sample], window: Window) -> dict[str, tuple[float, str]]:
    """Host → (joules over ``window``, method), with the preferred method of each host."""
    if window.duration_s <= 0:
        raise GreenFlowError(f"window {window.start}..{window.end} has no duration")
    energy = host_energy_series(samples)
    if not energy:
        msg = (
            "no energy samples (energy_joules with a domain label, or host_energy_joules): "
            'add an energy collector such as type = "rapl" or type = "model"'
        )
        raise CollectorError(msg)
    return {
        host: (sum(counter_delta(s, window) for s in series), method)
        for host, (method, series) in energy.items()
    }


def _metric(
    host: str, name: str, value: float, unit: str, method: str, scope: str, **labels: str
) -> Metric:
    return Metric(name, value, unit, method, {"host": host, "scope": scope, **labels})


def _scope(group: str) -> str:
    return group.split(":", 1)[0] if ":" in group else "group"


def _group_delta(samples: list[Sample], window: Window) -> float:
    if samples[0].timestamp > window.start:
        # The group appeared during the window; its counter started from zero then.
        return counter_at(samples, window.end)
    return counter_delta(samples, window)


def idle_power_from_baseline(
    samples: Sequence[Sample], baseline: Window
) -> dict[str, tuple[float, str]]:
    """Host → (mean power in watts over ``baseline``, method), from its energy counters.

    Uses the same host energy rule and method preference as :func:`compute_run_metrics`.
    Raises :class:`~greenflow.errors.CollectorError` when there are no energy samples or
    they do not cover the window.
    """
    return {
        host: (joules / baseline.duration_s, method)
        for host, (joules, method) in _host_energies(samples, baseline).items()
    }


def compute_run_metrics(
    samples: Sequence[Sample],
    measure: Window,
    idle_power_watts: Mapping[str, tuple[float, str]] | None = None,
) -> list[Metric]:
    """Energy, power, idle, active and attributed figures of one run over ``measure``.

    ``idle_power_watts`` maps host → (watts, method) from the baseline; a host missing
    from it, or measured there with another method, gets ``idle="unmeasured"`` figures.
    See the module docstring for the rules and the list of metrics. Raises
    :class:`~greenflow.errors.CollectorError` when energy samples are missing or do not
    cover ``measure``.
    """
    duration = measure.duration_s
    energies = _host_energies(samples, measure)
    cpu: dict[str, dict[str, tuple[list[Sample], str]]] = {}
    for (host, metric, method, labels), series in split_series(samples).items():
        group = dict(labels).get("group")
        if metric == _CPU and group:
            cpu.setdefault(host, {})[group] = (series, method)

    out: list[Metric] = []
    for host in sorted(energies):
        joules, method = energies[host]
        out += [
            _metric(host, "energy_joules", joules, "joules", method, "host"),
            _metric(host, "mean_power_watts", joules / duration, "watts", method, "host"),
        ]
        idle = (idle_power_watts or {}).get(host)
        unmeasured: dict[str, str] = {}
        if idle is not None and idle[1] == method:
            idle_watts, idle_method = idle
            out += [
                _metric(host, "idle_power_watts", idle_watts, "watts", idle_method, "idle"),
                _metric(
                    host, "idle_energy_joules", idle_watts * duration, "joules", idle_method, "idle"
                ),
            ]
            active = joules - idle_watts * duration
        else:
            active = joules
            unmeasured = {"idle": "unmeasured"}
        out.append(
            _metric(host, "active_energy_joules", active, "joules", method, "host", **unmeasured)
        )

        groups = cpu.get(host, {})
        if HOST_GROUP not in groups:
            continue  # no process collector on this host: nothing to attribute by
        host_series, cpu_method = groups[HOST_GROUP]
        busy = counter_delta(host_series, measure)
        out.append(
            _metric(host, "cpu_seconds", busy, "seconds", cpu_method, "host", group=HOST_GROUP)
        )
        shared = method + SHARE_SUFFIX
        attributed_joules = attributed_cpu = 0.0
        seconds_of = {
            group: _group_delta(groups[group][0], measure)
            for group in sorted(g for g in groups if g != HOST_GROUP)
        }
        # The groups' CPU time is read per process, the host's from /proc/stat, at slightly
        # different instants: their sum can exceed the host's busy time. The shares are then
        # scaled down to add up to it (other = 0, never negative) and the excess is stored.
        total = sum(seconds_of.values())
        scale = busy / total if total > busy > 0 else 1.0
        if total > busy:
            out.append(
                _metric(host, "cpu_excess_seconds", total - busy, "seconds", cpu_method, "other")
            )
        for group, seconds in seconds_of.items():
            group_method = groups[group][1]
            share = seconds * scale / busy if busy > 0 else 0.0
            scope = _scope(group)
            out += [
                _metric(
                    host,
                    "energy_joules",
                    active * share,
                    "joules",
                    shared,
                    scope,
                    group=group,
                    **unmeasured,
                ),
                _metric(host, "cpu_seconds", seconds, "seconds", group_method, scope, group=group),
            ]
            attributed_joules += active * share
            attributed_cpu += seconds * scale
        out += [
            _metric(
                host,
                "energy_joules",
                active - attributed_joules,
                "joules",
                shared,
                "other",
                **unmeasured,
            ),
            _metric(
                host, "cpu_seconds", max(0.0, busy - attributed_cpu), "seconds", cpu_method, "other"
            ),
        ]
    out += _pod_energy(samples, measure)
    out += wall_crosscheck(samples, measure)
    return out


def _pod_energy(samples: Sequence[Sample], measure: Window) -> list[Metric]:
    """Per-pod energy over MEASURE from cumulative ``pod_energy_joules`` series (the
    scaphandre collector's integral of per-process power), scope ``pod``."""
    out = []
    for (host, metric, method, labels), series in split_series(samples).items():
        if metric != "pod_energy_joules":
            continue
        try:
            joules = counter_delta(series, measure)
        except NotCoveredError:
            continue  # the pod did not exist for the whole window: no honest figure
        pod = dict(labels)
        out.append(
            _metric(
                host,
                "energy_joules",
                joules,
                "joules",
                method,
                "pod",
                pod=pod.get("pod", ""),
                namespace=pod.get("namespace", ""),
            )
        )
    return out
