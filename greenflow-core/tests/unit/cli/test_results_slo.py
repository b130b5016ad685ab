"""A workload's verdict on a service-level objective (``slo_<name>_met`` in its result's
metrics, Theodolite's lag trend) is a column of `greenflow results`: met, missed, or empty
for a run that judged none."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner
from protocol_records import energy_metrics

from greenflow.api import WorkloadResult
from greenflow.cli._app import App
from greenflow.cli.results import results
from greenflow.store import RunStatus, Store


def test_each_run_says_whether_it_met_its_slo(tmp_path: Path) -> None:
    out = tmp_path / "o"
    verdicts = [1.0, 0.0, None]
    with Store.open(out) as store:
        exp = store.upsert_experiment("slo", "plan.toml", '[experiment]\nname = "slo"\n', 1)
        for i, met in enumerate(verdicts):
            run_id = f"r{i}"
            store.add_run(exp, run_id, {"load": 1000 * (i + 1)}, 0, i, group="dep")
            store.set_run_status(run_id, RunStatus.RUNNING)
            store.record_phase(exp, run_id, "measure", 1.9e9 + 20 * i)
            store.record_phase(exp, run_id, "cooldown", 1.9e9 + 20 * i + 10)
            metrics = {} if met is None else {"slo_lag_trend_met": met}
            store.set_result(run_id, WorkloadResult(units=10000, unit="record", metrics=metrics))
            store.add_metrics(run_id, energy_metrics(10000))
            store.set_run_status(run_id, RunStatus.FINISHED)
    text = CliRunner(env={"COLUMNS": "250"}).invoke(results, [str(out)], obj=App()).stdout
    header = next(line for line in text.splitlines() if "SLO lag_trend" in line)
    rows = [line for line in text.splitlines() if line.startswith("│") and "finished" in line]
    cells = [line.split("│")[-2].strip() for line in rows]
    assert header and cells == ["met", "missed", ""]
