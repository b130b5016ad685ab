"""What services that live only on Kubernetes share: :class:`KubeService`, and the pod
annotations the ``prometheus`` service discovers (:func:`scrape_annotations`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import structlog

from greenflow.api import Capability, DeployContext, Platform, ProcessGroups, Service
from greenflow.errors import ServiceError
from greenflow_kubernetes.names import dns_label
from greenflow_kubernetes.session import KubeSession, session_of

log = structlog.get_logger("greenflow.kubernetes")

#: Pod annotations the ``prometheus`` service's scrape configuration looks for.
SCRAPE_ANNOTATION = "prometheus.io/scrape"
PORT_ANNOTATION = "prometheus.io/port"
PATH_ANNOTATION = "prometheus.io/path"
#: The standard name label (``app.kubernetes.io/name``) used in selectors.
NAME_LABEL = "app.kubernetes.io/name"


def scrape_annotations(port: int, path: str = "/metrics") -> dict[str, str]:
    """Pod annotations that make the ``prometheus`` service scrape a pod on ``port``."""
    return {SCRAPE_ANNOTATION: "true", PORT_ANNOTATION: str(port), PATH_ANNOTATION: path}


class KubeService(Service):
    """A service that lives only on Kubernetes: a session taken from the platform at deploy,
    its state recorded for ``greenflow down``, its objects named after the plan name and
    removed by label. Subclasses set ``_app`` and build their manifests."""

    requires: ClassVar[frozenset[Capability]] = frozenset({Capability.KUBERNETES})

    def __init__(self, name: str, config: Any) -> None:
        super().__init__(name, config)
        self._kube: KubeSession | None = None

    @property
    def kube(self) -> KubeSession:
        if self._kube is None:
            msg = f"service {self.name!r} is not deployed"
            raise ServiceError(msg)
        return self._kube

    @property
    def object_name(self) -> str:
        """Name of its namespaced objects (the plan name, as a valid object name)."""
        return dns_label(self.name)

    def cluster_object_name(self, kube: KubeSession) -> str:
        """Name of its cluster-scoped objects: unique across experiments."""
        return dns_label(f"{kube.namespace}-{self.name}", 253)

    def labels(self, kube: KubeSession) -> dict[str, str]:
        return {NAME_LABEL: self._app, **kube.service_labels(self.name)}

    #: The ``app.kubernetes.io/name`` of its objects.
    _app: ClassVar[str] = ""

    def _start(self, platform: Platform, ctx: DeployContext) -> KubeSession:
        kube = session_of(platform, who=f"service {self.name!r} ({self._app})")
        self._kube = kube
        # Recorded before the first object exists, so `greenflow down` finds them all.
        ctx.record_state({"session": kube.state(), "service": self.name})
        return kube

    def _rbac(self, kube: KubeSession, rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
        labels = self.labels(kube)
        cluster_name = self.cluster_object_name(kube)
        return [
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {"name": self.object_name, "labels": labels},
            },
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRole",
                "metadata": {"name": cluster_name, "labels": labels},
                "rules": rules,
            },
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRoleBinding",
                "metadata": {"name": cluster_name, "labels": labels},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": cluster_name,
                },
                "subjects": [
                    {
                        "kind": "ServiceAccount",
                        "name": self.object_name,
                        "namespace": kube.namespace,
                    }
                ],
            },
        ]

    def processes(self) -> ProcessGroups:
        """Nothing runs on this machine: energy comes from the cluster's nodes."""
        return {}

    def remove(self) -> None:
        """Delete every object of the service (pods made from its templates included) and
        wait until they are gone."""
        kube, self._kube = self._kube, None
        if kube is None:
            return
        deleted = kube.delete_labelled(kube.service_labels(self.name))
        log.info("service.removed", service=self.name, objects=len(deleted))

    @classmethod
    def remove_recorded(cls, config: Any, state: Mapping[str, Any]) -> None:
        if not state.get("session"):
            return
        kube = KubeSession.from_state(state["session"])
        try:
            kube.delete_labelled(kube.service_labels(state["service"]))
        finally:
            kube.close()

    @classmethod
    def _attach(cls, name: str, config: Any, state: Mapping[str, Any], kind: str) -> Service | None:
        if not state.get("session"):
            return None
        kube = KubeSession.from_state(state["session"])
        service = cls(name, config)
        if kube.get(kind, service.object_name) is None:
            kube.close()
            return None
        service._kube = kube
        return service
