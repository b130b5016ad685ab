"""Runs flattened into rows: column naming, order, JSON and CSV."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest

from greenflow.api.context import Metric, WorkloadResult
from greenflow.errors import StoreError
from greenflow.store import RunStatus, Store
from greenflow.store.export import columns, metric_column, metric_columns, rows, to_json, write_csv


@pytest.mark.parametrize(
    ("labels", "column"),
    [
        ({}, "energy_joules"),
        ({"scope": "host", "host": "n1"}, "energy_joules[host/n1]"),
        ({"scope": "service", "group": "service:kafka"}, "energy_joules[service/kafka]"),
        (
            {"scope": "service", "group": "service:kafka", "host": "n1"},
            "energy_joules[service/kafka@n1]",
        ),
        (
            {"scope": "loadgen", "group": "loadgen:kafka-ingest"},
            "energy_joules[loadgen/kafka-ingest]",
        ),
        ({"scope": "service", "service": "kafka"}, "energy_joules[service/kafka]"),
        ({"scope": "other", "group": "broker-x"}, "energy_joules[other/broker-x]"),
        ({"scope": "host"}, "energy_joules[host]"),
        ({"host": "n1"}, "energy_joules[n1]"),
        ({"scope": "host", "host": "n1", "domain": "dram"}, "energy_joules[host/n1,domain=dram]"),
        ({"domain": "dram"}, "energy_joules[domain=dram]"),
    ],
)
def test_metric_column_naming(labels: dict[str, str], column: str) -> None:
    """Metric columns read name[scope/subject@host,extra=value] as documented."""
    assert metric_column("energy_joules", labels) == column


def test_metric_columns_have_method_columns_and_keep_both_methods() -> None:
    """Each metric column has a .method twin; a second method for the same figure is not dropped."""
    cols = metric_columns(
        [
            Metric("energy_joules", 1.0, "joules", "rapl", {"scope": "host", "host": "n1"}),
            Metric("energy_joules", 2.0, "joules", "model:linear", {"scope": "host", "host": "n1"}),
        ]
    )
    assert cols == {
        "energy_joules[host/n1]": 1.0,
        "energy_joules[host/n1].method": "rapl",
        "energy_joules[host/n1,method=model:linear]": 2.0,
        "energy_joules[host/n1,method=model:linear].method": "model:linear",
    }


def test_rows(results_dir: Path) -> None:
    """One row per run in order, with params, measure window, result, latency and metrics."""
    with Store.open(results_dir) as store:
        data = rows(store, "kafka-sweep")
    assert [r["run_id"] for r in data] == ["aaaa1111", "bbbb2222", "cccc3333"]
    first = data[0]
    assert {
        k: first[k]
        for k in ("experiment", "order", "repetition", "group", "status", "error", "attempts")
    } == {
        "experiment": "kafka-sweep",
        "order": 0,
        "repetition": 0,
        "group": "g",
        "status": "finished",
        "error": None,
        "attempts": 1,
    }
    assert (first["param.rate"], first["param.size"]) == (1000, 512)
    assert (first["measure.start"], first["measure.end"], first["measure.duration_s"]) == (
        105.0,
        135.0,
        30.0,
    )
    assert (first["units"], first["unit"], first["payload_bytes"], first["achieved_rate"]) == (
        30000.0,
        "message",
        15360000.0,
        1000.0,
    )
    assert (first["latency_ms.p50"], first["latency_ms.p99"], first["latency_ms.max"]) == (
        2.0,
        8.0,
        20.0,
    )
    assert first["result.asked_rate_per_s"] == 1000.0
    assert first["energy_joules[host/node-1]"] == 400.0
    assert first["energy_joules[host/node-1].method"] == "rapl"
    assert first["energy_joules[host/node-1,method=model:linear]"] == 250.0
    assert first["energy_joules[service/kafka@node-1]"] == 150.0
    assert first["power_watts[idle/node-1]"] == 20.0
    assert first["measure_duration_seconds.method"] == "clock"

    failed = data[1]
    assert (failed["status"], failed["error"], failed["measure.start"]) == (
        "failed",
        "producer exited with 1\ntraceback...",
        None,
    )
    assert failed["units"] is None
    assert data[2]["status"] == "pending"


def test_every_row_has_every_column_and_json_says_null(results_dir: Path) -> None:
    """Rows share one set of keys (missing values are None), so --json shows null, never a gap."""
    with Store.open(results_dir) as store:
        data = rows(store)
    cols = columns(data)
    assert all(list(row) == cols for row in data)
    pending = json.loads(to_json(data))[2]
    assert pending["status"] == "pending"
    assert pending["units"] is None and pending["energy_joules[host/node-1]"] is None
    assert pending["measure.start"] is None


def test_axes_and_figures_named_like_run_columns_keep_their_own_column(tmp_path: Path) -> None:
    """An axis named `error` is `param.error`; a metric named `error` is `metric.error`: the run's `error` stays."""
    with Store.open(tmp_path) as store:
        exp = store.upsert_experiment("e", "plan.toml", "", 1)
        store.add_run(exp, "r1", {"error": 0.1, "status": "x"}, 0, 0)
        store.set_run_status("r1", RunStatus.RUNNING)
        store.set_run_status("r1", RunStatus.FAILED, "producer exited with 1")
        store.set_result("r1", WorkloadResult(units=10, payload_bytes=100.0))
        store.add_metrics(
            "r1",
            [
                Metric("error", 3.0, "", "workload"),
                Metric("units", 7.0, "", "model:x"),
                Metric("payload_bytes", 100.0, "bytes", "workload"),
            ],
        )
        (row,) = rows(store)
    assert (row["error"], row["param.error"], row["status"], row["param.status"]) == (
        "producer exited with 1",
        0.1,
        "failed",
        "x",
    )
    assert (row["metric.error"], row["metric.error.method"]) == (3.0, "workload")
    assert (row["units"], row["metric.units"]) == (10.0, 7.0)
    # The workload's own copy of a result figure is that figure: no second column.
    assert (row["payload_bytes"], row["payload_bytes.method"]) == (100.0, "workload")
    assert "metric.payload_bytes" not in row


