"""examples/k3s-kafka-redpanda.toml validates as shipped with its hosts.yaml (the original
GreenFlow's format): the inventory read relative to the plan, the plugins loaded through
their entry points. `--offline`: its example addresses (192.0.2.0/24) reach no host."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from greenflow.cli import main
from greenflow.plan.structure import structure
from greenflow_k3s import K3sConfig, load_inventory

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "k3s-kafka-redpanda.toml"


def test_the_example_validates(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    result = CliRunner().invoke(main, ["validate", "--offline", str(EXAMPLE)])
    assert result.exit_code == 0, result.output
    assert f"{EXAMPLE}: ok — 12 runs" in result.output


def test_its_inventory_has_one_control_three_brokers_and_load_nodes() -> None:
    config = structure({"inventory": "hosts.yaml"}, K3sConfig, path=EXAMPLE, section="platform")
    hosts = load_inventory(config, EXAMPLE).hosts
    roles = [h.role for h in hosts]
    assert roles.count("control") == 1 and roles.count("broker") == 3
    assert roles.count("worker") >= 1 and all(h.user == "root" for h in hosts)
