"""Redpanda on Kubernetes: manifests as pure functions.

One StatefulSet of ``redpandadata/redpanda:<tag>``, one pod per broker on broker-role nodes
(node selector + required pod anti-affinity, as for Kafka), a headless Service publishing
not-ready addresses (the brokers must find each other before any is ready), and a ConfigMap
holding ``.bootstrap.yaml``: the cluster properties Redpanda reads once, when the cluster
forms (``write_caching_default`` and the plan's ``overrides``).

Each pod runs ``rpk redpanda start`` through a short shell prelude that:

- sets ``redpanda.empty_seed_starts_cluster: false`` in the pod's ``redpanda.yaml`` and passes
  every broker as a seed (``--seeds``): seed-driven cluster formation, where the seeds form the
  cluster together — with the legacy default only a node with an *empty* seed list may found a
  cluster, and a StatefulSet's pods all share one list;
- advertises the pod's own DNS name (``<sts>-<i>.<svc>.<ns>.svc``) for the Kafka API (listener
  ``internal``, 9092) and the internal RPC (33145);
- gives Seastar ``--smp <cores>``, ``--memory`` = 80 % of the container's memory limit with
  ``--reserve-memory 0M`` (the remaining 20 % is the container's own headroom, the split the
  Redpanda Helm chart uses), ``--overprovisioned`` when asked (no busy-polling, no thread
  pinning: right for shared nodes and for cpu limits without the static CPU manager), and
  ``--check=false`` (the production checks inspect the host's tuning, which a pod cannot
  change). Nothing of ``--mode dev-container`` is used: it would bypass fsync, which changes
  what is measured.

cpu (whole cores, = ``--smp``) and memory requests equal limits. Readiness is the Admin API's
``/v1/status/ready`` (an HTTP GET, cheap enough to run through a measurement). The pods are
annotated for the ``prometheus`` service, which then scrapes ``/public_metrics``.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from greenflow_kafka import EMPTY_DIR, broker_statefulset, data_volume, guaranteed_resources
from greenflow_redpanda.seastar import seastar_memory_mib

KAFKA_PORT = 9092
RPC_PORT = 33145
ADMIN_PORT = 9644
IMAGE_REPOSITORY = "redpandadata/redpanda"
DATA_MOUNT = "/var/lib/redpanda/data"
BOOTSTRAP_MOUNT = "/etc/greenflow"
#: The image's ``redpanda`` user and group: claims are mounted group-writable for it.
REDPANDA_GID = 101
APP_NAME = "redpanda"
#: The ``prometheus`` service scrapes pods annotated so: Redpanda's own metrics, on its
#: Admin API port.
SCRAPE_ANNOTATIONS = {
    "prometheus.io/scrape": "true",
    "prometheus.io/port": str(ADMIN_PORT),
    "prometheus.io/path": "/public_metrics",
}


@attrs.frozen
class RedpandaKubeSpec:
    """Everything the manifests depend on."""

    name: str
    namespace: str
    version: str
    brokers: int
    cores: int
    memory: str
    write_caching: bool = False
    overprovisioned: bool = True
    storage: str = EMPTY_DIR
    storage_size: str = "10Gi"
    image: str | None = None
    overrides: Mapping[str, Any] = attrs.field(factory=dict)
    labels: Mapping[str, str] = attrs.field(factory=dict)
    node_selector: Mapping[str, str] = attrs.field(factory=dict)
    tolerations: Sequence[Mapping[str, str]] = ()

    def __attrs_post_init__(self) -> None:
        if self.cores < 1:
            msg = f"cores must be ≥ 1, got {self.cores}"
            raise ValueError(msg)
        if self.seastar_memory_mib < 1024:
            msg = (
                f"memory {self.memory} leaves Redpanda {self.seastar_memory_mib} MiB; it "
                'needs at least 1 GiB per broker (write e.g. "2Gi")'
            )
            raise ValueError(msg)
        if "write_caching_default" in self.overrides:
            msg = "overrides: set write caching with `write_caching`, not write_caching_default"
            raise ValueError(msg)

    @property
    def service_name(self) -> str:
        return f"{self.name}-headless"

    @property
    def config_map_name(self) -> str:
        return f"{self.name}-bootstrap"

    @property
    def image_ref(self) -> str:
        return self.image or f"{IMAGE_REPOSITORY}:{self.version}"

    @property
    def seastar_memory_mib(self) -> int:
        return seastar_memory_mib(self.memory)

    @property
    def domain(self) -> str:
        return f"{self.service_name}.{self.namespace}.svc"

    def pod_host(self, ordinal: int) -> str:
        return f"{self.name}-{ordinal}.{self.domain}"

    @property
    def bootstrap(self) -> str:
        return ",".join(f"{self.pod_host(i)}:{KAFKA_PORT}" for i in range(self.brokers))

    @property
    def selector(self) -> dict[str, str]:
        instance = self.labels.get("app.kubernetes.io/instance", self.name)
        return {"app.kubernetes.io/name": APP_NAME, "app.kubernetes.io/instance": instance}


def bootstrap_properties(spec: RedpandaKubeSpec) -> dict[str, Any]:
    """The cluster properties of ``.bootstrap.yaml``."""
    from greenflow_redpanda.local import cluster_properties

    return cluster_properties(spec.write_caching, spec.overrides)


def start_flags(spec: RedpandaKubeSpec) -> list[str]:
    """``rpk redpanda start`` flags; ``${HOSTNAME}`` is the pod's name, expanded by its shell."""
    me = f"${{HOSTNAME}}.{spec.domain}"
    flags = [
        f"--smp={spec.cores}",
        f"--memory={spec.seastar_memory_mib}M",
        "--reserve-memory=0M",
        "--check=false",
        "--default-log-level=info",
        f"--kafka-addr=internal://0.0.0.0:{KAFKA_PORT}",
        f"--advertise-kafka-addr=internal://{me}:{KAFKA_PORT}",
        f"--rpc-addr=0.0.0.0:{RPC_PORT}",
        f"--advertise-rpc-addr={me}:{RPC_PORT}",
        "--seeds=" + ",".join(f"{spec.pod_host(i)}:{RPC_PORT}" for i in range(spec.brokers)),
    ]
    if spec.overprovisioned:
        flags.append("--overprovisioned")
    return flags


