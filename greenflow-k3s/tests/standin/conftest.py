"""The k3s stand-in's artefacts, built once per session for every stand-in test."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

STANDIN = Path(__file__).resolve().parents[3] / "scripts" / "k3s-standin"


@pytest.fixture(scope="session")
def artefacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """install.sh and k3s as scripts/k3s-standin/build makes them; the tests skip, with the
    script's reason, where this machine cannot run the stand-in (exit 77: binaries,
    containerd, runc or the CNI plugins missing)."""
    out = tmp_path_factory.mktemp("k3s-standin")
    built = subprocess.run(
        ["bash", str(STANDIN / "build"), str(out)], capture_output=True, text=True, check=False
    )
    if built.returncode == 77:
        pytest.skip(built.stderr.strip())
    assert built.returncode == 0, built.stderr
    return out
