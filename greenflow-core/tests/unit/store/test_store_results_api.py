"""``greenflow.results``: stored runs and samples for notebooks, with or without pandas."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from greenflow import results
from greenflow.errors import StoreError

HAS_PANDAS = importlib.util.find_spec("pandas") is not None


@pytest.fixture
def no_pandas(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make `import pandas` fail, as on an install without it."""
    monkeypatch.setitem(sys.modules, "pandas", None)


@pytest.mark.usefixtures("no_pandas")
def test_load_without_pandas_gives_dicts(results_dir: Path) -> None:
    """Without pandas, load returns one dict per run with the export's columns."""
    data = results.load(results_dir)
    assert isinstance(data, list)
    assert [r["run_id"] for r in data] == ["aaaa1111", "bbbb2222", "cccc3333"]
    assert data[0]["energy_joules[host/node-1]"] == 400.0


@pytest.mark.usefixtures("no_pandas")
def test_load_samples_without_pandas(results_dir: Path) -> None:
    """load_samples gives the run's samples in time order, by full id or unique prefix."""
    data = results.load_samples(str(results_dir), "aaaa")
    assert [(s["timestamp"], s["metric"]) for s in data] == [
        (105.0, "host_energy_joules"),
        (120.0, "power_watts"),
        (135.0, "host_energy_joules"),
    ]
    assert data[1]["labels"] == {"domain": "package-0"}
    assert data[1]["run_id"] == "aaaa1111"
    assert results.load_samples(results_dir, "aaaa1111") == data


@pytest.mark.skipif(not HAS_PANDAS, reason="pandas is not installed in this environment")
def test_load_with_pandas_gives_a_dataframe(results_dir: Path) -> None:
    """With pandas, load returns a DataFrame whose columns follow the export's order."""
    frame = results.load(results_dir, "kafka-sweep")
    assert list(frame["run_id"]) == ["aaaa1111", "bbbb2222", "cccc3333"]
    assert list(frame.columns[:2]) == ["experiment", "run_id"]
    samples = results.load_samples(results_dir, "aaaa1111")
    assert list(samples.columns) == list(results.SAMPLE_COLUMNS)


def test_load_errors(results_dir: Path, tmp_path: Path) -> None:
    """Missing stores, experiments and runs are StoreErrors with what was asked for."""
    with pytest.raises(StoreError, match="no GreenFlow store"):
        results.load(tmp_path / "nowhere")
    with pytest.raises(StoreError, match="no experiment 'nope'"):
        results.load(results_dir, "nope")
    with pytest.raises(StoreError, match="no run 'zzz'"):
        results.load_samples(results_dir, "zzz")


def test_load_samples_ambiguous_prefix(results_dir: Path) -> None:
    """A run id prefix that matches several runs is refused with the candidates."""
    with pytest.raises(StoreError, match=r"ambiguous.*aaaa1111"):
        results.load_samples(results_dir, "")
