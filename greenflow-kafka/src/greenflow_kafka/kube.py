"""Apache Kafka on Kubernetes: manifests as pure functions, and the deployment the ``kafka``
service drives through the platform's :class:`KubeSession`.

Topology. One StatefulSet of the official ``apache/kafka:<version>`` image in KRaft mode, one
pod per broker, and a headless Service that gives each pod a stable DNS name
(``<sts>-<i>.<svc>.<ns>.svc``). Every pod is a broker; the first ``voters`` pods are also
KRaft controllers (``process.roles=broker,controller``, a static quorum
``controller.quorum.voters``), the others are brokers only. ``voters`` is the service's
``controllers`` when set (at most ``brokers``), else 3 with 3 brokers or more and 1 below
(:func:`default_voters`). So there are no
dedicated controller pods: all pods sit on broker nodes, one per node, and the energy of a
broker node includes its share of the quorum's work (say so when comparing with a local
cluster, whose N > 1 topology has dedicated controller JVMs). One StatefulSet keeps the
ordinals, the DNS names and the placement rule shared; 3 voters are a real quorum.

Configuration. The image renders every ``KAFKA_*`` environment variable into
``server.properties`` (``/etc/kafka/docker/configure`` → ``utility render-properties``: the
prefix is dropped, ``_`` → ``.``, ``__`` → ``_``, ``___`` → ``-``, lower case), then formats
the storage with ``CLUSTER_ID`` and starts the broker. Per-pod values (``node.id``,
``process.roles``, ``listeners``, ``advertised.listeners``) cannot be static environment in a
StatefulSet, so a short shell prelude derives them from the pod's ordinal (its hostname
suffix) and then execs the image's own ``/etc/kafka/docker/run``. Two quirks of that
renderer are guarded here: a value containing ``=`` is dropped silently (refused here), and
a key with a one-character segment does not round-trip (``x.y.z`` would come back as
``x.y_z``; refused here). ``KAFKA_HEAP_OPTS`` is read by ``kafka-server-start.sh`` and is
also rendered as a harmless unknown property ``heap.opts`` (the image's exclude list spells
it ``KAFKA_HEAP_OPT``). ``enableServiceLinks`` is off: a Service named ``kafka`` in the
namespace would otherwise inject ``KAFKA_PORT=tcp://…`` and friends, which the image would
render into ``server.properties`` too.

Resources. cpu and memory requests equal limits (Guaranteed QoS: the broker is neither
throttled below nor allowed above what the plan says, and is the last to be evicted). The
heap is 50 % of the memory limit unless ``heap`` is set; the rest is for the page cache,
direct buffers and metaspace, which Kafka leans on.

Metrics (``metrics = true``). The image has no metrics endpoint, so the Prometheus JMX
exporter's java agent (:data:`~greenflow_kafka.distribution.JMX_EXPORTER_VERSION`, 577 KB)
and its rules travel in a ConfigMap (``binaryData``; the object limit is 1 MiB) mounted
read-only at :data:`METRICS_MOUNT`; ``KAFKA_OPTS`` (read by ``kafka-run-class.sh``; the
image's property rendering excludes it, and would drop its value holding ``=`` anyway) loads it, serving ``/metrics`` on
:data:`METRICS_PORT`; the pod template carries the ``prometheus.io/*`` annotations the
``prometheus`` service discovers, and a hash of the ConfigMap's content so that a changed
agent or rule set rolls the pods. Neither internet access from the cluster nor another
image is needed. The storage format step of the image runs under ``KAFKA_OPTS`` too: its
short-lived JVM serves the same port before the broker starts, which is harmless; a Kafka
tool run by hand inside a broker pod must clear ``KAFKA_OPTS`` (the port is taken).

Storage. ``"emptyDir"`` (the node's disk, size-limited to ``storage_size``, gone with the
pod) or a storage class name, which becomes a ``volumeClaimTemplate`` of ``storage_size``
per broker; the claims are deleted when the service is removed.
"""

from __future__ import annotations

import base64
import hashlib
import re
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from greenflow.api import DeployContext, Inventory, Platform
from greenflow.errors import ServiceError
from greenflow_kafka.cluster import RESERVED_KEYS
from greenflow_kafka.distribution import JmxExporter, heap_bytes
from greenflow_kubernetes import (
    MIB,
    KubeSession,
    cpu_cores,
    dns_label,
    memory_bytes,
    scrape_annotations,
    session_of,
    statefulset_ready,
)

