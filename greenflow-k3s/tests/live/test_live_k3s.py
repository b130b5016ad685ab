"""Against REAL hosts you name (``nox -s live_k3s``, never part of ``nox -s tests``): the
real k3s install script (get.k3s.io, the pinned release) on the hosts of your inventory,
every node Ready with its role's label, then k3s removed from every host.

Set ``GREENFLOW_K3S_LIVE_INVENTORY`` to a hosts.yaml (the original GreenFlow's format,
docs/k3s.md) whose hosts you may install k3s on and remove it from; the hosts need
internet access (the script and the release come from GitHub). Skips without it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from greenflow.testing.cli import run_greenflow

PLAN = """\
[experiment]
name = "k3s-live"
baseline = "0s"
output = "{out}"

[platform]
type = "k3s"
inventory = "{inventory}"

[workload]
type = "command"
command = "true"
"""


@pytest.mark.timeout(3600)
def test_the_real_install_on_your_hosts_and_its_removal(tmp_path: Path) -> None:
    inventory = os.environ.get("GREENFLOW_K3S_LIVE_INVENTORY")
    if not inventory:
        pytest.skip("set GREENFLOW_K3S_LIVE_INVENTORY to a hosts.yaml (nox -s live_k3s)")
    (tmp_path / "plan.toml").write_text(
        PLAN.format(out=tmp_path / "out", inventory=Path(inventory).resolve())
    )
    validate = run_greenflow(tmp_path, "validate", "plan.toml")
    assert validate.returncode == 0, validate.stderr[-3000:]
    try:
        up = run_greenflow(tmp_path, "up", "plan.toml")
        assert up.returncode == 0, up.stderr[-4000:]
        run = run_greenflow(tmp_path, "run", "plan.toml")
        assert run.returncode == 0, run.stderr[-4000:]
        assert run.stderr.count("k3s.kept") >= 1  # the cluster up was reused
    finally:
        down = run_greenflow(tmp_path, "down", "plan.toml")
    assert down.returncode == 0, down.stderr[-4000:]
    assert "k3s.uninstalled" in down.stderr
