"""Runs stored the way the runner stores them, for the statistics tests."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from greenflow.api.context import Metric, WorkloadResult
from greenflow.store import RunStatus, Store


def host(
    name: str, value: float, method: str, node: str, scope: str = "host", **labels: str
) -> Metric:
    """A per-host metric labelled the way the attribution labels it."""
    unit = "watts" if name.endswith("_watts") else "joules"
    return Metric(name, value, unit, method, {"host": node, "scope": scope, **labels})


def add_run(
    store: Store,
    exp: int,
    run_id: str,
    params: dict[str, Any],
    repetition: int,
    status: RunStatus,
    metrics: Sequence[Metric] = (),
    result: WorkloadResult | None = None,
) -> None:
    """A run taken through the statuses the runner gives it, with its figures stored."""
    order = len(store.get_runs(exp))
    store.add_run(exp, run_id, params, repetition, order, group="g")
    store.set_run_status(run_id, RunStatus.RUNNING)
    for phase, at in (
        ("warmup", 10.0 * order),
        ("measure", 10.0 * order + 1),
        ("cooldown", 10.0 * order + 9),
    ):
        store.record_phase(exp, run_id, phase, at)
    if result is not None:
        store.set_result(run_id, result)
    store.add_metrics(run_id, metrics)
    store.set_run_status(run_id, status, None if status is RunStatus.FINISHED else "boom")


def rep_metrics(
    e1: float, e2: float, units: float, method: str = "rapl", idle2: float | None = 2.0
) -> list[Metric]:
    """What the runner stores for two nodes: host energy, idle (4 J on node-1, ``idle2`` on
    node-2; None: no baseline there), active energy, kafka's share on node-1 (half of
    node-1's active energy) and the per-message and per-MiB figures."""
    share = method + "+cpu-share"
    kafka = {"group": "service:kafka"}
    out = [Metric("measure_duration_seconds", 8.0, "seconds", "clock")]
    for node, energy, idle in (("node-1", e1, 4.0), ("node-2", e2, idle2)):
        active = energy - (idle or 0.0)
        unmeasured = {"idle": "unmeasured"} if idle is None else {}
        out += [
            host("energy_joules", energy, method, node),
            host("mean_power_watts", energy / 8, method, node),
            host("active_energy_joules", active, method, node, **unmeasured),
            host("energy_per_message_joules", energy / units, method, node),
            host("active_energy_per_message_joules", active / units, method, node, **unmeasured),
            host("energy_per_mib_joules", energy / units * 1024, method, node),
        ]
        if idle is not None:
            out.append(host("idle_energy_joules", idle, method, node, scope="idle"))
    out.append(host("energy_joules", (e1 - 4.0) / 2, share, "node-1", scope="service", **kafka))
    return out


def result(units: float, rate: float, p99: float) -> WorkloadResult:
    return WorkloadResult(
        units=units,
        unit="message",
        payload_bytes=units * 1024,
        achieved_rate=rate,
        latency_ms={"p50": p99 / 4, "p99": p99},
        metrics={"asked_rate_per_s": 1000.0},
    )
