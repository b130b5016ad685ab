"""examples/local-theodolite.toml and kubernetes-theodolite-demand.toml validate as shipped: the theodolite workload and the
kafka service load through their entry points and check their sections; UC1 and UC2 at two
loads are 4 runs. (tests/integration/test_workload_local.py runs the same workload.)"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from greenflow.cli import main

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "local-theodolite.toml"


def test_the_example_validates(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    result = CliRunner().invoke(main, ["validate", str(EXAMPLE)])
    assert result.exit_code == 0, result.output
    assert f"{EXAMPLE}: ok — 4 runs" in result.output


KUBE_EXAMPLE = EXAMPLE.parent / "kubernetes-theodolite-demand.toml"


def test_the_kubernetes_demand_example_validates(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The demand search over three loads, on Kubernetes with Theodolite's images (no
    cluster needed to check the plan: --offline)."""
    monkeypatch.setenv("HOME", str(tmp_path))
    result = CliRunner().invoke(main, ["validate", "--offline", str(KUBE_EXAMPLE)])
    assert result.exit_code == 0, result.output
    assert "adaptive (theodolite-demand) over 3 point(s)" in result.output
