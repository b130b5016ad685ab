"""Idle baselines: the power of each host with the services up and no load, its spread,
whether the services had gone quiet before it, and its drift over a deployment.

docs/measurement.md ("Idle baseline") describes the method; in short: the baseline starts
once two consecutive windows of host power agree within a tolerance (:func:`unsettled`) and
no service's processes use more than a little CPU (:func:`service_cpu`),
its mean is the energy counter's increase over the window divided by its length (the window
starts and ends on readings: collectors sample at phase boundaries), its spread is the
standard deviation of the power between consecutive readings inside it, and a second
(closing) baseline after a deployment's runs gives the drift. A run's idle power is the
opening mean; its uncertainty (:func:`idle_uncertainty_watts`) combines the mean's standard
error with the drift.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import attrs

from greenflow.api import Sample, Window
from greenflow.errors import CollectorError
from greenflow.measure.attribution import host_energy_series
from greenflow.measure.integrate import counter_at, counter_delta, power_series, split_series

#: Below this many watts of change, two windows agree whatever the relative tolerance:
#: a relative test alone would never settle a host idling near zero.
SETTLE_FLOOR_WATTS = 0.05


@attrs.frozen
class HostBaseline:
    """One host's idle power over a baseline window."""

    host: str
    method: str
    #: Energy over the window ÷ its length.
    mean_watts: float
    #: Standard deviation of the power between consecutive readings inside the window.
    stdev_watts: float
    #: Intervals between readings inside the window (the spread's sample count).
    intervals: int
    duration_s: float

    @property
    def standard_error_watts(self) -> float:
        """How well the mean is known from the spread inside the window."""
        return self.stdev_watts / math.sqrt(self.intervals) if self.intervals > 1 else 0.0


def host_baselines(samples: Sequence[Sample], window: Window) -> dict[str, HostBaseline]:
    """Each host's :class:`HostBaseline` over ``window``; raises CollectorError when there
    are no energy samples or they do not cover the window."""
    if window.duration_s <= 0:
        raise CollectorError(f"baseline window {window.start}..{window.end} has no duration")
    energy = host_energy_series(samples)
    if not energy:
        msg = (
            "no energy samples for the baseline: add an energy collector such as "
            'type = "rapl" or type = "model"'
        )
        raise CollectorError(msg)
    out = {}
    for host, (method, series) in energy.items():
        joules = sum(counter_delta(s, window) for s in series)
        # Power between consecutive readings wholly inside the window, summed over the
        # domains (one collector reads them all at the same instants).
        by_interval: dict[float, float] = {}
        for one in series:
            inside = [s for s in one if window.start <= s.timestamp <= window.end]
            for t, watts in power_series(inside) if len(inside) > 1 else []:
                key = round(t, 3)
                by_interval[key] = by_interval.get(key, 0.0) + watts
        powers = list(by_interval.values())
        mean = sum(powers) / len(powers) if powers else 0.0
        stdev = (
            math.sqrt(sum((p - mean) ** 2 for p in powers) / (len(powers) - 1))
            if len(powers) > 1
            else 0.0
        )
        out[host] = HostBaseline(
            host, method, joules / window.duration_s, stdev, len(powers), window.duration_s
        )
    return out


def unsettled(
    previous: Mapping[str, float], current: Mapping[str, float], tolerance: float
) -> str | None:
    """Why the hosts are not yet quiet, or None: every host's power in ``current`` within
    ``tolerance`` (relative, or :data:`SETTLE_FLOOR_WATTS`) of ``previous``."""
    moving = []
    for host in sorted(current):
        before, now = previous.get(host), current[host]
        if before is None:
            moving.append(f"{host}: no earlier window")
        elif abs(now - before) > max(tolerance * abs(before), SETTLE_FLOOR_WATTS):
            moving.append(f"{host}: {before:.3g} W → {now:.3g} W")
    return "; ".join(moving) or None


def idle_uncertainty_watts(opening: HostBaseline, closing: HostBaseline | None) -> float:
    """One standard uncertainty of a run's idle power taken as the opening mean: the mean's
    standard error, and, when a closing baseline exists, the drift between the two (the
    idle power at the run's time lies anywhere between them: an error of up to the drift,
    whose root mean square is drift/√3)."""
    se = opening.standard_error_watts
    if closing is None or closing.method != opening.method:
        return se
    drift = closing.mean_watts - opening.mean_watts
    return math.sqrt(se**2 + drift**2 / 3)


def service_cpu(samples: Sequence[Sample], window: Window) -> dict[str, float]:
    """CPU seconds per second each service group (``cpu_seconds{group="service:…"}`` from
    the process collector) used over ``window``, per host and group (``host/service:name``)."""
    return {
        key: rate
        for key, rate in group_cpu(samples, window).items()
        if key.split("/", 1)[1].startswith("service:")
    }


def background_cpu(samples: Sequence[Sample], window: Window) -> dict[str, float]:
    """Per host, the CPU seconds per second used over ``window`` by processes in no group
    (not a service, not the load generator): the host's busy time minus the groups'."""
    rates = group_cpu(samples, window)
    out = {}
    for key, rate in rates.items():
        host, group = key.split("/", 1)
        if group == "host":
            groups = sum(r for k, r in rates.items() if k.startswith(f"{host}/") and k != key)
            out[host] = max(0.0, rate - groups)
    return out


def group_cpu(samples: Sequence[Sample], window: Window) -> dict[str, float]:
    """CPU seconds per second of every ``cpu_seconds{group}`` series over ``window``, keyed
    ``host/group`` (``host`` is the host's whole busy time)."""
    out = {}
    for (host, metric, _method, labels), series in split_series(samples).items():
        group = dict(labels).get("group", "")
        if metric != "cpu_seconds" or not group:
            continue
        try:
            seconds = (
                counter_delta(series, window)
                if series[0].timestamp <= window.start
                else counter_at(series, window.end)
            )
        except CollectorError:
            continue
        out[f"{host}/{group}"] = seconds / window.duration_s
    return out
