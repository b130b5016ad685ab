"""A real kube-apiserver with Node objects, and a ``kubernetes`` platform acquired on it.

Only the API server and etcd run (:class:`~greenflow_kubernetes.testing.KubeAPIServer`),
so nothing acts on what is applied: :mod:`greenflow_kubernetes.testing.controllers` plays
the controllers a test needs. :func:`cluster_nodes` creates Node objects with role labels;
:func:`kube_cluster` a namespace GreenFlow does not own (with its ``default`` service
account, as the service-account controller would), so that releasing the platform deletes
the experiment's objects but leaves the namespace (whose deletion would need the namespace
controller), and acquires a real ``kubernetes`` platform in it.
"""

from __future__ import annotations

import contextlib
import importlib
import secrets
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs

from greenflow.api import Inventory
from greenflow.testing import make_deploy_context
from greenflow_kubernetes.platform import KubernetesConfig, KubernetesPlatform
from greenflow_kubernetes.session import KubeSession
from greenflow_kubernetes.testing.apiserver import (
    KubeAPIServer,
    KubeBinariesMissing,
    find_kube_binaries,
)

BROKER_LABEL = "node.kubernetes.io/broker"
WORKER_LABEL = "node.kubernetes.io/worker"
#: The nodes :func:`kube_cluster` creates by default: two broker nodes and one worker.
DEFAULT_NODES: dict[str, dict[str, str]] = {
    "broker-a": {BROKER_LABEL: "true"},
    "broker-b": {BROKER_LABEL: "true"},
    "worker-a": {WORKER_LABEL: "true"},
}


@attrs.define
class KubeCluster:
    """An acquired ``kubernetes`` platform on the test API server."""

    platform: Any
    inventory: Inventory
    api: Any
    namespace: str
    experiment: str

    @property
    def session(self) -> Any:
        return self.platform.kube


def kubernetes_package() -> Any:
    """The ``kubernetes`` package, untyped here: these helpers pass plain dicts where its
    annotations ask for model objects (the client serialises both)."""
    return importlib.import_module("kubernetes")


def _client(kubeconfig: Path) -> Any:
    kubernetes = kubernetes_package()
    return kubernetes.config.new_client_from_config(config_file=str(kubeconfig))


@contextlib.contextmanager
def cluster_nodes(
    kubeconfig: Path, nodes: Mapping[str, Mapping[str, str]] = DEFAULT_NODES
) -> Iterator[None]:
    """Node objects with these labels for the block (a node's status says nothing: no
    kubelet registers them)."""
    kubernetes = kubernetes_package()
    api = _client(kubeconfig)
    core = kubernetes.client.CoreV1Api(api)
    try:
        for name, labels in nodes.items():
            core.create_node(
                {
                    "apiVersion": "v1",
                    "kind": "Node",
                    "metadata": {
                        "name": name,
                        "labels": {"kubernetes.io/hostname": name, **labels},
                    },
                }
            )
        yield
    finally:
        for name in nodes:
            with contextlib.suppress(kubernetes.client.exceptions.ApiException):
                core.delete_node(name)
        api.close()


@contextlib.contextmanager
def kube_cluster(
    kubeconfig: Path, work_dir: Path, *, namespace: str, experiment: str | None = None
) -> Iterator[KubeCluster]:
    """A ``kubernetes`` platform acquired on the API server (nodes must exist; see
    :func:`cluster_nodes`), in ``namespace``, created here without GreenFlow's labels so that
    release leaves it; released on exit."""
    kubernetes = kubernetes_package()
    experiment = experiment or f"it-{secrets.token_hex(3)}"
    api = _client(kubeconfig)
    core = kubernetes.client.CoreV1Api(api)
    try:
        core.create_namespace(
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
        )
    except kubernetes.client.exceptions.ApiException as exc:
        if exc.status != 409:
            raise
    # Play the service-account controller: pods are refused without the namespace's default
    # service account.
    try:
        core.create_namespaced_service_account(namespace, {"metadata": {"name": "default"}})
    except kubernetes.client.exceptions.ApiException as exc:
        if exc.status != 409:
            raise
    platform = KubernetesPlatform(
        KubernetesConfig(kubeconfig=str(kubeconfig), namespace=namespace, timeout_s=60.0)
    )
    try:
        inventory = platform.acquire(make_deploy_context(work_dir, experiment=experiment))
        yield KubeCluster(platform, inventory, api, namespace, experiment)
    finally:
        platform.release()
        api.close()


def leftovers(kubeconfig: Path, namespace: str, experiment: str) -> list[str]:
    """``"Kind name"`` of everything still carrying the experiment's labels (any kind,
    cluster-scoped ones included), through a fresh session."""
    session = KubeSession.connect(
        experiment=experiment, namespace=namespace, kubeconfig=str(kubeconfig)
    )
    try:
        return [f"{o['kind']} {o['metadata']['name']}" for o in session.labelled()]
    finally:
        session.close()


@contextlib.contextmanager
def api_server_with_nodes(work_dir: Path) -> Iterator[Any]:
    """A real kube-apiserver (:class:`greenflow_kubernetes.testing.apiserver.KubeAPIServer`) with the
    :func:`cluster_nodes`, for a module-scoped fixture; the test skips, saying how to build
    them, when the binaries are not built (and fails under CI=true, see noxfile.py)."""
    import pytest  # this testing helper is used from pytest fixtures only

    try:
        binaries = find_kube_binaries()
    except KubeBinariesMissing as exc:
        pytest.skip(str(exc))
    with (
        KubeAPIServer(work_dir, binaries=binaries) as server,
        cluster_nodes(server.kubeconfig_path),
    ):
        yield server


@contextlib.contextmanager
def checked_cluster(kubeconfig: Path, work_dir: Path, *, namespace: str) -> Iterator[KubeCluster]:
    """:func:`kube_cluster`, then the check every test relies on: after release nothing
    with the experiment's labels is left."""
    with kube_cluster(kubeconfig, work_dir, namespace=namespace) as c:
        yield c
    assert leftovers(kubeconfig, namespace, c.experiment) == []


__all__ = [
    "BROKER_LABEL",
    "DEFAULT_NODES",
    "WORKER_LABEL",
    "KubeCluster",
    "api_server_with_nodes",
    "checked_cluster",
    "cluster_nodes",
    "kube_cluster",
    "kubernetes_package",
    "leftovers",
]
