"""examples/g5k-kafka-redpanda.toml validates as shipped, and `greenflow run --dry-run`
prints its runs and the node-hours its job reserves — without reaching Grid'5000
(`validate --offline`: the API is not reachable from here; the plugins load through their
entry points and check their sections)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from greenflow.cli import main

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "g5k-kafka-redpanda.toml"


def test_the_example_validates(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    result = CliRunner().invoke(main, ["validate", "--offline", str(EXAMPLE)])
    assert result.exit_code == 0, result.output
    # 2 systems × 3 loads × 3 repetitions.
    assert f"{EXAMPLE}: ok — 18 runs" in result.output


def test_the_dry_run_prints_the_node_hours(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    result = CliRunner().invoke(main, ["run", "--dry-run", str(EXAMPLE)])
    assert result.exit_code == 0, result.output
    assert "18 runs in execution order" in result.output
    assert (
        "cost: one job of 7 node(s) of gros at nancy for 3h: 21 node-hours "
        "(35 if extended to 5h)" in " ".join(result.output.split())
    )