def test_column_order(results_dir: Path) -> None:
    """Columns run from run fields to params, window, result, latency (p50 before max) and metrics."""
    with Store.open(results_dir) as store:
        data = rows(store)
    cols = columns(data)
    assert cols[:12] == [
        "experiment",
        "run_id",
        "order",
        "repetition",
        "group",
        "status",
        "error",
        "attempts",
        "started_at",
        "ended_at",
        "param.rate",
        "param.size",
    ]
    assert cols[12:22] == [
        "measure.start",
        "measure.end",
        "measure.duration_s",
        "units",
        "unit",
        "payload_bytes",
        "achieved_rate",
        "latency_ms.p50",
        "latency_ms.p99",
        "latency_ms.max",
    ]
    assert cols[22] == "result.asked_rate_per_s"
    metric_part = cols[23:]
    assert metric_part == sorted(metric_part)
    assert (
        metric_part.index("energy_joules[host/node-1].method")
        == metric_part.index("energy_joules[host/node-1]") + 1
    )
    assert list(data[0]) == [c for c in cols if c in data[0]], "row keys follow the column order"


def test_rows_unknown_experiment(results_dir: Path) -> None:
    """Asking for an experiment that is not stored names the ones that are."""
    with (
        Store.open(results_dir) as store,
        pytest.raises(StoreError, match=r"no experiment 'x'.*'kafka-sweep'"),
    ):
        rows(store, "x")


def test_to_json_is_strict_json(results_dir: Path) -> None:
    """to_json writes NaN and infinities as null so that strict parsers accept it."""
    with Store.open(results_dir) as store:
        data = rows(store)
    data[0]["weird"] = math.inf
    parsed = json.loads(
        to_json(data), parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}")
    )
    assert parsed[0]["weird"] is None
    assert parsed[0]["energy_joules[host/node-1]"] == 400.0


def test_write_csv(results_dir: Path, tmp_path: Path) -> None:
    """CSV has the column header, empty cells for missing values and JSON for lists."""
    with Store.open(results_dir) as store:
        data = rows(store)
    data[2]["param.topics"] = ["a", "b"]
    target = tmp_path / "runs.csv"
    write_csv(data, target)
    with target.open(newline="") as f:
        read = list(csv.DictReader(f))
    assert list(read[0]) == columns(data)
    assert read[0]["energy_joules[host/node-1]"] == "400.0"
    assert read[1]["units"] == "" and read[1]["error"] == "producer exited with 1\ntraceback..."
    assert json.loads(read[2]["param.topics"]) == ["a", "b"]


def test_write_csv_empty(tmp_path: Path) -> None:
    """No rows still make a valid (empty) CSV file."""
    write_csv([], tmp_path / "empty.csv")
    assert (tmp_path / "empty.csv").read_text() == "\n"
