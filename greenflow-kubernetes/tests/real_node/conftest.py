"""A real single-node Kubernetes cluster (scripts/kube-node) for the tests in this folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from greenflow_kubernetes.testing import real_node

KUBE_NODE = Path(__file__).resolve().parents[3] / "scripts" / "kube-node"


@pytest.fixture(scope="session")
def kube_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The node for the session (no Kafka image needed here); its kubeconfig."""
    with real_node(KUBE_NODE, tmp_path_factory.mktemp("kube-node")) as kubeconfig:
        yield kubeconfig
