"""The ``prometheus`` service on Kubernetes: a Prometheus Deployment that scrapes every pod of
the experiment annotated for it (:func:`~greenflow_kubernetes.scrape_annotations`), labelled
with ``node``, ``pod``, ``namespace`` and ``service``. docs/kubernetes.md has its plan keys."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import unquote, urlsplit

import attrs
import structlog

from greenflow.api import DeployContext, Inventory, Platform, Service
from greenflow.plan.durations import Duration
from greenflow.plan.validators import cpu_quantity, http_url, memory_quantity, positive
from greenflow.store.redact import strip_userinfo
from greenflow_kubernetes.readiness import deployment_available
from greenflow_kubernetes.services.base import (
    NAME_LABEL,
    PATH_ANNOTATION,
    PORT_ANNOTATION,
    SCRAPE_ANNOTATION,
    KubeService,
)
from greenflow_kubernetes.session import KubeSession

log = structlog.get_logger("greenflow.kubernetes")

PROMETHEUS_IMAGE = "prom/prometheus:v3.13.5"  # the 3.13 long-term-support line (3.5 ended 2026-07)
PROMETHEUS_PORT = 9090
#: Where the remote-write credentials Secret is mounted in the Prometheus pod.
_SECRET_DIR = "/etc/prometheus/secret"


def _prom_duration(seconds: float) -> str:
    ms = round(seconds * 1000)
    return f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms}ms"


@attrs.frozen
class PrometheusServiceConfig:
    """``[[services]] type = "prometheus"`` on Kubernetes."""

    #: How often every annotated pod is scraped.
    scrape_interval: Duration = attrs.field(default=Duration(5), validator=positive)
    #: How long samples are kept (Prometheus' ``--storage.tsdb.retention.time``).
    retention: Duration = attrs.field(default=Duration(86400), validator=positive)
    #: Role of the node it runs on (its taint, e.g. a control plane's, is tolerated).
    role: str = "control"
    #: Prometheus remote write target, e.g. a long-term store; credentials in the URL go
    #: to a Secret, never to the ConfigMap.
    remote_write_url: str | None = attrs.field(default=None, validator=http_url)
    image: str = PROMETHEUS_IMAGE
    #: CPU and memory, requests = limits.
    cpu: str = attrs.field(default="500m", validator=cpu_quantity)
    memory: str = attrs.field(default="1Gi", validator=memory_quantity)
    #: Also expose the API on this port of every node (a NodePort Service), for a
    #: collector running outside the cluster; endpoints() then gives ``node_url``.
    node_port: int | None = None


class PrometheusService(KubeService):
    """A Prometheus Deployment with the RBAC to discover pods, scraping the experiment's
    annotated pods (Scaphandre, brokers); optional remote write."""

    Config: ClassVar[type] = PrometheusServiceConfig
    measurement: ClassVar[bool] = True

    @classmethod
    def required_roles(cls, config: Any) -> frozenset[str]:
        return frozenset({config.role})

    config: PrometheusServiceConfig
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
            target: dict[str, Any] = {"url": strip_userinfo(self.config.remote_write_url)}
            if parts.username:
                # The user part may itself be the secret (https://TOKEN@host): both come from
                # files, and a password file only when the URL has a password.
                auth = {"username_file": f"{_SECRET_DIR}/username"}
                if parts.password is not None:
                    auth["password_file"] = f"{_SECRET_DIR}/password"
                target["basic_auth"] = auth
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
        parts = urlsplit(c.remote_write_url) if c.remote_write_url else None
        if parts is not None and parts.username:
            secret = {"username": unquote(parts.username)}
            if parts.password is not None:
                secret["password"] = unquote(parts.password)
            out.append(
                {
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "type": "Opaque",
                    "metadata": {"name": f"{name}-remote-write", "labels": labels},
                    "stringData": secret,
                }
            )
            volumes.append({"name": "secret", "secret": {"secretName": f"{name}-remote-write"}})
            mounts.append({"name": "secret", "mountPath": _SECRET_DIR, "readOnly": True})
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
            deployment_available,
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
    return re.sub(r"[^a-zA-Z0-9_]", "_", annotation)
