"""A real single-node Kubernetes cluster (scripts/kube-node) for the tests in this folder.

Only ``nox -s tests_kube_node`` runs them (it sets ``GREENFLOW_KUBE_NODE_TESTS=1``; the
parent conftest leaves this folder out otherwise): the node needs root, containerd and
minutes, and changes host networking (a bridge, iptables rules, two sysctls) while it is up.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from greenflow_kafka.distribution import KafkaDistribution

ROOT = Path(__file__).resolve().parents[3]
KUBE_NODE = ROOT / "scripts" / "kube-node"


def _script(name: str, env: dict[str, str], timeout_s: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(KUBE_NODE / name)],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


@pytest.fixture(scope="session")
def kube_node(
    kafka_distribution: KafkaDistribution, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    """Start the node (``scripts/kube-node/up``: cached binaries and images, a fresh cluster
    state, node Ready and labelled broker + worker); yield its kubeconfig; stop it after the
    session (``down``). Skips with the reason when this machine cannot run it (not root, not
    Linux, a missing package — fails under CI=true, see noxfile.py)."""
    if not KUBE_NODE.is_dir():
        pytest.skip(f"{KUBE_NODE} is not in this checkout")
    if os.geteuid() != 0:
        pytest.skip("a real node needs root (containerd, a CNI bridge, iptables)")
    work = tmp_path_factory.mktemp("kube-node")
    env = {
        **os.environ,
        "WORK": str(work),
        "KAFKA_LIBS": str(kafka_distribution.libs_dir),
        "KAFKA_VERSION": kafka_distribution.version,
    }
    # Cold, `up` builds the node's binaries (~20 min) and images (~3 min); scripts/setup-system
    # has done both before the tests in CI, so here it is ~15 s.
    up = _script("up", env, timeout_s=3600)
    try:
        if up.returncode != 0:
            tail = "\n".join(up.stderr.splitlines()[-25:])
            if "needs root" in up.stderr or "missing:" in up.stderr:
                pytest.skip(f"scripts/kube-node/up cannot run here:\n{tail}")
            pytest.fail(f"scripts/kube-node/up failed (exit {up.returncode}):\n{tail}")
        yield Path(up.stdout.strip().splitlines()[-1])
    finally:
        down = _script("down", env, timeout_s=300)
        if down.returncode != 0:
            print(f"scripts/kube-node/down: exit {down.returncode}\n{down.stderr[-2000:]}")
