"""Services on the ``kubernetes`` platform: ``prometheus`` and ``scaphandre``.

```toml
[[services]]
type = "scaphandre"          # a DaemonSet on the broker and worker nodes
roles = ["broker", "worker"]

[[services]]
type = "prometheus"          # scrapes every pod of the experiment annotated for it
scrape_interval = "5s"
```

Prometheus discovers the pods of the experiment's namespace that carry the annotation
``prometheus.io/scrape: "true"`` (port from ``prometheus.io/port``, path from
``prometheus.io/path``, default ``/metrics``): Scaphandre's pods carry it, and broker
services put it on theirs. Each series gets ``node``, ``pod``, ``namespace`` and
``service`` (the pod's ``greenflow.io/service`` label) labels.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import urlsplit, urlunsplit

import attrs
import structlog

from greenflow.api import Capability, DeployContext, Inventory, Platform, ProcessGroups, Service
from greenflow.builtin.kubernetes.session import (
    KubeSession,
    dns_label,
    session_of,
)
from greenflow.errors import ServiceError
from greenflow.plan.durations import Duration
from greenflow.plan.validators import positive

log = structlog.get_logger("greenflow.kubernetes")

#: Pod annotations the ``prometheus`` service's scrape configuration looks for.
SCRAPE_ANNOTATION = "prometheus.io/scrape"
PORT_ANNOTATION = "prometheus.io/port"
PATH_ANNOTATION = "prometheus.io/path"
#: The standard name label (``app.kubernetes.io/name``) used in selectors.
NAME_LABEL = "app.kubernetes.io/name"

PROMETHEUS_IMAGE = "prom/prometheus:v3.13.5"  # the 3.13 long-term-support line (3.5 ended 2026-07)
SCAPHANDRE_IMAGE = "hubblo/scaphandre:1.0.0"
DEFAULT_POWERCAP = "/sys/class/powercap"
PROMETHEUS_PORT = 9090


def scrape_annotations(port: int, path: str = "/metrics") -> dict[str, str]:
    """Pod annotations that make the ``prometheus`` service scrape a pod on ``port``."""
    return {SCRAPE_ANNOTATION: "true", PORT_ANNOTATION: str(port), PATH_ANNOTATION: path}


def _prom_duration(seconds: float) -> str:
    ms = round(seconds * 1000)
    return f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms}ms"


def _check_quantity(_inst: Any, attribute: attrs.Attribute[Any], value: str) -> None:
    import re

    if not re.fullmatch(r"\d+(\.\d+)?(m|k|M|G|T|Ki|Mi|Gi|Ti)?", value):
        msg = f'{attribute.name}: expected a Kubernetes quantity like "500m", "2" or "1Gi", got {value!r}'
        raise ValueError(msg)


def _check_url(_inst: Any, attribute: attrs.Attribute[Any], value: str | None) -> None:
    if value is not None and urlsplit(value).scheme not in ("http", "https"):
        msg = f"{attribute.name}: expected an http(s) URL, got {urlsplit(value)._replace(netloc='…').geturl()!r}"
        raise ValueError(msg)


class _KubeService(Service):
    """What both services share: a session, state for ``greenflow down``, removal by label."""

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


# -- prometheus --------------------------------------------------------------------------


@attrs.frozen
class PrometheusConfig:
    """``[[services]] type = "prometheus"`` on Kubernetes."""

    #: How often every annotated pod is scraped.
    scrape_interval: Duration = attrs.field(default=Duration(5), validator=positive)
    #: How long samples are kept (Prometheus' ``--storage.tsdb.retention.time``).
    retention: Duration = attrs.field(default=Duration(86400), validator=positive)
    #: Role of the node it runs on (its taint, e.g. a control plane's, is tolerated).
    role: str = "control"
    #: Prometheus remote write target, e.g. a long-term store; credentials in the URL go
    #: to a Secret, never to the ConfigMap.
    remote_write_url: str | None = attrs.field(default=None, validator=_check_url)
    image: str = PROMETHEUS_IMAGE
    #: CPU and memory, requests = limits.
    cpu: str = attrs.field(default="500m", validator=_check_quantity)
    memory: str = attrs.field(default="1Gi", validator=_check_quantity)
    #: Also expose the API on this port of every node (a NodePort Service), for a
    #: collector running outside the cluster; endpoints() then gives ``node_url``.
    node_port: int | None = None


class PrometheusService(_KubeService):
    """A Prometheus Deployment with the RBAC to discover pods, scraping the experiment's
    annotated pods (Scaphandre, brokers); optional remote write."""

    Config: ClassVar[type] = PrometheusConfig
    measurement: ClassVar[bool] = True

    @classmethod
    def required_roles(cls, config: Any) -> frozenset[str]:
        return frozenset({config.role})

    config: PrometheusConfig
    _app: ClassVar[str] = "prometheus"

    def __init__(self, name: str, config: Any) -> None:
        super().__init__(name, config)
        self._node_address: str | None = None

    def scrape_config(self, kube: KubeSession) -> dict[str, Any]:
        """The ``prometheus.yml`` it runs with (JSON is YAML)."""
        interval = _prom_duration(self.config.scrape_interval)
        relabel = [
            {
                "source_labels": [f"__meta_kubernetes_pod_annotation_{_meta(SCRAPE_ANNOTATION)}"],
                "action": "keep",
                "regex": "true",
            },
            {
                "source_labels": ["__meta_kubernetes_pod_phase"],
                "action": "keep",
                "regex": "Running",
            },
            {
                "source_labels": [f"__meta_kubernetes_pod_annotation_{_meta(PATH_ANNOTATION)}"],
                "action": "replace",
                "target_label": "__metrics_path__",
                "regex": "(.+)",
            },
            {
                "source_labels": [
                    "__address__",
                    f"__meta_kubernetes_pod_annotation_{_meta(PORT_ANNOTATION)}",
                ],
                "action": "replace",
                "target_label": "__address__",
                "regex": r"([^:]+)(?::\d+)?;(\d+)",
                "replacement": "$1:$2",
            },
            {"source_labels": ["__meta_kubernetes_pod_node_name"], "target_label": "node"},
            {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
            {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
            {
                "source_labels": ["__meta_kubernetes_pod_label_greenflow_io_service"],
                "target_label": "service",
            },
        ]
        config: dict[str, Any] = {
            "global": {
                "scrape_interval": interval,
                "scrape_timeout": interval,
                "external_labels": {"experiment": kube.experiment},
            },
            "scrape_configs": [
                {
                    "job_name": "greenflow-pods",
                    "kubernetes_sd_configs": [
                        {"role": "pod", "namespaces": {"names": [kube.namespace]}}
                    ],
                    "relabel_configs": relabel,
                }
            ],
        }
        if not _prometheus_2(self.config.image):
            # Scaphandre 1.0 serves its metrics without a Content-Type, which Prometheus 3
            # refuses unless told the format (hubblo-org/scaphandre#400); 2.x has no such key.
            config["scrape_configs"][0]["fallback_scrape_protocol"] = "PrometheusText0.0.4"
        if self.config.remote_write_url:
            parts = urlsplit(self.config.remote_write_url)
            # Credentials never go into the ConfigMap: basic auth from a mounted Secret.
            target: dict[str, Any] = {
                "url": urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
            }
            if parts.username:
                target["basic_auth"] = {
                    "username": parts.username,
                    "password_file": "/etc/prometheus/secret/password",
                }
            config["remote_write"] = [target]
        return config

    def manifests(self, kube: KubeSession) -> list[dict[str, Any]]:
        """Every object it applies, in order."""
        c = self.config
        name = self.object_name
        labels = self.labels(kube)
        selector = {NAME_LABEL: self._app, **kube.service_labels(self.name)}
        config_text = json.dumps(self.scrape_config(kube), indent=2, sort_keys=True)
        rules = [
            {
                "apiGroups": [""],
                "resources": ["pods", "endpoints", "services", "nodes", "nodes/metrics"],
                "verbs": ["get", "list", "watch"],
            },
            {
                "apiGroups": ["discovery.k8s.io"],
                "resources": ["endpointslices"],
                "verbs": ["get", "list", "watch"],
            },
            {"nonResourceURLs": ["/metrics"], "verbs": ["get"]},
        ]
        volumes: list[dict[str, Any]] = [
            {"name": "config", "configMap": {"name": f"{name}-config"}},
            {"name": "data", "emptyDir": {}},
        ]
        mounts: list[dict[str, Any]] = [
            {"name": "config", "mountPath": "/etc/prometheus", "readOnly": True},
            {"name": "data", "mountPath": "/prometheus"},
        ]
        out = self._rbac(kube, rules)
        out.append(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": f"{name}-config", "labels": labels},
                "data": {"prometheus.yml": config_text},
            }
        )
        password = urlsplit(c.remote_write_url).password if c.remote_write_url else None
        if password is not None:
            out.append(
                {
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "type": "Opaque",
                    "metadata": {"name": f"{name}-remote-write", "labels": labels},
                    "stringData": {"password": password},
                }
            )
            volumes.append({"name": "secret", "secret": {"secretName": f"{name}-remote-write"}})
            mounts.append(
                {"name": "secret", "mountPath": "/etc/prometheus/secret", "readOnly": True}
            )
        resources = {"cpu": c.cpu, "memory": c.memory}
        checksum = hashlib.sha256(config_text.encode()).hexdigest()[:16]
        out.append(
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": name, "labels": labels},
                "spec": {
                    "replicas": 1,
                    # One instance scraping at a time: never two during a rollout.
                    "strategy": {"type": "Recreate"},
                    "selector": {"matchLabels": selector},
                    "template": {
                        # A new configuration restarts the pod.
                        "metadata": {
                            "labels": labels,
                            "annotations": {"greenflow.io/config-sha256": checksum},
                        },
                        "spec": {
                            "serviceAccountName": name,
                            "nodeSelector": kube.node_selector(c.role),
                            "tolerations": kube.tolerations([c.role]),
                            "securityContext": {
                                "runAsNonRoot": True,
                                "runAsUser": 65534,
                                "runAsGroup": 65534,
                                "fsGroup": 65534,
                            },
                            "containers": [
                                {
                                    "name": "prometheus",
                                    "image": c.image,
                                    "args": [
                                        "--config.file=/etc/prometheus/prometheus.yml",
                                        "--storage.tsdb.path=/prometheus",
                                        f"--storage.tsdb.retention.time={int(c.retention)}s",
                                        # GreenFlow's own [remote_write] may send its samples here.
                                        "--web.enable-remote-write-receiver",
                                    ],
                                    "ports": [{"name": "http", "containerPort": PROMETHEUS_PORT}],
                                    "readinessProbe": {
                                        "httpGet": {"path": "/-/ready", "port": "http"},
                                        "periodSeconds": 2,
                                    },
                                    "resources": {"requests": resources, "limits": resources},
                                    "volumeMounts": mounts,
                                }
                            ],
                            "volumes": volumes,
                        },
                    },
                },
            }
        )
        port: dict[str, Any] = {"name": "http", "port": PROMETHEUS_PORT, "targetPort": "http"}
        if c.node_port is not None:
            port["nodePort"] = c.node_port
        out.append(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": name, "labels": labels},
                "spec": {
                    "type": "NodePort" if c.node_port is not None else "ClusterIP",
                    "selector": selector,
                    "ports": [port],
                },
            }
        )
        return out

    def deploy(self, platform: Platform, inventory: Inventory, ctx: DeployContext) -> None:
        kube = self._start(platform, ctx)
        self._node_address = next((h.address for h in inventory.with_role(self.config.role)), None)
        for manifest in self.manifests(kube):
            kube.apply(manifest)
        log.info("service.deployed", service=self.name, namespace=kube.namespace, kind="Deployment")

    def wait_ready(self, timeout_s: float) -> None:
        """Until the Deployment has an available replica (its readiness probe: /-/ready)."""
        self.kube.wait(
            "Deployment",
            self.object_name,
            _deployment_available,
            timeout_s,
            f"prometheus {self.name!r} to be available",
        )

    def endpoints(self) -> Mapping[str, str]:
        kube = self.kube
        out = {"url": f"http://{self.object_name}.{kube.namespace}.svc:{PROMETHEUS_PORT}"}
        if self.config.node_port is not None and self._node_address:
            out["node_url"] = f"http://{self._node_address}:{self.config.node_port}"
        return out

    def describe(self) -> Mapping[str, Any]:
        c = self.config
        return {
            "image": c.image,
            "scrape_interval_s": float(c.scrape_interval),
            "retention_s": float(c.retention),
            "role": c.role,
            "remote_write": c.remote_write_url is not None,
            "resources": {"cpu": c.cpu, "memory": c.memory},
        }

    @classmethod
    def attach(cls, name: str, config: Any, state: Mapping[str, Any]) -> Service | None:
        return cls._attach(name, config, state, "Deployment")


def _prometheus_2(image: str) -> bool:
    """Whether ``image``'s tag names a Prometheus 2.x (``prom/prometheus:v2.53.3``)."""
    tag = image.rpartition("/")[2].partition(":")[2]
    return tag.startswith(("v2.", "2."))


