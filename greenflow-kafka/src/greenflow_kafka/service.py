"""The ``kafka`` service: a real Apache Kafka cluster in KRaft mode on the local platform."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import attrs

from greenflow.api import Capability, DeployContext, Inventory, Platform, ProcessGroups, Service
from greenflow.errors import ServiceError
from greenflow_kafka.distribution import DEFAULT_KAFKA_VERSION


def _at_least_one(_inst: Any, attribute: attrs.Attribute[Any], value: int) -> None:
    if value < 1:
        raise ValueError(f"{attribute.name}: expected an integer ≥ 1, got {value}")


@attrs.frozen
class KafkaConfig:
    """``[[services]] type = "kafka"``."""

    #: Apache Kafka version; jars come from KAFKA_HOME or Maven Central (see docs/kafka.md).
    version: str = DEFAULT_KAFKA_VERSION
    #: Brokers; 1 runs one combined controller+broker, N>1 adds dedicated controllers.
    brokers: int = attrs.field(default=1, validator=_at_least_one)
    #: Dedicated controllers when brokers > 1 (1 saves a JVM on small machines; 3 for a quorum).
    controllers: int = attrs.field(default=1, validator=_at_least_one)
    #: JVM heap of each broker (-Xms = -Xmx).
    heap: str = "512m"
    #: Extra server.properties for every node.
    overrides: dict[str, str] = attrs.field(factory=dict)
    #: Keep the data directories after the service is removed.
    keep_data: bool = False


class KafkaService(Service):
    """Starts the cluster's JVMs under the run's work directory, waits for every broker in
    cluster metadata, and names each JVM for energy attribution."""

    Config: ClassVar[type] = KafkaConfig
    requires: ClassVar[frozenset[Capability]] = frozenset({Capability.LOCAL_PROCESSES})
    config: KafkaConfig

    def __init__(self, name: str, config: KafkaConfig) -> None:
        super().__init__(name, config)
        self._cluster: Any = None
        self._attached: Mapping[str, Any] | None = None

    def deploy(self, platform: Platform, inventory: Inventory, ctx: DeployContext) -> None:
        from greenflow_kafka.cluster import LocalKafkaCluster
        from greenflow_kafka.distribution import resolve_distribution

        brokers = inventory.with_role("broker")
        if not brokers:
            raise ServiceError(f"service {self.name!r}: no host carries the role 'broker'")
        dist = resolve_distribution(self.config.version)
        self._cluster = LocalKafkaCluster(
            dist, work_dir=ctx.work_dir, log_dir=ctx.log_dir / self.name,
            brokers=self.config.brokers, controllers=self.config.controllers,
            heap=self.config.heap, overrides=self.config.overrides, host=brokers[0].address,
        )
        try:
            self._cluster.start()
        finally:
            if self._cluster.nodes:
                ctx.record_state(self._cluster.state())

    def wait_ready(self, timeout_s: float) -> None:
        if self._attached is not None:
            return
        self._require()
        self._cluster.wait_ready(timeout_s)

    def endpoints(self) -> Mapping[str, str]:
        if self._attached is not None:
            return {"bootstrap": str(self._attached["bootstrap_servers"])}
        self._require()
        return {"bootstrap": self._cluster.bootstrap_servers}

    def processes(self) -> ProcessGroups:
        if self._attached is not None:
            return {n: [int(p)] for n, p in self._attached["pids"].items()}
        if self._cluster is None:
            return {}
        return {name: [pid] for name, pid in self._cluster.processes().items()}

    def health(self) -> str | None:
        if self._attached is not None:
            dead = _dead(self._attached)
            return f"Kafka processes gone: {', '.join(dead)}" if dead else None
        return self._cluster.health() if self._cluster is not None else None

    def remove(self) -> None:
        if self._attached is not None:
            from greenflow_kafka.cluster import cleanup_recorded

            cleanup_recorded(self._attached)
            self._attached = None
        if self._cluster is not None:
            self._cluster.stop(keep_data=self.config.keep_data)

    def describe(self) -> Mapping[str, Any]:
        if self._cluster is not None:
            return dict(self._cluster.describe())
        return {"version": self.config.version, "brokers": self.config.brokers}

    def detach(self) -> None:
        if self._cluster is not None:
            # Otherwise the cluster's finalizer stops the JVMs when this process exits.
            self._cluster.detach()

    @classmethod
    def attach(cls, name: str, config: Any, state: Mapping[str, Any]) -> Service | None:
        if not state.get("pids") or _dead(state):
            return None
        svc = cls(name, config)
        svc._attached = dict(state)
        return svc

    @classmethod
    def remove_recorded(cls, config: Any, state: Mapping[str, Any]) -> None:
        from greenflow_kafka.cluster import cleanup_recorded

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
