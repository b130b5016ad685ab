"""Test support for plugins that deploy to Kubernetes (extra: ``greenflow-kubernetes[testing]``).

- :class:`KubeAPIServer`: a real kube-apiserver and etcd on loopback (the binaries are built
  by ``scripts/kube-apiserver``; :func:`find_kube_binaries` says how when they are missing).
- :mod:`.cluster`: Node objects with role labels and a ``kubernetes`` platform acquired on
  the API server (:func:`kube_cluster`, :func:`checked_cluster`: nothing left after release).
- :mod:`.controllers`: the controllers and kubelet parts a bare API server lacks, played by
  the test (StatefulSet status, Jobs and their pods, claim finalizers, pod logs).
- :func:`real_node`: a real single-node cluster from a checkout's ``scripts/kube-node``.
- :mod:`.fixtures`: pytest fixtures ``kube`` (one API server per module) and ``cluster``;
  bring them in from a ``conftest.py``:
  ``from greenflow_kubernetes.testing.fixtures import cluster, kube  # noqa: F401``.

Only the API server runs, so nothing acts on what is applied: each helper says which part
it plays. docs/kubernetes-testing.md describes the harness and the real single-node cluster.
"""

from __future__ import annotations

from greenflow_kubernetes.testing.apiserver import (
    KUBE_VERSION,
    KubeAPIServer,
    KubeBinaries,
    KubeBinariesMissing,
    find_kube_binaries,
    kube_bin_dir,
)
from greenflow_kubernetes.testing.cluster import (
    BROKER_LABEL,
    DEFAULT_NODES,
    WORKER_LABEL,
    KubeCluster,
    api_server_with_nodes,
    checked_cluster,
    cluster_nodes,
    kube_cluster,
    leftovers,
)
from greenflow_kubernetes.testing.controllers import (
    ClaimProtectionController,
    JobController,
    Outcome,
    ScriptedLogs,
    by_component,
    container_status,
    oom_killed,
    set_statefulset_ready,
    succeeded,
)
from greenflow_kubernetes.testing.node import real_node

__all__ = [
    "BROKER_LABEL",
    "DEFAULT_NODES",
    "KUBE_VERSION",
    "WORKER_LABEL",
    "ClaimProtectionController",
    "JobController",
    "KubeAPIServer",
    "KubeBinaries",
    "KubeBinariesMissing",
    "KubeCluster",
    "Outcome",
    "ScriptedLogs",
    "api_server_with_nodes",
    "by_component",
    "checked_cluster",
    "cluster_nodes",
    "container_status",
    "find_kube_binaries",
    "kube_bin_dir",
    "kube_cluster",
    "leftovers",
    "oom_killed",
    "real_node",
    "set_statefulset_ready",
    "succeeded",
]