def _meta(annotation: str) -> str:
    """An annotation or label name as Prometheus' ``__meta_kubernetes_*`` suffix."""
    import re

    return re.sub(r"[^a-zA-Z0-9_]", "_", annotation)


def _generation_seen(obj: Mapping[str, Any]) -> tuple[bool, str]:
    generation = (obj.get("metadata") or {}).get("generation")
    observed = (obj.get("status") or {}).get("observedGeneration")
    if generation is not None and (observed is None or observed < generation):
        return False, f"status not yet for generation {generation} (observed {observed})"
    return True, ""


def _deployment_available(obj: dict[str, Any]) -> tuple[bool, str]:
    seen, why = _generation_seen(obj)
    if not seen:
        return False, why
    available = (obj.get("status") or {}).get("availableReplicas") or 0
    return available >= 1, f"availableReplicas {available}"


# -- scaphandre --------------------------------------------------------------------------


def _check_host_dir(_inst: Any, attribute: attrs.Attribute[Any], value: str) -> None:
    if not value.startswith("/") or "\n" in value:
        msg = f"{attribute.name}: expected an absolute path on the nodes, got {value!r}"
        raise ValueError(msg)


def _roles(value: list[str]) -> list[str]:
    return list(value)


def _non_empty(_inst: Any, attribute: attrs.Attribute[Any], value: list[str]) -> None:
    if not value:
        msg = f"{attribute.name}: expected at least one role, got []"
        raise ValueError(msg)