def start_script(spec: RedpandaKubeSpec) -> str:
    # Only ${HOSTNAME} is left for the shell; everything else is quoted.
    flags = " ".join(
        f.replace("${HOSTNAME}", '"${HOSTNAME}"') if "${HOSTNAME}" in f else shlex.quote(f)
        for f in start_flags(spec)
    )
    return (
        "set -eu\n"
        f"cp {BOOTSTRAP_MOUNT}/.bootstrap.yaml /etc/redpanda/.bootstrap.yaml\n"
        "rpk redpanda config set redpanda.empty_seed_starts_cluster false\n"
        f"exec rpk redpanda start {flags}\n"
    )


def pod_labels(spec: RedpandaKubeSpec) -> dict[str, str]:
    return {**spec.labels, **spec.selector, "app.kubernetes.io/component": "broker"}


def config_map(spec: RedpandaKubeSpec) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": spec.config_map_name,
            "namespace": spec.namespace,
            "labels": pod_labels(spec),
        },
        # JSON is YAML.
        "data": {".bootstrap.yaml": json.dumps(bootstrap_properties(spec), indent=2) + "\n"},
    }


def headless_service(spec: RedpandaKubeSpec) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": spec.service_name,
            "namespace": spec.namespace,
            "labels": pod_labels(spec),
        },
        "spec": {
            "clusterIP": "None",
            "publishNotReadyAddresses": True,
            "selector": dict(spec.selector),
            "ports": [
                {"name": "kafka", "port": KAFKA_PORT, "targetPort": KAFKA_PORT},
                {"name": "rpc", "port": RPC_PORT, "targetPort": RPC_PORT},
                {"name": "admin", "port": ADMIN_PORT, "targetPort": ADMIN_PORT},
            ],
        },
    }


def statefulset(spec: RedpandaKubeSpec) -> dict[str, Any]:
    labels = pod_labels(spec)
    volumes, claims = data_volume(spec.storage, spec.storage_size, labels)
    volumes = [*volumes, {"name": "bootstrap", "configMap": {"name": spec.config_map_name}}]
    container = {
        "name": "redpanda",
        "image": spec.image_ref,
        "command": ["/bin/bash", "-c", start_script(spec)],
        "ports": [
            {"name": "kafka", "containerPort": KAFKA_PORT},
            {"name": "rpc", "containerPort": RPC_PORT},
            {"name": "admin", "containerPort": ADMIN_PORT},
        ],
        "resources": guaranteed_resources(str(spec.cores), spec.memory),
        "volumeMounts": [
            {"name": "data", "mountPath": DATA_MOUNT},
            {"name": "bootstrap", "mountPath": BOOTSTRAP_MOUNT, "readOnly": True},
        ],
        "readinessProbe": {
            "httpGet": {"path": "/v1/status/ready", "port": ADMIN_PORT},
            "periodSeconds": 5,
            "failureThreshold": 3,
        },
    }
    return broker_statefulset(
        spec,
        labels,
        container,
        volumes,
        claims,
        fs_group=REDPANDA_GID,
        annotations=SCRAPE_ANNOTATIONS,
    )


def manifests(spec: RedpandaKubeSpec) -> list[dict[str, Any]]:
    """Every object of the deployment, in apply order."""
    return [config_map(spec), headless_service(spec), statefulset(spec)]


__all__ = [
    "ADMIN_PORT",
    "KAFKA_PORT",
    "RPC_PORT",
    "RedpandaKubeSpec",
    "bootstrap_properties",
    "config_map",
    "headless_service",
    "manifests",
    "start_flags",
    "start_script",
    "statefulset",
]
