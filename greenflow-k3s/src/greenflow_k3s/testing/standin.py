"""The k3s stand-in's artefacts for plugin tests: ``install.sh`` and ``k3s`` as a GreenFlow
checkout's ``scripts/k3s-standin/build`` makes them (a real control plane and kubelets, the
Kubernetes v1.37.2 binaries built here; docs/k3s-testing.md says what only a real k3s
proves). Bring the session fixture in from a ``conftest.py``:
``from greenflow_k3s.testing.standin import standin_artefacts  # noqa: F401``.
:func:`network_left` says what k3s' network left on a test host after its uninstall.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest  # a helper for pytest fixtures only

from greenflow_k3s.testing.hosts import SshHost

#: ``build`` exits with this (automake's "skipped") when the machine cannot run the stand-in.
_CANNOT_RUN_HERE = 77


def find_standin() -> Path | None:
    """The ``scripts/k3s-standin`` of the checkout this module is imported from, if any."""
    for parent in Path(__file__).resolve().parents:
        candidate = parent / "scripts" / "k3s-standin"
        if (candidate / "build").is_file():
            return candidate
    return None


def network_left(host: SshHost) -> list[str]:
    """What k3s' network left in the test host's namespace, one line each: kube-proxy's and
    the CNI's iptables chains, and the stand-in's routes to other nodes' pod CIDRs (flannel
    host-gw routes, tagged ``proto 77``). Empty once ``k3s-killall.sh`` has run."""
    out = subprocess.run(
        [
            "ip",
            "netns",
            "exec",
            host.name,
            "sh",
            "-c",
            "iptables-save | grep -E '^:(KUBE|CNI)-'; ip route show proto 77",
        ],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    return out.splitlines()


@pytest.fixture(scope="session")
def standin_artefacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory with the stand-in's ``install.sh`` and ``k3s``, built once per session;
    the test skips, with the build's reason, where this machine cannot run the stand-in
    (binaries, containerd, runc or the CNI plugins missing) or has no checkout."""
    standin = find_standin()
    if standin is None:
        pytest.skip("no scripts/k3s-standin: the k3s stand-in needs a GreenFlow checkout")
    out = tmp_path_factory.mktemp("k3s-standin")
    built = subprocess.run(
        ["bash", str(standin / "build"), str(out)], capture_output=True, text=True, check=False
    )
    if built.returncode == _CANNOT_RUN_HERE:
        pytest.skip(built.stderr.strip())
    assert built.returncode == 0, built.stderr
    return out
