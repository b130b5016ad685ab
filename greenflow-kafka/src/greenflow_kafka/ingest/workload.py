"""The ``kafka-ingest`` workload: producers at a target rate against a Kafka target, messages
counted from offsets, optionally consumers and an end-to-end latency probe (docs/kafka.md).
It runs Kafka's tools as local processes (:mod:`.local`) or, when the target was deployed on
Kubernetes, as Jobs there (:mod:`.kube`)."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, cast

from greenflow.api import Capability, ProcessGroups, RunContext, Service, Workload, WorkloadResult
from greenflow.errors import WorkloadError
from greenflow_kafka.ingest.config import KafkaIngestConfig
from greenflow_kafka.ingest.local import LocalIngestRun
from greenflow_kafka.target import KafkaTarget, missing_members

if TYPE_CHECKING:
    from greenflow_kafka.ingest.kube import KubeIngestRun


class KafkaIngestWorkload(Workload):
    Config: ClassVar[type] = KafkaIngestConfig
    requires: ClassVar[frozenset[Capability]] = frozenset(
        {Capability.LOCAL_PROCESSES, Capability.KUBERNETES}
    )
    config: KafkaIngestConfig

    def __init__(self, config: KafkaIngestConfig) -> None:
        super().__init__(config)
        #: The run in progress: local processes, or Jobs when the target is on Kubernetes.
        self._run: LocalIngestRun | KubeIngestRun | None = None

    def targets(self, services: Collection[str]) -> Collection[str]:
        """Only the target is deployed for a run: `target = ["kafka", "redpanda"]` compares."""
        return [self.config.target]

    def validate(self, services: Mapping[str, Any]) -> str | None:
        c = self.config
        if c.target not in services:
            known = ", ".join(sorted(services)) or "none"
            return (
                f"target {c.target!r} is not a service of this plan (services: {known}); "
                "add a [[services]] entry or set `target`"
            )
        config = services[c.target]
        service = _service_class(config)
        if service is not None:
            if missing_members(service):
                return not_a_target(c.target, service)
            # It has every member of KafkaTarget, broker_count among them.
            brokers = cast("type[KafkaTarget]", service).broker_count(config)
            if c.replication > brokers:
                return (
                    f"replication {c.replication} is more than the {brokers} broker(s) of "
                    f"service {c.target!r}; lower replication or add brokers"
                )
        if c.per_producer < 1:
            return f"load {c.load:g} msg/s over {c.producers} producers is below 1 msg/s each"
        return None

    def prepare(self, ctx: RunContext) -> None:
        target = ctx.services[self.config.target]
        if not isinstance(target, KafkaTarget):
            raise WorkloadError(not_a_target(self.config.target, target))
        session = target.kube_session
        if session is None:
            self._run = LocalIngestRun(self.config, target)
        else:
            from greenflow_kafka.ingest.kube import KubeIngestRun

            self._run = KubeIngestRun(self.config, target, session)
        self._run.prepare(ctx)

    def execute(self, ctx: RunContext) -> WorkloadResult:
        if self._run is None:
            msg = "kafka-ingest: execute() before prepare()"
            raise WorkloadError(msg)
        return self._run.execute(ctx)

    def clean(self, ctx: RunContext) -> None:
        if self._run is not None:
            self._run.clean(ctx)

    def processes(self) -> ProcessGroups:
        return self._run.processes() if self._run is not None else {}


def not_a_target(name: str, service: object) -> str:
    """Why service ``name`` (a service or its class) cannot be kafka-ingest's target."""
    cls = service if isinstance(service, type) else type(service)
    lacks = ", ".join(missing_members(service))
    return (
        f"target {name!r} is a {cls.__name__} ({cls.__module__}), which kafka-ingest cannot "
        f"load: it lacks {lacks} of greenflow_kafka.KafkaTarget; point `target` at a Kafka-API "
        "service (kafka, redpanda)"
    )


def _service_class(config: object) -> type[Service] | None:
    """The loaded service class whose ``Config`` ``config`` is: ``validate`` gets the plan's
    service configs, and whether a service is a Kafka target is a property of its class."""
    found: list[type[Service]] = []
    stack = list(Service.__subclasses__())
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        if getattr(cls, "Config", None) is type(config):
            found.append(cls)
    # A subclass may share its parent's Config; a Kafka target among them is enough.
    return next((c for c in found if not missing_members(c)), found[0] if found else None)


__all__ = ["KafkaIngestWorkload", "not_a_target"]