KAFKA_PORT = 9092
CONTROLLER_PORT = 9093
IMAGE_REPOSITORY = "apache/kafka"
#: Where the data volume is mounted; the log dirs are a subdirectory so that a file system's
#: own entries (``lost+found`` on ext4 volumes) never look like a partition to Kafka.
DATA_MOUNT = "/var/lib/kafka/data"
LOG_DIRS = f"{DATA_MOUNT}/kraft"
#: The image's user (``appuser``, made by ``adduser -D`` in the Dockerfile): claims are
#: mounted group-writable for it.
KAFKA_UID = 1000
#: ``app.kubernetes.io/name`` of what this module creates.
APP_NAME = "kafka"
#: Role of the nodes brokers are placed on (``KubeSession.node_selector``).
BROKER_ROLE = "broker"
EMPTY_DIR = "emptyDir"
#: Port of the JMX exporter's ``/metrics`` in each broker pod (the exporter's customary one).
METRICS_PORT = 9404
#: Where the exporter's ConfigMap is mounted in the broker container.
METRICS_MOUNT = "/opt/greenflow/jmx-exporter"
#: Pod-template annotation holding the SHA-256 of the exporter ConfigMap's content.
METRICS_HASH_ANNOTATION = "greenflow.io/jmx-exporter-sha256"
HEAP_FRACTION = 0.5


# -- quantities and names ---------------------------------------------------------------


def java_heap_mib(text: str) -> int:
    """A JVM heap size (``512m``, ``2g``, ``1024k``, bytes) in whole MiB."""
    return heap_bytes(text) // MIB


def cluster_id(namespace: str, name: str) -> str:
    """A KRaft cluster id (22 characters of URL-safe base64 of a UUID) derived from the
    namespace and the StatefulSet: stable across re-applies and pod restarts, distinct per
    experiment."""
    raw = uuid.uuid5(uuid.NAMESPACE_DNS, f"{name}.{namespace}.greenflow").bytes
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


# -- the image's env ↔ property mapping ---------------------------------------------------

_SINGLE_UNDERSCORE = re.compile(r"[^_]_[^_]")


def property_from_env(key: str) -> str:
    """What the image's ``utility render-properties`` makes of an environment variable name
    with its ``KAFKA_`` prefix removed (a port of its ``ConvertKey``)."""
    single = _SINGLE_UNDERSCORE.sub(lambda m: m.group(0).replace("_", "."), key)
    return single.replace("___", "-").replace("__", "_").lower()


def env_from_property(prop: str) -> str:
    """The ``KAFKA_*`` variable the image renders back into ``prop``; ValueError for keys that
    do not survive the round trip (one-character segments, leading or doubled dots)."""
    key = prop.replace("_", "__").replace("-", "___").replace(".", "_").upper()
    if property_from_env(key) != prop:
        msg = (
            f"server property {prop!r} cannot be passed through the apache/kafka image's "
            f"environment mapping (KAFKA_{key} would become "
            f"{property_from_env(key)!r})"
        )
        raise ValueError(msg)
    return f"KAFKA_{key}"


def check_overrides(overrides: Mapping[str, str]) -> None:
    """Raise ValueError naming each override the Kubernetes deployment cannot honour."""
    problems = []
    for key, value in overrides.items():
        if key in RESERVED_KEYS:
            problems.append(f"{key!r} is derived from the topology")
            continue
        if "=" in str(value):
            # utility's ListToMap keeps only KEY=VALUE with exactly one '='.
            problems.append(f"{key!r}: the image drops values containing '='")
            continue
        try:
            env_from_property(key)
        except ValueError as exc:
            problems.append(str(exc))
    if problems:
        raise ValueError("overrides: " + "; ".join(problems))


# -- the deployment -------------------------------------------------------------------------


