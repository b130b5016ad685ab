"""The ``scaphandre`` service on Kubernetes: Scaphandre as a privileged DaemonSet on the chosen
roles' nodes, its pods annotated for the ``prometheus`` service. The ``scaphandre`` collector
(:mod:`greenflow_kubernetes.collectors.scaphandre`) reads what it exports."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import attrs
import structlog

from greenflow.api import DeployContext, Inventory, Platform, Service
from greenflow.plan.validators import (
    absolute_path,
    cpu_quantity,
    memory_quantity,
    non_empty,
    positive,
)
from greenflow_kubernetes.readiness import daemonset_ready
from greenflow_kubernetes.services.base import NAME_LABEL, KubeService, scrape_annotations
from greenflow_kubernetes.session import KubeSession

log = structlog.get_logger("greenflow.kubernetes")

SCAPHANDRE_IMAGE = "hubblo/scaphandre:1.0.0"
DEFAULT_POWERCAP = "/sys/class/powercap"


@attrs.frozen
class ScaphandreServiceConfig:
    """``[[services]] type = "scaphandre"``: the power exporter on every node of ``roles``."""

    #: Roles whose nodes run it (a node carrying any of them).
    roles: list[str] = attrs.field(
        factory=lambda: ["broker", "worker"], converter=list, validator=non_empty
    )
    image: str = SCAPHANDRE_IMAGE
    #: Port of its Prometheus exporter on each pod.
    port: int = attrs.field(default=8080, validator=positive)
    #: CPU request and memory request = limit (its own energy is part of the node's).
    cpu: str = attrs.field(default="100m", validator=cpu_quantity)
    memory: str = attrs.field(default="200Mi", validator=memory_quantity)
    #: The directory of each node whose RAPL counters Scaphandre reads: the node's own by
    #: default. Another absolute path is read as Scaphandre reads a tree that
    #: ``scaphandre qemu`` exports to a virtual machine (``--vm``, mounted at
    #: ``/var/scaphandre``): a VM node given its share of the host's energy, or a test's
    #: simulated tree.
    powercap_path: str = attrs.field(default=DEFAULT_POWERCAP, validator=absolute_path)


class ScaphandreService(KubeService):
    """Scaphandre as a privileged DaemonSet on the chosen roles' nodes, reading RAPL
    (``/sys/class/powercap``) and ``/proc`` of the host, with ``--containers`` so that
    per-process power is labelled with the pod; its pods are annotated for scraping."""

    Config: ClassVar[type] = ScaphandreServiceConfig
    measurement: ClassVar[bool] = True

    @classmethod
    def required_roles(cls, config: Any) -> frozenset[str]:
        return frozenset(config.roles)

    config: ScaphandreServiceConfig
    _app: ClassVar[str] = "scaphandre"

    def manifests(self, kube: KubeSession) -> list[dict[str, Any]]:
        """Every object it applies, in order."""
        c = self.config
        name = self.object_name
        labels = self.labels(kube)
        selector = {NAME_LABEL: self._app, **kube.service_labels(self.name)}
        # --containers asks the API server which pod a process belongs to.
        rules = [
            {"apiGroups": [""], "resources": ["pods", "nodes"], "verbs": ["get", "list", "watch"]}
        ]
        # Another tree than the node's own is read the way Scaphandre reads one exported
        # by a hypervisor: mounted at /var/scaphandre, with --vm (the container cannot
        # mount over /sys/class/powercap of a node whose kernel has no such directory).
        own = c.powercap_path == DEFAULT_POWERCAP
        powercap_mount = DEFAULT_POWERCAP if own else "/var/scaphandre"
        vm = [] if own else ["--vm"]
        out = self._rbac(kube, rules)
        out.append(
            {
                "apiVersion": "apps/v1",
                "kind": "DaemonSet",
                "metadata": {"name": name, "labels": labels},
                "spec": {
                    "selector": {"matchLabels": selector},
                    "updateStrategy": {"type": "RollingUpdate"},
                    "template": {
                        "metadata": {"labels": labels, "annotations": scrape_annotations(c.port)},
                        "spec": {
                            "serviceAccountName": name,
                            "hostPID": True,
                            "affinity": kube.node_affinity(c.roles),
                            # A power meter must run on tainted (dedicated) nodes too.
                            "tolerations": [{"operator": "Exists"}],
                            "containers": [
                                {
                                    "name": "scaphandre",
                                    "image": c.image,
                                    "args": [
                                        *vm,
                                        "prometheus",
                                        "--port",
                                        str(c.port),
                                        "--containers",
                                    ],
                                    "env": [
                                        {
                                            "name": "KUBERNETES_NODE_NAME",
                                            "valueFrom": {
                                                "fieldRef": {"fieldPath": "spec.nodeName"}
                                            },
                                        }
                                    ],
                                    "ports": [{"name": "metrics", "containerPort": c.port}],
                                    "readinessProbe": {
                                        "tcpSocket": {"port": "metrics"},
                                        "periodSeconds": 2,
                                    },
                                    "securityContext": {"privileged": True, "runAsUser": 0},
                                    "resources": {
                                        "requests": {"cpu": c.cpu, "memory": c.memory},
                                        "limits": {"memory": c.memory},
                                    },
                                    "volumeMounts": [
                                        {"name": "proc", "mountPath": "/proc", "readOnly": True},
                                        {
                                            "name": "powercap",
                                            "mountPath": powercap_mount,
                                            "readOnly": True,
                                        },
                                    ],
                                }
                            ],
                            "volumes": [
                                {
                                    "name": "proc",
                                    "hostPath": {"path": "/proc", "type": "Directory"},
                                },
                                # A node without RAPL has no such directory: its pod then fails
                                # to start with a clear event instead of exporting zeros.
                                {
                                    "name": "powercap",
                                    "hostPath": {"path": c.powercap_path, "type": "Directory"},
                                },
                            ],
                        },
                    },
                },
            }
        )
        return out

    def deploy(self, platform: Platform, inventory: Inventory, ctx: DeployContext) -> None:
        kube = self._start(platform, ctx)
        for manifest in self.manifests(kube):
            kube.apply(manifest)
        log.info(
            "service.deployed",
            service=self.name,
            namespace=kube.namespace,
            kind="DaemonSet",
            roles=self.config.roles,
        )

    def wait_ready(self, timeout_s: float) -> None:
        """Until every node it is scheduled on has a ready pod (and there is one)."""
        self.kube.wait(
            "DaemonSet",
            self.object_name,
            daemonset_ready,
            timeout_s,
            f"scaphandre {self.name!r} on every {'/'.join(self.config.roles)} node",
        )

    def endpoints(self) -> Mapping[str, str]:
        kube = self.kube
        return {
            "port": str(self.config.port),
            "pods": kube.selector(kube.service_labels(self.name)),
        }

    def describe(self) -> Mapping[str, Any]:
        c = self.config
        return {
            "image": c.image,
            "roles": list(c.roles),
            "port": c.port,
            "resources": {"cpu": c.cpu, "memory": c.memory},
            "powercap_path": c.powercap_path,
        }

    @classmethod
    def attach(cls, name: str, config: Any, state: Mapping[str, Any]) -> Service | None:
        return cls._attach(name, config, state, "DaemonSet")
