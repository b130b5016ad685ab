"""Per-unit figures: joules per unit of work and per MiB, for every energy figure of a run."""

from __future__ import annotations

import re
from collections.abc import Sequence

from greenflow.api import Metric, WorkloadResult

MIB = 1024 * 1024


def _unit_slug(unit: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", unit.lower()).strip("_") or "unit"


def per_unit_metrics(energy: Sequence[Metric], result: WorkloadResult) -> list[Metric]:
    """``energy_per_<unit>_joules`` and ``energy_per_mib_joules`` for each energy figure.

    Computed for host, service and load-generator energy (and their active, i.e.
    idle-subtracted, counterparts); each keeps the method of the energy it divides.
    """
    out = []
    unit = _unit_slug(result.unit)
    for m in energy:
        if m.name not in ("energy_joules", "active_energy_joules"):
            continue
        prefix = "active_" if m.name.startswith("active_") else ""
        if result.units > 0:
            out.append(
                Metric(
                    f"{prefix}energy_per_{unit}_joules",
                    m.value / result.units,
                    "joules",
                    m.method,
                    m.labels,
                )
            )
        if result.payload_bytes:
            out.append(
                Metric(
                    f"{prefix}energy_per_mib_joules",
                    m.value / (result.payload_bytes / MIB),
                    "joules",
                    m.method,
                    m.labels,
                )
            )
    return out


def workload_metrics(result: WorkloadResult) -> list[Metric]:
    """The workload's own figures as metrics, so exports and reports see one table."""
    unit = _unit_slug(result.unit)
    out = [
        Metric(
            f"{unit}s_total" if not unit.endswith("s") else f"{unit}_total",
            result.units,
            unit,
            "workload",
        )
    ]
    if result.payload_bytes is not None:
        out.append(Metric("payload_bytes", result.payload_bytes, "bytes", "workload"))
    if result.achieved_rate is not None:
        out.append(Metric(f"achieved_{unit}s_per_s", result.achieved_rate, f"{unit}/s", "workload"))
    for key, value in result.latency_ms.items():
        out.append(Metric(f"latency_{key}_ms", value, "ms", "workload"))
    for key, value in result.metrics.items():
        out.append(Metric(key, value, "", "workload"))
    return out


def share_metrics(energy: Sequence[Metric]) -> list[Metric]:
    """``energy_share_ratio``: each attributed energy figure (a service, the load generator,
    other) as a share of its host's energy over MEASURE, so that a reader sees how much of
    a host J/unit is the system under test."""
    host = {
        m.labels.get("host"): m.value
        for m in energy
        if m.name == "energy_joules" and m.labels.get("scope") == "host"
    }
    out = []
    for m in energy:
        scope = m.labels.get("scope")
        whole = host.get(m.labels.get("host"))
        if m.name != "energy_joules" or scope in ("host", "idle", None) or not whole:
            continue
        out.append(Metric("energy_share_ratio", m.value / whole, "ratio", m.method, m.labels))
    return out