@attrs.frozen
class KafkaKubeSpec:
    """Everything the manifests depend on; built by the service from its config and the
    platform's session (namespace, labels, node selector)."""

    name: str
    namespace: str
    version: str
    brokers: int
    voters: int
    cpu: str
    memory: str
    storage: str = EMPTY_DIR
    storage_size: str = "10Gi"
    heap: str | None = None
    image: str | None = None
    overrides: Mapping[str, str] = attrs.field(factory=dict)
    labels: Mapping[str, str] = attrs.field(factory=dict)
    node_selector: Mapping[str, str] = attrs.field(factory=dict)
    tolerations: Sequence[Mapping[str, str]] = ()
    #: The JMX exporter agent to run in every broker pod (``metrics = true``), or None.
    metrics: JmxExporter | None = None

    def __attrs_post_init__(self) -> None:
        if not 1 <= self.voters <= self.brokers:
            msg = f"voters must be in [1, brokers={self.brokers}], got {self.voters}"
            raise ValueError(msg)
        check_overrides(self.overrides)
        limit_mib = memory_bytes(self.memory) // MIB
        if self.heap is not None and java_heap_mib(self.heap) >= limit_mib:
            msg = (
                f"heap {self.heap} does not fit in memory {self.memory}: the heap must be "
                "below the container's memory limit (half of it is the default)"
            )
            raise ValueError(msg)
        cpu_cores(self.cpu)

    @property
    def service_name(self) -> str:
        return f"{self.name}-headless"

    @property
    def image_ref(self) -> str:
        return self.image or f"{IMAGE_REPOSITORY}:{self.version}"

    @property
    def heap_mib(self) -> int:
        if self.heap is not None:
            return java_heap_mib(self.heap)
        return int(memory_bytes(self.memory) * HEAP_FRACTION) // MIB

    def pod_host(self, ordinal: int) -> str:
        return f"{self.name}-{ordinal}.{self.service_name}.{self.namespace}.svc"

    @property
    def bootstrap(self) -> str:
        return ",".join(f"{self.pod_host(i)}:{KAFKA_PORT}" for i in range(self.brokers))

    @property
    def metrics_configmap(self) -> str:
        return f"{self.name}-jmx-exporter"

    @property
    def metrics_targets(self) -> list[str]:
        """``host:port`` of every broker's ``/metrics`` (in-cluster DNS), empty without metrics."""
        if self.metrics is None:
            return []
        return [f"{self.pod_host(i)}:{METRICS_PORT}" for i in range(self.brokers)]

    @property
    def selector(self) -> dict[str, str]:
        # The instance label is the session's service label when there is one (so that
        # deleting by service labels finds the pods), else the StatefulSet's name.
        instance = self.labels.get("app.kubernetes.io/instance", self.name)
        return {"app.kubernetes.io/name": APP_NAME, "app.kubernetes.io/instance": instance}


def server_properties(spec: KafkaKubeSpec) -> dict[str, str]:
    """The cluster-wide ``server.properties`` (per-pod keys come from the prelude), with the
    same defaults as the local cluster so that local and Kubernetes runs compare."""
    rf, min_isr = str(min(3, spec.brokers)), str(min(2, spec.brokers))
    props = {
        "controller.quorum.voters": ",".join(
            f"{i}@{spec.pod_host(i)}:{CONTROLLER_PORT}" for i in range(spec.voters)
        ),
        "controller.listener.names": "CONTROLLER",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "inter.broker.listener.name": "PLAINTEXT",
        "log.dirs": LOG_DIRS,
        "offsets.topic.replication.factor": rf,
        "transaction.state.log.replication.factor": rf,
        "transaction.state.log.min.isr": min_isr,
        "share.coordinator.state.topic.replication.factor": rf,
        "share.coordinator.state.topic.min.isr": min_isr,
        "num.partitions": "1",
        "group.initial.rebalance.delay.ms": "0",
    }
    props.update(spec.overrides)
    return props


# The per-pod part of the configuration, then the image's own entry point. Only GREENFLOW_*
# variables are read here; the KAFKA_* ones exported become server properties.
_PRELUDE = """\
set -eu
ordinal="${HOSTNAME##*-}"
case "$ordinal" in ''|*[!0-9]*) echo "greenflow: cannot read an ordinal from $HOSTNAME" >&2; exit 1;; esac
export KAFKA_NODE_ID="$ordinal"
export KAFKA_ADVERTISED_LISTENERS="PLAINTEXT://${HOSTNAME}.${GREENFLOW_DOMAIN}:@PORT@"
if [ "$ordinal" -lt "$GREENFLOW_VOTERS" ]; then
  export KAFKA_PROCESS_ROLES="broker,controller"
  export KAFKA_LISTENERS="PLAINTEXT://:@PORT@,CONTROLLER://:@CPORT@"
else
  export KAFKA_PROCESS_ROLES="broker"
  export KAFKA_LISTENERS="PLAINTEXT://:@PORT@"
fi
exec /etc/kafka/docker/run
""".replace("@PORT@", str(KAFKA_PORT)).replace("@CPORT@", str(CONTROLLER_PORT))


