"""The ``kafka`` service: a real Apache Kafka cluster in KRaft mode, as local processes or, on
the ``kubernetes`` platform, as a StatefulSet of the official image (:mod:`greenflow_kafka.kube`).
It is a :class:`~greenflow_kafka.target.KafkaTarget`: ``kafka-ingest`` loads it."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import attrs

from greenflow.api import Capability, DeployContext, Inventory, Platform, ProcessGroups, Service
from greenflow.api.prometheus import PROMETHEUS_TARGETS_FILE, write_targets_file
from greenflow.errors import ServiceError
from greenflow.plan.validators import at_least, cpu_quantity, matches, memory_quantity
from greenflow_kafka.distribution import DEFAULT_KAFKA_VERSION, heap_bytes

if TYPE_CHECKING:
    from greenflow_kafka.kube import BrokerStatefulSet, KafkaKubeSpec
    from greenflow_kubernetes import KubeSession


#: A JVM heap size as -Xmx takes it: bytes, or a number with k, m or g.
HEAP_PATTERN = r"[0-9]+[kKmMgG]?"
#: Heap of each local JVM when `heap` is unset.
DEFAULT_LOCAL_HEAP = "512m"


def local_heap_problem(config: KafkaConfig, memory_bytes: int) -> str | None:
    """Why the local JVMs' heaps (each broker's and dedicated controller's, -Xms = -Xmx) do
    not fit in ``memory_bytes`` of memory, or None."""
    heap = config.heap or DEFAULT_LOCAL_HEAP
    jvms = config.brokers + ((config.controllers or 1) if config.brokers > 1 else 0)
    total = jvms * heap_bytes(heap)
    if total < memory_bytes:
        return None
    gib = 1 << 30
    what = f"{jvms} JVMs × {heap} = {total / gib:.1f} GiB" if jvms > 1 else heap
    return (
        f"heap: {what} does not fit in this machine's {memory_bytes / gib:.1f} GiB of memory "
        "(each broker and controller JVM reserves its whole heap, -Xms = -Xmx); lower heap "
        f"(unset, it is {DEFAULT_LOCAL_HEAP}) or use fewer brokers"
    )


@attrs.frozen
class KafkaConfig:
    """``[[services]] type = "kafka"``."""

    #: Apache Kafka version; jars come from KAFKA_HOME or Maven Central (see docs/kafka.md).
    version: str = DEFAULT_KAFKA_VERSION
    #: Brokers; 1 runs one combined controller+broker, N>1 adds dedicated controllers.
    brokers: int = attrs.field(default=1, validator=at_least(1))
    #: Dedicated controllers when brokers > 1 (1 saves a JVM on small machines; 3 for a quorum).
    #: Unset: 1 locally. On Kubernetes the controllers are the first brokers (combined
    #: nodes): this many, at most `brokers`; unset, 3 with 3+ brokers, else 1.
    controllers: int | None = attrs.field(
        default=None, validator=attrs.validators.optional(at_least(1))
    )
    #: JVM heap of each broker (-Xms = -Xmx). Unset: 512m locally, half of `memory` on
    #: Kubernetes. Locally the heaps of all JVMs must fit in this machine's memory.
    heap: str | None = attrs.field(
        default=None, validator=matches(HEAP_PATTERN, 'a JVM heap size such as "512m" or "2g"')
    )
    #: Extra server.properties for every node.
    overrides: dict[str, str] = attrs.field(factory=dict)
    #: Keep the data directories after the service is removed (local only).
    keep_data: bool = False
    #: Broker metrics through the Prometheus JMX exporter's java agent (docs/broker-metrics.md):
    #: locally on a free port per JVM, on Kubernetes on port 9404 of each pod, annotated for the
    #: `prometheus` service. Off by default: a broker runs as shipped unless asked.
    metrics: bool = False
    # -- Kubernetes only (docs/kafka.md "On Kubernetes"); ignored by local processes. --
    #: cpu of each broker pod, requests = limits (a Kubernetes quantity: "2", "500m").
    cpu: str = attrs.field(default="1", validator=cpu_quantity)
    #: Memory of each broker pod, requests = limits ("2Gi"); the heap is half of it by default.
    memory: str = attrs.field(default="2Gi", validator=memory_quantity)
    #: "emptyDir" (the node's disk, gone with the pod) or a storage class name (a claim each).
    storage: str = "emptyDir"
    #: Size of each broker's volume (the emptyDir's limit, or the claim's request).
    storage_size: str = attrs.field(default="10Gi", validator=memory_quantity)
    #: Container image; default apache/kafka:<version>.
    image: str | None = None


class KafkaService(Service):
    """Starts the cluster's JVMs under the run's work directory, waits for every broker in
    cluster metadata, and names each JVM for energy attribution."""

    Config: ClassVar[type] = KafkaConfig
    requires: ClassVar[frozenset[Capability]] = frozenset(
        {Capability.LOCAL_PROCESSES, Capability.KUBERNETES}
    )
    #: One unmeasured run after each deploy: a cold broker JVM used ~2.4× the CPU of later
    #: runs at the same load in its first two runs (issue 15).
    warmup_runs: ClassVar[int] = 1
    config: KafkaConfig

    @classmethod
    def required_roles(cls, config: Any) -> frozenset[str]:
        return frozenset({"broker"})

    @classmethod
    def check_platform(cls, config: Any, platform: Platform) -> str | None:
        if Capability.KUBERNETES in type(platform).capabilities:
            return None  # the heap is checked against each pod's memory limit there
        import psutil

        return local_heap_problem(config, psutil.virtual_memory().total)

    def __init__(self, name: str, config: KafkaConfig) -> None:
        super().__init__(name, config)
        self._cluster: Any = None
        self._attached: Mapping[str, Any] | None = None
        #: The StatefulSet and its spec when deployed on Kubernetes.
        self._kube: BrokerStatefulSet | None = None
        self._kube_spec: KafkaKubeSpec | None = None
        #: The brokers' metrics endpoints on Kubernetes (empty without metrics).
        self._kube_metrics: list[str] = []
        #: The file_sd targets file of the local JMX exporters, when they run.
        self._targets_file: Path | None = None

    # -- KafkaTarget: what kafka-ingest needs -------------------------------------------------

    @classmethod
    def broker_count(cls, config: KafkaConfig) -> int:
        return config.brokers

    @property
    def kube_session(self) -> KubeSession | None:
        """The platform's KubeSession when deployed on Kubernetes (kafka-ingest then runs its
        clients as Jobs), else None."""
        return self._kube.session if self._kube is not None else None

    @property
    def tools_image(self) -> str:
        """Image of the Kafka tools the load generator runs next to this service."""
        return self.config.image or f"apache/kafka:{self.config.version}"

    @property
    def tools_version(self) -> str:
        return self.config.version

    # -- Kubernetes (greenflow_kafka.kube); each method below starts with its branch --------

    def _deploy_kube(self, platform: Platform, inventory: Inventory, ctx: DeployContext) -> None:
        from greenflow_kafka.kube import deploy_kafka

        self._kube, self._kube_spec = deploy_kafka(self.name, self.config, platform, inventory, ctx)
        self._kube_metrics = self._kube_spec.metrics_targets
        if self._kube_metrics:
            # So that a later run attaching to it (`greenflow up`) still has the endpoint.
            ctx.record_state({**self._kube.state(), "metrics_targets": self._kube_metrics})

    # -- the service --------------------------------------------------------------------------

    def deploy(self, platform: Platform, inventory: Inventory, ctx: DeployContext) -> None:
        if Capability.KUBERNETES in type(platform).capabilities:
            self._deploy_kube(platform, inventory, ctx)
            return
        from greenflow_kafka.cluster import LocalKafkaCluster
        from greenflow_kafka.distribution import resolve_distribution

        brokers = inventory.with_role("broker")
        if not brokers:
            raise ServiceError(f"service {self.name!r}: no host carries the role 'broker'")
        # `greenflow validate` says it first; a run that skipped it must not start the JVMs.
        problem = self.check_platform(self.config, platform)
        if problem:
            raise ServiceError(f"service {self.name!r}: {problem}")
        dist = resolve_distribution(self.config.version)
        metrics = None
        if self.config.metrics:
            from greenflow_kafka.distribution import resolve_jmx_exporter

            metrics = resolve_jmx_exporter()
        self._cluster = LocalKafkaCluster(
            dist,
            work_dir=ctx.work_dir,
            log_dir=ctx.log_dir / self.name,
            brokers=self.config.brokers,
            controllers=self.config.controllers or 1,
            heap=self.config.heap or DEFAULT_LOCAL_HEAP,
            overrides=self.config.overrides,
            host=brokers[0].address,
            metrics=metrics,
        )
        try:
            self._cluster.start()
        finally:
            if self._cluster.nodes:
                ctx.record_state(self._cluster.state())
        if metrics is not None:
            # For a Prometheus the user runs: `file_sd_configs: [{files: [<this path>]}]`.
            self._targets_file = ctx.work_dir / PROMETHEUS_TARGETS_FILE
            write_targets_file(
                self._targets_file, self._cluster.prometheus_targets({"service": self.name})
            )

    def wait_ready(self, timeout_s: float) -> None:
        if self._kube is not None:
            self._kube.wait_ready(
                timeout_s,
                f"{self.config.brokers} Kafka broker(s) of service {self.name!r} to be ready",
            )
            return
        if self._attached is not None:
            return
        self._require()
        self._cluster.wait_ready(timeout_s)

    def endpoints(self) -> Mapping[str, str]:
        """``bootstrap``; with ``metrics = true`` also ``metrics``, the JMX exporters as
        comma-separated ``host:port`` (path ``/metrics``), Prometheus' target form."""
        if self._kube is not None:
            out = {"bootstrap": self._kube.bootstrap}
            targets = self._kube_metrics
        elif self._attached is not None:
            out = {"bootstrap": str(self._attached["bootstrap_servers"])}
            targets = list(dict(self._attached.get("metrics_targets") or {}).values())
        else:
            self._require()
            out = {"bootstrap": self._cluster.bootstrap_servers}
            targets = list(self._cluster.metrics_targets.values())
        if targets:
            out["metrics"] = ",".join(targets)
        return out

    def processes(self) -> ProcessGroups:
        if self._kube is not None:
            return {}  # pods on cluster nodes: energy comes per pod from Scaphandre
        if self._attached is not None:
            return {n: [int(p)] for n, p in self._attached["pids"].items()}
        if self._cluster is None:
            return {}
        return {name: [pid] for name, pid in self._cluster.processes().items()}

    def health(self) -> str | None:
        if self._kube is not None:
            return self._kube.health()
        if self._attached is not None:
            dead = _dead(self._attached)
            return f"Kafka processes gone: {', '.join(dead)}" if dead else None
        return self._cluster.health() if self._cluster is not None else None

    def remove(self) -> None:
        if self._kube is not None:
            self._kube.remove()
            self._kube = None
            return
        if self._attached is not None:
            from greenflow_kafka.cluster import cleanup_recorded

            cleanup_recorded(self._attached)
            self._attached = None
        if self._cluster is not None:
            self._cluster.stop(keep_data=self.config.keep_data)

    def describe(self) -> Mapping[str, Any]:
        if self._kube is not None:
            from greenflow_kafka.kube import describe

            return describe(self._kube, self._kube_spec)
        if self._cluster is not None:
            facts = dict(self._cluster.describe())
            if facts.get("metrics") and self._targets_file is not None:
                facts["metrics"] = {
                    **facts["metrics"],
                    "prometheus_file_sd": str(self._targets_file),
                }
            return facts
        return {"version": self.config.version, "brokers": self.config.brokers}

    def detach(self) -> None:
        if self._cluster is not None:
            # Otherwise the cluster's finalizer stops the JVMs when this process exits.
            self._cluster.detach()

    @classmethod
    def attach(cls, name: str, config: Any, state: Mapping[str, Any]) -> Service | None:
        if state.get("kubernetes"):
            from greenflow_kafka.kube import attach_recorded

            svc = cls(name, config)
            svc._kube = attach_recorded(state)
            svc._kube_spec = None
            svc._kube_metrics = [str(t) for t in state.get("metrics_targets") or []]
            return svc if svc._kube is not None else None
        if not state.get("pids") or _dead(state):
            return None
        svc = cls(name, config)
        svc._attached = dict(state)
        return svc

    @classmethod
    def remove_recorded(cls, config: Any, state: Mapping[str, Any]) -> None:
        from greenflow_kafka.cluster import cleanup_recorded
        from greenflow_kafka.kube import remove_recorded

        if state.get("kubernetes"):
            remove_recorded(state)
            return
        if state:
            cleanup_recorded(state)

    def _require(self) -> None:
        if self._cluster is None:
            raise ServiceError(f"service {self.name!r} was not deployed")


def _dead(state: Mapping[str, Any]) -> list[str]:
    import psutil

    from greenflow_kafka.cluster import is_greenflow_kafka_cmdline

    dead = []
    for name, pid in dict(state.get("pids", {})).items():
        try:
            alive = is_greenflow_kafka_cmdline(psutil.Process(int(pid)).cmdline())
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            alive = False
        if not alive:
            dead.append(name)
    return dead
