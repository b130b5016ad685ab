"""The max-throughput protocol and its sustained-rate criterion against a real local Kafka
broker: a load far above what the broker takes is not sustained, however the load behaves
once saturated, and the concluded rate's runs — search probe and confirmations — all kept
the rate within the tolerance and p99 within the bound. Checked from the stored runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from greenflow.api import Probe
from greenflow.builtin.protocols import ABOVE, BEHIND, BELOW, LATENCY, Criterion
from greenflow.store import Store

BROKER = """
[platform]
type = "local"

[[services]]
type = "kafka"
heap = "384m"
overrides = {{ "log.segment.delete.delay.ms" = "0" }}
"""

SEARCH = (
    """
[experiment]
name = "kafka-max"
baseline = 0
output = "{out}"
"""
    + BROKER
    + """
[workload]
type = "kafka-ingest"
message_size = 1024
warmup = "4s"
duration = "3s"
producer_heap = "256m"
min_achieved_ratio = 0   # a probe that falls short is a finding, not a failure

[protocol]
type = "max-throughput"
start = 20000
precision = 0.25
max_runs = 5
"""
)

OVERLOAD = (
    """
[experiment]
name = "kafka-overload"
baseline = 0
output = "{out}"
"""
    + BROKER
    + """
[workload]
type = "kafka-ingest"
message_size = 1024
# Far more than two cores carry (the generator alone could not build that many records).
load = 600000
warmup = "3s"
duration = "3s"
producer_heap = "256m"
min_achieved_ratio = 0
"""
)


def _run(tmp_path: Path, plan_text: str, *, expect: int = 0) -> subprocess.CompletedProcess[str]:
    """``greenflow run`` of ``plan_text`` (``{out}`` = tmp_path/out); exits ``expect``."""
    plan = tmp_path / "plan.toml"
    plan.write_text(plan_text.format(out=tmp_path / "out"))
    run = subprocess.run(
        [sys.executable, "-m", "greenflow", "run", str(plan)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert run.returncode == expect, run.stderr[-3000:]
    return run


@pytest.mark.timeout(900)
def test_concluded_rate_runs_kept_the_rate_and_the_latency(tmp_path: Path) -> None:
    """The conclusion is confirmed by three more runs; every run at it finished with achieved
    ÷ asked within the tolerance, p99 within the bound and the generator on schedule; every
    value above it had a probe that was not sustained; each probe's stored verdict is the
    criterion's on its stored result."""
    _run(tmp_path, SEARCH)
    with Store.open(tmp_path / "out") as store:
        exp = store.get_experiment("kafka-max")
        assert exp is not None
        (conclusion,) = exp.provenance["protocol"]["conclusions"]
        probes = {
            row.run_id: Probe(
                row.params["load"], row.repetition, row.status.value, store.result(row.run_id)
            )
            for row in store.get_runs(exp.id)
        }
    crit = conclusion["criterion"]
    criterion = Criterion(tolerance=crit["tolerance"], p99_factor=crit["p99_factor"])
    bound = crit["p99_bound_ms"]
    assert bound == pytest.approx(crit["p99_factor"] * crit["reference_p99_ms"])
    for pt in conclusion["curve"]:
        verdict = criterion.judge(probes[pt["run_id"]], bound)
        assert pt["sustained"] == verdict.sustained, pt
    top = conclusion["max_sustained"]
    assert top is not None and conclusion["confirmed"], conclusion
    at_top = [probes[pt["run_id"]] for pt in conclusion["curve"] if pt["value"] == top]
    assert sorted(p.repetition for p in at_top) == [0, 1, 2, 3]
    for p in at_top:
        assert p.status == "finished" and p.result is not None
        assert p.ratio is not None and abs(p.ratio - 1) <= crit["tolerance"], p
        assert p.result.latency_ms["p99"] <= bound, p
        assert p.result.metrics["schedule_lag_trend_s_per_s"] <= crit["schedule_limit"], p
    # Every value above it is unsustained: at least one of its probes failed (a search probe
    # may have passed once and its confirmation not, which is what confirmations are for).
    above: dict[float, list[bool]] = {}
    for pt in conclusion["curve"]:
        if float(pt["value"]) > top:
            above.setdefault(float(pt["value"]), []).append(pt["sustained"])
    assert above and not any(all(verdicts) for verdicts in above.values()), above
    assert conclusion["first_unsustained"] == min(above)


@pytest.mark.timeout(600)
def test_a_load_far_above_capacity_is_not_sustained(tmp_path: Path) -> None:
    """600k msg/s of 1 KiB asked of a local broker: the run finishes, the broker's count
    never exceeds what was asked by more than the tolerance (nothing bursts to catch up),
    and the criterion finds it unsustained: short of the rate, behind schedule, or slow."""
    _run(tmp_path, OVERLOAD)
    with Store.open(tmp_path / "out") as store:
        exp = store.get_experiment("kafka-overload")
        assert exp is not None
        (row,) = store.get_runs(exp.id)
        result = store.result(row.run_id)
    assert row.status.value == "finished" and result is not None
    probe = Probe(600_000, 0, "finished", result)
    verdict = Criterion().judge(probe, None)
    assert not verdict.sustained
    assert ABOVE not in verdict.reasons and {BELOW, BEHIND} & set(verdict.reasons), verdict
    assert result.metrics["producer_missed_sends"] > 0
    assert result.metrics["schedule_lag_trend_s_per_s"] > 0.05
    # With its own p99 bound (50 × a low load's few ms) it is too slow as well.
    assert LATENCY in Criterion().judge(probe, 50.0).reasons


FAR_BEYOND = (
    OVERLOAD.replace("kafka-overload", "kafka-far-beyond")
    .replace("load = 600000", "load = 10000000")
    .replace("min_achieved_ratio = 0\n", "")
)


@pytest.mark.timeout(600)
def test_asking_far_more_than_the_machine_can_fails_saying_the_rate_reached(
    tmp_path: Path,
) -> None:
    """``load = 10000000`` with the default min_achieved_ratio: the run fails on time with
    "achieved N msg/s", and the rate it reached is stored with the failed run."""
    run = _run(tmp_path, FAR_BEYOND, expect=1)
    with Store.open(tmp_path / "out") as store:
        exp = store.get_experiment("kafka-far-beyond")
        assert exp is not None
        (row,) = store.get_runs(exp.id)
        result = store.result(row.run_id)
    assert row.status.value == "failed"
    assert row.error is not None and "execute failed: achieved " in row.error, row.error
    assert "of the asked 1e+07 msg/s" in row.error
    assert result is not None and result.achieved_rate is not None
    assert 0 < result.achieved_rate < 0.9 * 10_000_000
    assert f"achieved {result.achieved_rate:.0f} msg/s" in row.error
    assert "achieved" in run.stdout + run.stderr