def _env(spec: KafkaKubeSpec) -> list[dict[str, Any]]:
    env = [
        {"name": "GREENFLOW_DOMAIN", "value": f"{spec.service_name}.{spec.namespace}.svc"},
        {"name": "GREENFLOW_VOTERS", "value": str(spec.voters)},
        {"name": "CLUSTER_ID", "value": cluster_id(spec.namespace, spec.name)},
        {"name": "KAFKA_HEAP_OPTS", "value": f"-Xms{spec.heap_mib}m -Xmx{spec.heap_mib}m"},
    ]
    env += [
        {"name": env_from_property(k), "value": str(v)}
        for k, v in sorted(server_properties(spec).items())
    ]
    return env


def pod_labels(spec: KafkaKubeSpec, component: str = "broker") -> dict[str, str]:
    return {**spec.labels, **spec.selector, "app.kubernetes.io/component": component}


def anti_affinity(selector: Mapping[str, str]) -> dict[str, Any]:
    """At most one pod matching ``selector`` per node (required, not preferred: two brokers
    sharing a node would share its energy and its disk)."""
    return {
        "podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {
                    "labelSelector": {"matchLabels": dict(selector)},
                    "topologyKey": "kubernetes.io/hostname",
                }
            ],
        },
    }


def guaranteed_resources(cpu: str, memory: str) -> dict[str, Any]:
    """requests = limits (the Guaranteed QoS class)."""
    amounts = {"cpu": str(cpu), "memory": str(memory)}
    return {"requests": dict(amounts), "limits": dict(amounts)}


def headless_service(spec: KafkaKubeSpec) -> dict[str, Any]:
    """The governing Service of the StatefulSet: per-pod DNS names, published before the pods
    are ready because the KRaft quorum must form before any broker is."""
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
                {"name": "controller", "port": CONTROLLER_PORT, "targetPort": CONTROLLER_PORT},
            ],
        },
    }


def data_volume(
    storage: str, storage_size: str, labels: Mapping[str, str]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(pod volumes, volumeClaimTemplates) for a volume named ``data``."""
    if storage == EMPTY_DIR:
        return [{"name": "data", "emptyDir": {"sizeLimit": storage_size}}], []
    claim = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "data", "labels": dict(labels)},
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "storageClassName": storage,
            "resources": {"requests": {"storage": storage_size}},
        },
    }
    return [], [claim]


_METRICS_JAR_KEY = "jmx_prometheus_javaagent.jar"
_METRICS_CONFIG_KEY = "kafka.yaml"


def metrics_configmap(spec: KafkaKubeSpec) -> dict[str, Any]:
    """The ConfigMap carrying the JMX exporter's jar (``binaryData``) and rules (``data``)."""
    if spec.metrics is None:
        msg = "metrics_configmap needs a spec with metrics"
        raise ValueError(msg)
    jar = spec.metrics.jar.read_bytes()
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": spec.metrics_configmap,
            "namespace": spec.namespace,
            "labels": pod_labels(spec, "jmx-exporter"),
        },
        "binaryData": {_METRICS_JAR_KEY: base64.b64encode(jar).decode("ascii")},
        "data": {_METRICS_CONFIG_KEY: spec.metrics.config.read_text()},
    }


def _metrics_hash(configmap: Mapping[str, Any]) -> str:
    digest = hashlib.sha256()
    for section in ("binaryData", "data"):
        for key, value in sorted(configmap[section].items()):
            digest.update(f"{section}/{key}\0{value}\0".encode())
    return digest.hexdigest()


