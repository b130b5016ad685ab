"""examples/k3s-kafka-redpanda.toml validates as shipped with its hosts.yaml (the original
GreenFlow's format): the inventory read relative to the plan, the plugins loaded through
their entry points. `--offline`: its example addresses (192.0.2.0/24) reach no host."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from greenflow.plan.structure import structure
from greenflow_k3s import K3sConfig, load_inventory

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "k3s-kafka-redpanda.toml"


def test_the_example_validates(tmp_path: Path) -> None:
    # A process of its own: the CLI configures logging for good, which other tests of this
    # session (capturing log events) must not inherit.
    result = subprocess.run(
        [sys.executable, "-m", "greenflow", "validate", "--offline", str(EXAMPLE)],
        capture_output=True,
        text=True,
        env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert f"{EXAMPLE}: ok — 12 runs" in result.stdout


def test_its_inventory_has_one_control_three_brokers_and_load_nodes() -> None:
    config = structure({"inventory": "hosts.yaml"}, K3sConfig, path=EXAMPLE, section="platform")
    hosts = load_inventory(config, EXAMPLE).hosts
    roles = [h.role for h in hosts]
    assert roles.count("control") == 1 and roles.count("broker") == 3
    assert roles.count("worker") >= 1 and all(h.user == "root" for h in hosts)
