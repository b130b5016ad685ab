"""``greenflow results``: the system under test's figures first, idle power and warnings
under the tables, through click's CliRunner on a store written with the Store API."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from greenflow.api.context import Metric, WorkloadResult
from greenflow.cli._app import App
from greenflow.cli.results import results
from greenflow.store import RunStatus, Store
from greenflow.store.db import BaselineRow

MODEL = "model:linear"
SHARED = MODEL + "+cpu-share"


def _metrics(
    host_j: float, idle_j: float, kafka_j: float, loadgen_j: float, units: float
) -> list[Metric]:
    """What the runner stores for one host "vm" under the model, with kafka and the load
    generator attributed and the rest as other."""
    active = host_j - idle_j
    other = active - kafka_j - loadgen_j
    host = {"host": "vm", "scope": "host"}
    out = [
        Metric("energy_joules", host_j, "joules", MODEL, host),
        Metric("idle_energy_joules", idle_j, "joules", MODEL, {"host": "vm", "scope": "idle"}),
        Metric("active_energy_joules", active, "joules", MODEL, host),
        Metric("energy_per_message_joules", host_j / units, "joules", MODEL, host),
        Metric("active_energy_per_message_joules", active / units, "joules", MODEL, host),
        Metric("active_energy_uncertainty_joules", 0.1, "joules", MODEL, host),
    ]
    for scope, group, energy in (
        ("service", "service:kafka", kafka_j),
        ("loadgen", "loadgen:kafka-ingest", loadgen_j),
        ("other", None, other),
    ):
        labels = {"host": "vm", "scope": scope, **({"group": group} if group else {})}
        out += [
            Metric("energy_joules", energy, "joules", SHARED, labels),
            Metric("energy_per_message_joules", energy / units, "joules", SHARED, labels),
            Metric("energy_share_ratio", energy / host_j, "ratio", SHARED, labels),
        ]
    return out


@pytest.fixture
def kafka_dir(tmp_path: Path) -> Path:
    """Experiment "kafka": loads 1000 and 2000, three finished repetitions each (kafka
    10 % of the host's 20 J at 1000, 20 % of 25 J at 2000; the load generator 25 % and
    20 %), 10,000 / 20,000 messages; opening and closing baselines (model, settled); a
    repetitions warning and a background-load warning on the run of order 4."""
    out = tmp_path / "greenflow-output"
    with Store.open(out) as store:
        exp = store.upsert_experiment("kafka", "plan.toml", 'name = "kafka"\n', 3)
        order = 0
        for rep in range(3):
            for load, host_j, kafka_j, loadgen_j in (
                (1000, 20.0, 2.0, 5.0),
                (2000, 25.0, 5.0, 5.0),
            ):
                run_id = f"r{load}-{rep}"
                units = 10.0 * load
                store.add_run(exp, run_id, {"load": load}, rep, order, group="dep1")
                store.set_run_status(run_id, RunStatus.RUNNING)
                store.record_phase(exp, run_id, "measure", 100.0 + order)
                store.record_phase(exp, run_id, "cooldown", 110.0 + order)
                store.set_result(
                    run_id,
                    WorkloadResult(units, "message", achieved_rate=load, latency_ms={"p99": 5.0}),
                )
                # A little spread between repetitions, so the intervals are not 0.
                wiggle = 1.0 + 0.01 * rep
                store.add_metrics(
                    run_id, _metrics(host_j * wiggle, 10.0, kafka_j * wiggle, loadgen_j, units)
                )
                store.set_run_status(run_id, RunStatus.FINISHED)
                order += 1
        for kind, start, mean in (("opening", 50.0, 1.732), ("closing", 200.0, 1.766)):
            store.add_baseline(
                BaselineRow(
                    exp, "dep1", kind, start, start + 10, "vm", MODEL, mean, 0.095, 10, True, 4.0
                )
            )
        store.add_warning(exp, None, "repetitions", "repetitions = 3 is few; 5 would be better")
        store.add_warning(exp, "r1000-2", "background-load:vm", "7% of vm's busy CPU time")
    return out


def invoke(*args: str) -> tuple[int, str]:
    # A wide terminal, so that rich does not wrap the cells the tests read.
    result = CliRunner(env={"COLUMNS": "300"}).invoke(results, list(args), obj=App())
    return result.exit_code, result.stdout


def _header(out: str, first: str) -> list[str]:
    """The header cells of the table whose first header cell is ``first``."""
    for line in out.splitlines():
        cells = [c.strip() for c in line.replace("┃", "│").split("│")[1:-1]]
        if cells and cells[0] == first:
            return cells
    raise AssertionError(f"no table headed {first!r} in:\n{out}")


def _row(out: str, first: str) -> list[str]:
    for line in out.splitlines():
        cells = [c.strip() for c in line.split("│")[1:-1]]
        if cells and cells[0] == first:
            return cells
    raise AssertionError(f"no row {first!r} in:\n{out}")


def test_table_puts_the_service_first(kafka_dir: Path) -> None:
    """Per run: kafka's J per message and share of the host come before the host's J per
    message, then the load generator's share."""
    code, out = invoke(str(kafka_dir))
    assert code == 0, out
    head = _header(out, "#")
    assert head[head.index("rate /s") + 1 :] == [
        "kafka J per message",
        "kafka % of host",
        "host J per message",
        "loadgen % of host",
        "energy J",
        "method",
    ]
    row = dict(zip(head, _row(out, "0"), strict=True))
    assert row["kafka J per message"] == "0.0002"  # 2 J / 10,000 messages
    assert row["kafka % of host"] == "10.0 %"
    assert row["host J per message"] == "0.002"
    assert row["loadgen % of host"] == "25.0 %"
    assert row["method"] == MODEL