def _with_metrics(
    spec: KafkaKubeSpec, container: dict[str, Any], volumes: list[dict[str, Any]]
) -> dict[str, str]:
    """Add the JMX exporter to the broker container and its volume to ``volumes``; return the
    pod annotations (the ``prometheus`` service's scrape annotations and the content hash)."""
    agent = (
        f"-javaagent:{METRICS_MOUNT}/{_METRICS_JAR_KEY}="
        f"{METRICS_PORT}:{METRICS_MOUNT}/{_METRICS_CONFIG_KEY}"
    )
    container["env"] = [*container["env"], {"name": "KAFKA_OPTS", "value": agent}]
    container["ports"] = [*container["ports"], {"name": "metrics", "containerPort": METRICS_PORT}]
    container["volumeMounts"] = [
        *container["volumeMounts"],
        {"name": "jmx-exporter", "mountPath": METRICS_MOUNT, "readOnly": True},
    ]
    volumes.append({"name": "jmx-exporter", "configMap": {"name": spec.metrics_configmap}})
    return {
        **scrape_annotations(METRICS_PORT),
        METRICS_HASH_ANNOTATION: _metrics_hash(metrics_configmap(spec)),
    }


def statefulset(spec: KafkaKubeSpec) -> dict[str, Any]:
    labels = pod_labels(spec)
    volumes, claims = data_volume(spec.storage, spec.storage_size, labels)
    container: dict[str, Any] = {
        "name": "kafka",
        "image": spec.image_ref,
        "command": ["/bin/bash", "-c", _PRELUDE],
        "env": _env(spec),
        "ports": [
            {"name": "kafka", "containerPort": KAFKA_PORT},
            {"name": "controller", "containerPort": CONTROLLER_PORT},
        ],
        "resources": guaranteed_resources(spec.cpu, spec.memory),
        "volumeMounts": [{"name": "data", "mountPath": DATA_MOUNT}],
        # Ready once the broker's listener accepts TCP connections. Probes go on all through
        # the measurement, so they must be cheap: a JVM-based check (kafka-broker-api-versions)
        # would add its own energy to the broker's node every period.
        "readinessProbe": {
            "tcpSocket": {"port": KAFKA_PORT},
            "periodSeconds": 5,
            "failureThreshold": 3,
        },
    }
    annotations = _with_metrics(spec, container, volumes) if spec.metrics is not None else None
    return broker_statefulset(
        spec, labels, container, volumes, claims, fs_group=KAFKA_UID, annotations=annotations
    )


