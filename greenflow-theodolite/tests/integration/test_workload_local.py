"""The theodolite workload end to end on the local platform, through `greenflow run`: a real
Kafka broker, the registry stand-in, the use case's application and the load generator as
JVMs; per run the input records over MEASURE, the lag trend and its SLO verdict, energy per
record (this VM has no RAPL: the model) with the application attributed as a service; and
a demand search over instances. UC1 also on Flink.

Real: the broker, Kafka Streams, the apps and generator (GreenFlow's builds of Theodolite's
use cases), the runner and the store. SIMULATED: the host's energy (the model, as for every
local test on this VM) and the schema registry (GreenFlow's stand-in).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from greenflow.store import Store
from greenflow.testing.cli import run_greenflow

PLAN = """\
[experiment]
name = "{name}"
baseline = "3s"
output = "{out}"
warmup_runs = 0
{protocol}

[platform]
type = "local"

[[services]]
type = "kafka"

[workload]
type = "theodolite"
use_case = "{uc}"
engine = "{engine}"
load = {load}
partitions = 4
warmup = "8s"
duration = "12s"
lag_interval = "2s"
downsample_interval = "2s"
"""


def _runs(out: Path) -> list[dict[str, Any]]:
    with Store.open(out, create=False) as store:
        (exp,) = store.experiments()
        rows = []
        for run in store.get_runs(exp.id):
            result = store.result(run.run_id)
            rows.append(
                {
                    "params": dict(run.params),
                    "status": run.status.value,
                    "error": run.error,
                    "result": result,
                    "metrics": store.metrics(run.run_id),
                    "window": run.window("measure"),
                    "provenance": dict(exp.provenance),
                }
            )
        return rows


@pytest.mark.timeout(900)
@pytest.mark.parametrize(
    ("uc", "engine"), [("uc1", "kstreams"), ("uc2", "kstreams"), ("uc1", "flink")]
)
def test_one_run_measures_records_lag_and_energy_per_record(
    uc: str, engine: str, tmp_path: Path
) -> None:
    """Kafka Streams and Flink alike (Flink: one JVM running a MiniCluster, its source
    committing at checkpoints, which the lag is read from)."""
    plan = PLAN.format(
        name=f"theo-{uc}", out=tmp_path / "out", uc=uc, engine=engine, load=500, protocol=""
    )
    (tmp_path / "plan.toml").write_text(plan)
    run = run_greenflow(tmp_path, "run", "plan.toml")
    assert run.returncode == 0, run.stderr[-4000:]
    (row,) = _runs(tmp_path / "out")
    result, window = row["result"], row["window"]
    assert result.unit == "record"
    # The generator's records over MEASURE, counted at its edges: 500/s within 5 %.
    assert result.units == pytest.approx(500 * window.duration_s, rel=0.05)
    metrics = result.metrics
    # One instance keeps up with 500 records/s: the lag stays flat, the SLO holds.
    assert abs(metrics["lag_trend_records_per_s"]) < 100 and metrics["slo_lag_trend_met"] == 1
    if uc == "uc2":
        assert metrics["output_records_per_s"] > 0  # windows closed and written
    by_scope = {
        (m.labels.get("scope"), m.labels.get("group")): m
        for m in row["metrics"]
        if m.name == "energy_per_record_joules"
    }
    assert (("host", None) in by_scope) and by_scope[("host", None)].value > 0
    app = by_scope[("service", f"service:theodolite-{uc}")]
    assert app.value > 0 and app.method.endswith("+cpu-share")


@pytest.mark.timeout(900)
def test_a_demand_search_over_instances(tmp_path: Path) -> None:
    """theodolite-demand over instances [1, 2] at two small loads: one instance keeps up
    with both, so each load's demand is 1, and with the lower bound the second load starts
    at it (no run with 0 or below)."""
    protocol = '\n[protocol]\ntype = "theodolite-demand"\ninstances = [1, 2]\n'
    (tmp_path / "plan.toml").write_text(
        PLAN.format(
            name="theo-demand",
            out=tmp_path / "out",
            uc="uc1",
            engine="kstreams",
            load="[300, 600]",
            protocol=protocol,
        )
    )
    run = run_greenflow(tmp_path, "run", "plan.toml")
    assert run.returncode == 0, run.stderr[-4000:]
    rows = _runs(tmp_path / "out")
    conclusions = rows[0]["provenance"]["protocol"]["conclusions"]
    assert [c["base"]["load"] for c in conclusions] == [300, 600]
    assert [c["demand"] for c in conclusions] == [1, 1]
    assert all(pt.get("energy_per_unit_joules") for c in conclusions for pt in c["curve"])
    assert {r["params"]["instances"] for r in rows} == {1}
