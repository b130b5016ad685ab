"""Protocol experiments stored the way the runner stores them, for the tests of
``greenflow results`` and ``greenflow report`` on them: the real protocol chooses each
asked load, each probe is a stored run with its result and energy figures, and the
experiment's provenance holds the conclusions the protocol drew (with each run's id and
J per unit, as the runner adds them)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from greenflow.api import Metric, Probe, Protocol, WorkloadResult
from greenflow.builtin.protocols import SCHEDULE_LAG_TREND, add_run_figures
from greenflow.store import RunStatus, Store

MODEL = "model:linear"
SHARED = MODEL + "+cpu-share"
#: MEASURE lasts this long in every run, s.
MEASURE_S = 10.0
#: Error of the runs whose workload gave up (at 4/3 × capacity and above).
GAVE_UP = "kafka-ingest: achieved 0.41 × asked, below min_achieved_ratio 0.5"

System = Callable[[float, int], WorkloadResult | None]


def kafka_like(capacity: float) -> System:
    """Up to ``capacity`` it keeps the asked rate (a little less with each repetition, so
    that the confirmations' interval has a width), p99 growing with load, on schedule.
    Above it, its load generator catches up: 1.12 × asked, p99 600 ms, behind schedule.
    From 4/3 × capacity the workload gives up: the run fails (None)."""

    def run(asked: float, rep: int) -> WorkloadResult | None:
        if asked >= capacity * 4 / 3:
            return None
        if asked <= capacity:
            achieved, p99, lag = asked * (1 - 0.002 * abs(rep)), 5 + 10 * asked / capacity, 0.0
        else:
            achieved, p99, lag = 1.12 * asked, 600.0, 0.3
        return WorkloadResult(
            units=achieved * MEASURE_S,
            unit="message",
            achieved_rate=achieved,
            latency_ms={"p50": p99 / 3, "p99": p99},
            metrics={SCHEDULE_LAG_TREND: lag},
        )

    return run


def energy_metrics(units: float) -> list[Metric]:
    """Host "vm" under the model (20 J idle over MEASURE, 2 mJ per message beyond it), and
    kafka attributed 60 % of the dynamic energy, as the runner stores them: the host's
    figures first, then the attributed ones (``<method>+cpu-share``)."""
    idle = 20.0
    host_j = idle + 0.002 * units
    kafka_j = 0.6 * (host_j - idle)
    host = {"host": "vm", "scope": "host"}
    kafka = {"host": "vm", "scope": "service", "group": "service:kafka"}
    return [
        Metric("energy_joules", host_j, "joules", MODEL, host),
        Metric("idle_energy_joules", idle, "joules", MODEL, {"host": "vm", "scope": "idle"}),
        Metric("active_energy_joules", host_j - idle, "joules", MODEL, host),
        Metric("energy_per_message_joules", host_j / units, "joules", MODEL, host),
        Metric("active_energy_per_message_joules", (host_j - idle) / units, "joules", MODEL, host),
        Metric("energy_joules", kafka_j, "joules", SHARED, kafka),
        Metric("energy_per_message_joules", kafka_j / units, "joules", SHARED, kafka),
        Metric("energy_share_ratio", kafka_j / host_j, "ratio", SHARED, kafka),
    ]


def store_protocol_experiment(
    out: Path,
    protocol: Protocol,
    kind: str,
    systems: Sequence[tuple[Mapping[str, Any], System]],
    *,
    name: str = "saturation",
    repetitions: int = 1,
) -> dict[str, Any]:
    """Run ``protocol`` against each (base, system) as the runner does, storing every probe
    as a run of experiment ``name`` in the store at ``out``; returns the protocol record
    stored in the experiment's provenance."""
    with Store.open(out) as store:
        plan = f'[experiment]\nname = "{name}"\n\n[protocol]\ntype = "{kind}"\n'
        exp = store.upsert_experiment(name, "plan.toml", plan, 1)
        t, order, conclusions = 1.9e9, 0, []
        for base, system in systems:
            probes: list[Probe] = []
            run_ids: list[str] = []
            while steps := protocol.next_steps(probes, repetitions):
                for step in steps:
                    assert step.value is not None
                    tag = "-".join(f"{k}{v}" for k, v in base.items())
                    run_id = f"{tag}-{step.value}-{step.repetition}"
                    params = {**base, "load": step.value}
                    store.add_run(exp, run_id, params, step.repetition, order, group="dep")
                    store.set_run_status(run_id, RunStatus.RUNNING)
                    store.record_phase(exp, run_id, "measure", t)
                    store.record_phase(exp, run_id, "cooldown", t + MEASURE_S)
                    result = system(float(step.value), step.repetition)
                    if result is None:
                        store.set_run_status(run_id, RunStatus.FAILED, GAVE_UP)
                        probes.append(Probe(step.value, step.repetition, "failed", None, GAVE_UP))
                    else:
                        store.set_result(run_id, result)
                        store.add_metrics(run_id, energy_metrics(result.units))
                        store.set_run_status(run_id, RunStatus.FINISHED)
                        probes.append(Probe(step.value, step.repetition, "finished", result))
                    run_ids.append(run_id)
                    order += 1
                    t += 20.0
                assert len(probes) < 100
            conclusion = {"base": dict(base), **protocol.conclusion(probes)}
            conclusions.append(add_run_figures(conclusion, run_ids, store.metrics))
        record = {"type": kind, "conclusions": conclusions}
        axes = {k: list(dict.fromkeys(b[k] for b, _ in systems)) for k in systems[0][0]}
        store.set_provenance(exp, {"axes": axes, "protocol": record})
    return record
