"""Kubernetes for GreenFlow: the ``kubernetes`` platform, the ``prometheus`` and ``scaphandre``
services and the ``scaphandre`` collector, and the public API every plugin that deploys to a
cluster uses.

A service reaches the cluster through the platform's :class:`KubeSession`::

    from greenflow_kubernetes import session_of, scrape_annotations

    kube = session_of(platform, who=f"service {self.name!r}")
    kube.apply({"apiVersion": "apps/v1", "kind": "Deployment", ...})
    kube.wait("Deployment", name, deployment_available, timeout_s, "my server to be available")
    kube.delete_labelled(kube.service_labels(self.name))

The ``kubernetes`` client is imported only when a session connects, so loading these plugins
or validating a plan costs neither the client's import nor a cluster.
docs/writing-a-plugin.md ("Deploying to Kubernetes") walks through a whole service.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from greenflow.plan.quantities import MIB, cpu_cores, memory_bytes, parse_quantity
from greenflow.plan.validators import cpu_quantity, memory_quantity

# Quantities are core's (local services size memory the same way); re-exported here,
# where plugins writing manifests look for them.
from greenflow_kubernetes._api import INSTALL_HINT, KubeApiError
from greenflow_kubernetes.names import carries, dns_label, label_value, split_role_label
from greenflow_kubernetes.platform import DEFAULT_ROLE_LABELS, KubernetesConfig, KubernetesPlatform
from greenflow_kubernetes.readiness import (
    daemonset_ready,
    deployment_available,
    generation_seen,
    statefulset_ready,
)
from greenflow_kubernetes.services.base import (
    NAME_LABEL,
    PATH_ANNOTATION,
    PORT_ANNOTATION,
    SCRAPE_ANNOTATION,
    KubeService,
    scrape_annotations,
)
from greenflow_kubernetes.session import (
    EXPERIMENT_LABEL,
    INSTANCE_LABEL,
    MANAGED_BY,
    MANAGED_BY_LABEL,
    SERVICE_LABEL,
    KubePlatform,
    KubeSession,
    pod_blocking_reason,
    session_of,
)

try:
    __version__ = version("greenflow-kubernetes")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0"

__all__ = [
    "DEFAULT_ROLE_LABELS",
    "EXPERIMENT_LABEL",
    "INSTALL_HINT",
    "INSTANCE_LABEL",
    "MANAGED_BY",
    "MANAGED_BY_LABEL",
    "MIB",
    "NAME_LABEL",
    "PATH_ANNOTATION",
    "PORT_ANNOTATION",
    "SCRAPE_ANNOTATION",
    "SERVICE_LABEL",
    "KubeApiError",
    "KubePlatform",
    "KubeService",
    "KubeSession",
    "KubernetesConfig",
    "KubernetesPlatform",
    "__version__",
    "carries",
    "cpu_cores",
    "cpu_quantity",
    "daemonset_ready",
    "deployment_available",
    "dns_label",
    "generation_seen",
    "label_value",
    "memory_bytes",
    "memory_quantity",
    "parse_quantity",
    "pod_blocking_reason",
    "scrape_annotations",
    "session_of",
    "split_role_label",
    "statefulset_ready",
]