def test_summary_puts_the_service_first_with_intervals(kafka_dir: Path) -> None:
    """--summary: kafka's J per message and share (mean ± CI), then the host's J and
    dynamic J per message, then the load generator's share."""
    code, out = invoke(str(kafka_dir), "--summary")
    assert code == 0, out
    head = _header(out, "load")
    assert head[head.index("n") + 1 : head.index("n") + 6] == [
        "kafka J per message",
        "kafka % of host",
        "host J per message",
        "dynamic J per message",
        "loadgen % of host",
    ]
    row = dict(zip(head, _row(out, "2000"), strict=True))
    # kafka: 5.00, 5.05, 5.10 J over 20,000 messages; shares 20 % each.
    assert row["kafka J per message"].startswith("0.00025")
    assert "±" in row["kafka J per message"]
    assert row["kafka % of host"] == "20.0 ± 0.0 %"
    assert row["method"] == MODEL


def test_idle_power_is_printed_with_spread_settling_drift_and_model(kafka_dir: Path) -> None:
    """Under the tables: per host the opening baseline (mean ± sd, intervals, settled),
    the closing one, the drift, and "(model)" with what that means."""
    for args in ((), ("--summary",)):
        code, out = invoke(str(kafka_dir), *args)
        assert code == 0, out
        row = dict(zip(_header(out, "host"), _row(out, "vm"), strict=True))
        assert row["opening W"] == "1.732 ± 0.095 (n=10)"
        assert row["settled"] == "yes after 4 s"
        assert row["closing W"] == "1.766 ± 0.095 (n=10)"
        assert row["drift"] == "+0.034 W (+2.0 %)"
        assert row["method"] == "model:linear (model)"
        assert row["deployment"] == "1 of 1 (6 runs, from #0)"
        assert "idle power is the model's idle_watts input" in out


def test_warnings_are_printed_for_the_experiment_and_runs(kafka_dir: Path) -> None:
    """The experiment's warnings, then each run's under its # in the table."""
    code, out = invoke(str(kafka_dir))
    assert code == 0, out
    lines = out[out.index("warnings (2):") :].splitlines()
    assert lines[1].strip() == "repetitions: repetitions = 3 is few; 5 would be better"
    assert lines[2].strip() == "#4 background-load:vm: 7% of vm's busy CPU time"


def test_no_baseline_is_said(tmp_path: Path) -> None:
    """A store with finished runs and no baseline says so instead of an empty table."""
    out = tmp_path / "o"
    with Store.open(out) as store:
        exp = store.upsert_experiment("e", "plan.toml", "", 1)
        store.add_run(exp, "a", {"load": 1}, 0, 0)
        store.set_run_status("a", RunStatus.RUNNING)
        store.set_run_status("a", RunStatus.FINISHED)
    code, text = invoke(str(out))
    assert code == 0, text
    assert "idle power: no baseline stored" in text
    assert "warnings" not in text


def test_json_help_and_columns(kafka_dir: Path) -> None:
    """--help says --json prints an array of run objects; the array keeps the export's
    columns and has the attributed shares."""
    help_text = CliRunner().invoke(results, ["--help"]).output
    assert "JSON array of run objects" in " ".join(help_text.split())
    code, out = invoke(str(kafka_dir), "--json")
    assert code == 0
    data = json.loads(out)
    assert isinstance(data, list) and len(data) == 6
    first = data[0]
    for column in ("experiment", "run_id", "param.load", "units", "energy_joules[host/vm]"):
        assert column in first
    assert first["energy_share_ratio[service/kafka@vm]"] == pytest.approx(0.1)
