"""pytest fixtures for test modules against a real kube-apiserver, over
:mod:`greenflow_kubernetes.testing.cluster`, for any plugin that deploys to Kubernetes.

Bring them in from a ``conftest.py``::

    from greenflow_kubernetes.testing.fixtures import cluster, kube  # noqa: F401

A module using ``cluster`` sets ``NAMESPACE``, the namespace its experiments run in (one per
module, so a leftover names the module that left it).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from greenflow_kubernetes.testing.cluster import KubeCluster, api_server_with_nodes, checked_cluster


@pytest.fixture(scope="module")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One API server with etcd and the default nodes (two broker nodes, one worker) for the
    module: it takes seconds to start. Skips with the reason (and the command that builds the
    binaries) when it cannot start."""
    with api_server_with_nodes(tmp_path_factory.mktemp("kube")) as server:
        yield server


@pytest.fixture
def cluster(kube: Any, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[KubeCluster]:
    """A ``kubernetes`` platform acquired for one experiment in the module's ``NAMESPACE``;
    released after the test, which then checks that nothing with the experiment's labels is
    left."""
    namespace = getattr(request.module, "NAMESPACE", None)
    if not isinstance(namespace, str):
        msg = f"{request.module.__name__} uses the cluster fixture but sets no NAMESPACE"
        raise TypeError(msg)
    with checked_cluster(kube.kubeconfig_path, tmp_path / "platform", namespace=namespace) as c:
        yield c