@attrs.frozen
class ScaphandreConfig:
    """``[[services]] type = "scaphandre"``: the power exporter on every node of ``roles``."""

    #: Roles whose nodes run it (a node carrying any of them).
    roles: list[str] = attrs.field(
        factory=lambda: ["broker", "worker"], converter=_roles, validator=_non_empty
    )
    image: str = SCAPHANDRE_IMAGE
    #: Port of its Prometheus exporter on each pod.
    port: int = attrs.field(default=8080, validator=positive)
    #: CPU request and memory request = limit (its own energy is part of the node's).
    cpu: str = attrs.field(default="100m", validator=_check_quantity)
    memory: str = attrs.field(default="200Mi", validator=_check_quantity)
    #: The directory of each node whose RAPL counters Scaphandre reads: the node's own by
    #: default. Another absolute path is read as Scaphandre reads a tree that
    #: ``scaphandre qemu`` exports to a virtual machine (``--vm``, mounted at
    #: ``/var/scaphandre``): a VM node given its share of the host's energy, or a test's
    #: simulated tree.
    powercap_path: str = attrs.field(default=DEFAULT_POWERCAP, validator=_check_host_dir)


class ScaphandreService(_KubeService):
    """Scaphandre as a privileged DaemonSet on the chosen roles' nodes, reading RAPL
    (``/sys/class/powercap``) and ``/proc`` of the host, with ``--containers`` so that
    per-process power is labelled with the pod; its pods are annotated for scraping."""

    Config: ClassVar[type] = ScaphandreConfig
    measurement: ClassVar[bool] = True

    @classmethod
    def required_roles(cls, config: Any) -> frozenset[str]:
        return frozenset(config.roles)

    config: ScaphandreConfig
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
            _daemonset_ready,
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


def _daemonset_ready(obj: dict[str, Any]) -> tuple[bool, str]:
    seen, why = _generation_seen(obj)
    if not seen:
        return False, why
    status = obj.get("status") or {}
    desired = status.get("desiredNumberScheduled") or 0
    ready = status.get("numberReady") or 0
    if desired == 0:
        return False, "no node is scheduled (no node carries the roles?)"
    return ready == desired, f"numberReady {ready} of desiredNumberScheduled {desired}"


__all__ = [
    "PATH_ANNOTATION",
    "PORT_ANNOTATION",
    "SCRAPE_ANNOTATION",
    "PrometheusConfig",
    "PrometheusService",
    "ScaphandreConfig",
    "ScaphandreService",
    "scrape_annotations",
]
