"""A real single-node Kubernetes cluster on this machine, from a GreenFlow checkout's
``scripts/kube-node`` (root, containerd, minutes cold; docs/kubernetes-testing.md).

Nothing is played: a kubelet runs the pods in containerd, the scheduler and controllers do
their work. :func:`real_node` starts it for a test session and stops it after; a test that
cannot have it skips with the reason (and fails under CI=true, see noxfile.py).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest  # a helper for pytest fixtures only


def _script(
    scripts: Path, name: str, env: Mapping[str, str], timeout_s: float
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(scripts / name)],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


@contextlib.contextmanager
def real_node(scripts: Path, work: Path, env: Mapping[str, str] | None = None) -> Iterator[Path]:
    """Run ``scripts/up`` (cached binaries and images, a fresh cluster state, the node Ready
    and labelled broker + worker + control-plane), yield its kubeconfig, run ``down`` on exit.

    ``scripts`` is the checkout's ``scripts/kube-node``; ``env`` adds variables for ``up``
    (``KAFKA_LIBS`` builds the stand-in Kafka image too). Skips when the machine cannot run
    a node (not Linux, not root, a missing package); fails when ``up`` fails otherwise.
    """
    if not scripts.is_dir():
        pytest.skip(f"{scripts} is not in this checkout")
    if os.geteuid() != 0:
        pytest.skip("a real node needs root (containerd, a CNI bridge, iptables)")
    full_env = {**os.environ, **(env or {}), "WORK": str(work)}
    # Cold, `up` builds the node's binaries (~20 min) and images (~3 min); scripts/setup-system
    # has done both before the tests in CI, so here it is ~15 s.
    up = _script(scripts, "up", full_env, timeout_s=3600)
    try:
        if up.returncode != 0:
            tail = "\n".join(up.stderr.splitlines()[-25:])
            if "needs root" in up.stderr or "missing:" in up.stderr:
                pytest.skip(f"scripts/kube-node/up cannot run here:\n{tail}")
            pytest.fail(f"scripts/kube-node/up failed (exit {up.returncode}):\n{tail}")
        yield Path(up.stdout.strip().splitlines()[-1])
    finally:
        down = _script(scripts, "down", full_env, timeout_s=300)
        if down.returncode != 0:
            print(f"scripts/kube-node/down: exit {down.returncode}\n{down.stderr[-2000:]}")