def broker_statefulset(
    spec: Any,
    labels: Mapping[str, str],
    container: Mapping[str, Any],
    volumes: Sequence[Mapping[str, Any]],
    claims: Sequence[Mapping[str, Any]],
    *,
    fs_group: int,
    annotations: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A StatefulSet of broker pods, one per broker-role node, all started at once.

    Shared by Kafka and Redpanda. ``spec`` has ``name``, ``namespace``, ``service_name``,
    ``brokers``, ``selector``, ``node_selector`` and ``tolerations``.
    """
    metadata: dict[str, Any] = {"labels": dict(labels)}
    if annotations:
        metadata["annotations"] = dict(annotations)
    sts: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": spec.name, "namespace": spec.namespace, "labels": dict(labels)},
        "spec": {
            "serviceName": spec.service_name,
            "replicas": spec.brokers,
            # All pods at once: a quorum needs its voters up together to elect a leader.
            "podManagementPolicy": "Parallel",
            "selector": {"matchLabels": dict(spec.selector)},
            "template": {
                "metadata": metadata,
                "spec": {
                    "enableServiceLinks": False,
                    "nodeSelector": dict(spec.node_selector),
                    "tolerations": [dict(t) for t in spec.tolerations],
                    "affinity": anti_affinity(spec.selector),
                    "securityContext": {"fsGroup": fs_group},
                    "terminationGracePeriodSeconds": 30,
                    "containers": [dict(container)],
                    "volumes": [dict(v) for v in volumes],
                },
            },
        },
    }
    if claims:
        sts["spec"]["volumeClaimTemplates"] = [dict(c) for c in claims]
        sts["spec"]["persistentVolumeClaimRetentionPolicy"] = {
            "whenDeleted": "Delete",
            "whenScaled": "Delete",
        }
    return sts


def manifests(spec: KafkaKubeSpec) -> list[dict[str, Any]]:
    """Every object of the deployment, in apply order (the exporter's ConfigMap before the
    pods that mount it)."""
    objects = [headless_service(spec)]
    if spec.metrics is not None:
        objects.append(metrics_configmap(spec))
    return [*objects, statefulset(spec)]


# -- readiness, health, removal (shared with other brokers on Kubernetes) ----------------------


@attrs.define
class BrokerStatefulSet:
    """A StatefulSet of brokers and the objects that go with it, applied through a session.

    ``objects`` are the manifests in apply order (the StatefulSet among them, named
    ``name``); every one of them, and every pod and volume claim made from them, carries
    ``labels`` (the session's service labels), which is how :meth:`remove` finds them all.
    """

    session: KubeSession
    service: str
    name: str
    replicas: int
    objects: Sequence[dict[str, Any]]
    bootstrap: str
    labels: Mapping[str, str]

    def apply(self) -> None:
        for obj in self.objects:
            self.session.apply(obj)

    def status(self) -> tuple[bool, str]:
        return statefulset_ready(self.session.get("StatefulSet", self.name), self.replicas)

    def wait_ready(self, timeout_s: float, what: str) -> None:
        replicas = self.replicas
        self.session.wait(
            "StatefulSet", self.name, lambda sts: statefulset_ready(sts, replicas), timeout_s, what
        )

    def health(self) -> str | None:
        try:
            ok, seen = self.status()
        except Exception as exc:  # the API server may be briefly unreachable
            return f"could not read StatefulSet {self.name!r}: {type(exc).__name__}: {exc}"
        return None if ok else f"StatefulSet {self.name!r} is not ready: {seen}"

    def remove(self) -> None:
        """Delete every object of the service (StatefulSet, pods, Service, claims...) and
        wait until they are gone. Idempotent."""
        self.session.delete_labelled(self.labels)

    def state(self) -> dict[str, Any]:
        """What ``remove_recorded`` and ``attach`` need (JSON; no credential)."""
        return {
            "kubernetes": {
                "session": self.session.state(),
                "service": self.service,
                "statefulset": self.name,
                "replicas": self.replicas,
                "labels": dict(self.labels),
            },
            "bootstrap_servers": self.bootstrap,
        }


def kafka_deployment(session: KubeSession, service: str, spec: KafkaKubeSpec) -> BrokerStatefulSet:
    """The deployment of ``spec`` through ``session``, for the plan's service ``service``."""
    return BrokerStatefulSet(
        session,
        service,
        spec.name,
        spec.brokers,
        manifests(spec),
        spec.bootstrap,
        session.service_labels(service),
    )


def default_voters(brokers: int, controllers: int | None) -> int:
    """KRaft voters among the brokers: ``controllers`` when set (at most ``brokers``), else 3
    when there are 3 brokers or more (a quorum that survives one loss, and the first three
    brokers do the same work), else 1."""
    if controllers is not None:
        return min(controllers, brokers)
    return 3 if brokers >= 3 else 1


def check_broker_nodes(inventory: Inventory, brokers: int, service: str) -> None:
    """One broker per broker node: fail before anything is applied when there are fewer
    broker nodes than brokers (the pods would stay Pending, Unschedulable)."""
    nodes = inventory.with_role(BROKER_ROLE)
    if len(nodes) < brokers:
        have = ", ".join(h.name for h in nodes) or "none"
        msg = (
            f"service {service!r} runs {brokers} broker(s), one per node with role "
            f"{BROKER_ROLE!r}, but the cluster has {len(nodes)} such node(s) ({have}); lower "
            "`brokers` or label more nodes (see the platform's role_labels)"
        )
        raise ServiceError(msg)


def deploy_statefulset(deployment: BrokerStatefulSet, ctx: DeployContext) -> BrokerStatefulSet:
    """Record what removal needs, then apply (returns without waiting for readiness)."""
    ctx.record_state(deployment.state())
    deployment.apply()
    return deployment


def deploy_kafka(
    service: str, config: Any, platform: Platform, inventory: Inventory, ctx: DeployContext
) -> tuple[BrokerStatefulSet, KafkaKubeSpec]:
    """The ``kafka`` service's deployment on the ``kubernetes`` platform."""
    kube = session_of(platform, who=f"service {service!r} (kafka)")
    check_broker_nodes(inventory, config.brokers, service)
    metrics = None
    if getattr(config, "metrics", False):
        from greenflow_kafka.distribution import resolve_jmx_exporter

        # Resolved here, on the machine running greenflow: the jar reaches the pods in a
        # ConfigMap, so the cluster needs no internet access.
        metrics = resolve_jmx_exporter()
    try:
        spec = KafkaKubeSpec(
            name=dns_label(service, 40),
            namespace=kube.namespace,
            version=config.version,
            brokers=config.brokers,
            voters=default_voters(config.brokers, config.controllers),
            cpu=config.cpu,
            memory=config.memory,
            storage=config.storage,
            storage_size=config.storage_size,
            heap=config.heap,
            image=config.image,
            overrides=dict(config.overrides),
            labels={**kube.labels, **kube.service_labels(service)},
            node_selector=kube.node_selector(BROKER_ROLE),
            tolerations=kube.tolerations([BROKER_ROLE]),
            metrics=metrics,
        )
    except ValueError as exc:
        msg = f"service {service!r} cannot run on Kubernetes as configured: {exc}"
        raise ServiceError(msg) from None
    return deploy_statefulset(kafka_deployment(kube, service, spec), ctx), spec


def reconnect(state: Mapping[str, Any]) -> BrokerStatefulSet | None:
    """The deployment recorded in ``state`` by :meth:`BrokerStatefulSet.state`, through a new
    session; None when ``state`` records no Kubernetes deployment."""
    recorded = state.get("kubernetes")
    if not recorded:
        return None
    session = KubeSession.from_state(recorded["session"])
    return BrokerStatefulSet(
        session,
        recorded["service"],
        recorded["statefulset"],
        int(recorded["replicas"]),
        (),
        str(state.get("bootstrap_servers", "")),
        dict(recorded["labels"]),
    )


def describe(deployment: BrokerStatefulSet, spec: KafkaKubeSpec | None) -> dict[str, Any]:
    """Provenance of a deployment (no credential)."""
    facts: dict[str, Any] = {
        "platform": "kubernetes",
        "namespace": deployment.session.namespace,
        "statefulset": deployment.name,
        "brokers": deployment.replicas,
        "bootstrap": deployment.bootstrap,
    }
    if spec is not None:
        facts.update(
            version=spec.version,
            image=spec.image_ref,
            voters=spec.voters,
            cpu=spec.cpu,
            memory=spec.memory,
            heap_mib=spec.heap_mib,
            storage=spec.storage,
            storage_size=spec.storage_size,
            overrides=dict(spec.overrides),
            node_selector=dict(spec.node_selector),
            metrics=None
            if spec.metrics is None
            else {
                **spec.metrics.describe(),
                "port": METRICS_PORT,
                "configmap": spec.metrics_configmap,
                "targets": spec.metrics_targets,
            },
        )
    return facts


def attach_recorded(state: Mapping[str, Any]) -> BrokerStatefulSet | None:
    """A handle on a deployment left up (``greenflow up``) when its StatefulSet is still all
    ready, else None (the runner then removes it and deploys afresh)."""
    deployment = reconnect(state)
    if deployment is None:
        return None
    try:
        ready, _seen = deployment.status()
    except Exception:  # the cluster or the namespace is gone
        ready = False
    return deployment if ready else None


def remove_recorded(state: Mapping[str, Any]) -> None:
    """Remove a deployment recorded by a process that is gone (``greenflow down``)."""
    deployment = reconnect(state)
    if deployment is not None:
        try:
            deployment.remove()
        finally:
            close = getattr(deployment.session, "close", None)
            if callable(close):
                close()


__all__ = [
    "BROKER_ROLE",
    "EMPTY_DIR",
    "KAFKA_PORT",
    "METRICS_HASH_ANNOTATION",
    "METRICS_PORT",
    "BrokerStatefulSet",
    "KafkaKubeSpec",
    "KubeSession",
    "anti_affinity",
    "attach_recorded",
    "broker_statefulset",
    "check_broker_nodes",
    "check_overrides",
    "cluster_id",
    "data_volume",
    "default_voters",
    "deploy_kafka",
    "deploy_statefulset",
    "describe",
    "env_from_property",
    "guaranteed_resources",
    "headless_service",
    "kafka_deployment",
    "manifests",
    "metrics_configmap",
    "property_from_env",
    "reconnect",
    "remove_recorded",
    "server_properties",
    "statefulset",
]
