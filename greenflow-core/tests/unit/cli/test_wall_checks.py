"""`greenflow results` and the report list each run's energy_to_wall_ratio per host — how
much of the machine an instrument (RAPL, Scaphandre) saw against the wall — and say nothing
of it where no host was measured at the plug."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner
from protocol_records import energy_metrics

from greenflow.api import Metric, WorkloadResult
from greenflow.cli._app import App
from greenflow.cli.results import results
from greenflow.report import render_report
from greenflow.store import RunStatus, Store

WALL = "kwollect:wattmeter"


def _store(out: Path, ratios: dict[str, float]) -> None:
    with Store.open(out) as store:
        exp = store.upsert_experiment("walls", "plan.toml", '[experiment]\nname = "walls"\n', 1)
        for i, (host, ratio) in enumerate(sorted(ratios.items())):
            run_id = f"r{i}"
            store.add_run(exp, run_id, {"load": 1000}, i, i, group="dep")
            store.set_run_status(run_id, RunStatus.RUNNING)
            store.record_phase(exp, run_id, "measure", 1.9e9 + 20 * i)
            store.record_phase(exp, run_id, "cooldown", 1.9e9 + 20 * i + 10)
            store.set_result(run_id, WorkloadResult(units=10000, achieved_rate=1000))
            metrics = energy_metrics(10000)
            metrics.append(
                Metric(
                    "energy_to_wall_ratio",
                    ratio,
                    "ratio",
                    f"rapl/{WALL}",
                    {"host": host, "scope": "host"},
                )
            )
            store.add_metrics(run_id, metrics)
            store.set_run_status(run_id, RunStatus.FINISHED)


def test_results_list_every_runs_ratio_per_host(tmp_path: Path) -> None:
    _store(tmp_path / "o", {"gros-2": 0.412, "gros-3": 0.587})
    out = CliRunner(env={"COLUMNS": "200"}).invoke(results, [str(tmp_path / "o")], obj=App())
    assert out.exit_code == 0, out.output
    text = out.stdout
    assert "instruments against the wall" in text
    rows = [line for line in text.splitlines() if WALL in line and "│" in line]
    cells = [[c.strip() for c in r.split("│")[1:-1]] for r in rows]
    assert cells == [
        ["0", "gros-2", "rapl", WALL, "0.412"],
        ["1", "gros-3", "rapl", WALL, "0.587"],
    ]


def test_the_report_has_the_section_only_when_there_is_a_wall(tmp_path: Path) -> None:
    _store(tmp_path / "o", {"gros-2": 0.412})
    with Store.open(tmp_path / "o", create=False) as store:
        html = render_report(store)
    assert "Instruments against the wall" in html and "0.412" in html
    with Store.open(tmp_path / "p") as store:
        exp = store.upsert_experiment("none", "plan.toml", '[experiment]\nname = "none"\n', 1)
        store.add_run(exp, "r", {}, 0, 0, group="dep")
        html = render_report(store)
    assert "Instruments against the wall" not in html
