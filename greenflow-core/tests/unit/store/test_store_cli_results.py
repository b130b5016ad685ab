"""``greenflow results``: table, --json, --csv and errors, through click's CliRunner."""

from __future__ import annotations

import csv
import importlib.util
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from greenflow.api.context import Metric
from greenflow.cli._app import App
from greenflow.cli.results import host_energy, results


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(results, list(args), obj=App())
    return result.exit_code, result.stdout, result.stderr


def test_json(results_dir: Path) -> None:
    """--json prints every run with its flattened columns as a JSON array on stdout."""
    code, out, _ = invoke(str(results_dir), "--json")
    assert code == 0
    data = json.loads(out)
    assert [r["run_id"] for r in data] == ["aaaa1111", "bbbb2222", "cccc3333"]
    assert data[0]["energy_joules[service/kafka@node-1]"] == 150.0
    assert data[1]["status"] == "failed"


def test_json_experiment_filter(results_dir: Path) -> None:
    """--experiment limits the output to one experiment."""
    code, out, _ = invoke(str(results_dir), "--experiment", "kafka-sweep", "--json")
    assert code == 0
    assert {r["experiment"] for r in json.loads(out)} == {"kafka-sweep"}


def test_csv_file(results_dir: Path, tmp_path: Path) -> None:
    """--csv FILE writes one row per run and says so on stderr."""
    target = tmp_path / "runs.csv"
    code, out, err = invoke(str(results_dir), "--csv", str(target))
    assert code == 0
    assert out == ""
    assert "wrote 3 runs" in err
    with target.open(newline="") as f:
        read = list(csv.DictReader(f))
    assert [r["param.rate"] for r in read] == ["1000", "2000", "4000"]
    assert read[0]["energy_joules[host/node-1].method"] == "rapl"


def test_csv_stdout(results_dir: Path) -> None:
    """--csv - writes the CSV to stdout."""
    code, out, _ = invoke(str(results_dir), "--csv", "-")
    assert code == 0
    assert len(list(csv.DictReader(io.StringIO(out)))) == 3


def test_table(results_dir: Path) -> None:
    """The default table shows params, status, units, energy summed over hosts, J per unit and the error."""
    code, out, _ = invoke(str(results_dir))
    assert code == 0, out
    assert "kafka-sweep: 3 runs (1 finished, 1 failed, 1 pending)" in out
    assert "finished" in out and "failed" in out and "pending" in out
    assert "30,000" in out
    assert "600.0" in out  # 400 J on node-1 + 200 J on node-2, RAPL only
    assert "0.02" in out  # 600 J / 30000 messages
    assert "rapl" in out
    assert "#1 failed: producer exited with 1" in out
    assert "traceback" not in out


def test_default_output_dir(results_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without OUTPUT_DIR, ./greenflow-output is read."""
    monkeypatch.chdir(results_dir.parent)
    code, out, _ = invoke("--json")
    assert code == 0
    assert len(json.loads(out)) == 3


def test_no_store_is_one_message(tmp_path: Path) -> None:
    """No store in the directory: one error line, exit 1, no traceback."""
    code, _, err = invoke(str(tmp_path / "empty"))
    assert code == 1
    assert err.startswith("Error: no GreenFlow store in")
    assert "Traceback" not in err


def test_unknown_experiment_is_one_message(results_dir: Path) -> None:
    """An unknown --experiment names the stored ones."""
    code, _, err = invoke(str(results_dir), "-e", "nope", "--json")
    assert code == 1
    assert "no experiment 'nope'" in err and "'kafka-sweep'" in err


def test_parquet_without_pandas_says_what_to_install(results_dir: Path, tmp_path: Path) -> None:
    """--parquet without pandas/pyarrow is one message naming the packages."""
    if importlib.util.find_spec("pandas") and importlib.util.find_spec("pyarrow"):
        pytest.skip("pandas and pyarrow are installed: the refusal cannot be seen here")
    code, _, err = invoke(str(results_dir), "--parquet", str(tmp_path / "x.parquet"))
    assert code == 1
    assert "pip install pandas pyarrow" in err


def test_host_energy_prefers_a_stored_total_and_one_method() -> None:
    """Host energy is the stored total if any, else the per-host sum of the first method."""
    per_host = [
        Metric("energy_joules", 10.0, "joules", "rapl", {"scope": "host", "host": "a"}),
        Metric("energy_joules", 5.0, "joules", "rapl", {"scope": "host", "host": "b"}),
        Metric("energy_joules", 99.0, "joules", "kwollect", {"scope": "host", "host": "a"}),
        Metric(
            "energy_joules", 7.0, "joules", "rapl", {"scope": "service", "group": "service:kafka"}
        ),
    ]
    assert host_energy(per_host) == (15.0, "rapl")
    total = Metric("energy_joules", 16.0, "joules", "rapl", {"scope": "host"})
    assert host_energy([*per_host, total]) == (16.0, "rapl")
    energy, method = host_energy([])
    assert method == "" and energy != energy  # NaN


def test_parquet(results_dir: Path, tmp_path: Path) -> None:
    """--parquet FILE writes the same rows as the CSV, where pandas and pyarrow exist."""
    pandas = pytest.importorskip("pandas", reason="pandas is not installed")
    pytest.importorskip("pyarrow", reason="pyarrow is not installed")
    target = tmp_path / "runs.parquet"
    code, _, err = invoke(str(results_dir), "--parquet", str(target))
    assert code == 0, err
    frame = pandas.read_parquet(target)
    assert list(frame["run_id"]) == ["aaaa1111", "bbbb2222", "cccc3333"]
