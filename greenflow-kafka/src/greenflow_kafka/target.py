"""What a service must offer for ``kafka-ingest`` to load it: :class:`KafkaTarget`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from greenflow_kubernetes import KubeSession


@runtime_checkable
class KafkaTarget(Protocol):
    """A service that speaks the Kafka protocol, which ``kafka-ingest`` loads with Apache
    Kafka's own client tools: as processes on this host, or as Jobs of a Kafka image when
    the service was deployed on Kubernetes. The ``kafka`` and ``redpanda`` services are
    Kafka targets; a new Kafka-API broker becomes one by offering these members (a
    :class:`greenflow.api.Service` already has ``endpoints`` and ``health``).
    ``greenflow validate`` refuses a plan whose ``target`` lacks any of them.
    """

    @classmethod
    def broker_count(cls, config: Any) -> int:
        """How many brokers a service with ``config`` runs: the most a topic can be
        replicated (``greenflow validate`` checks ``replication`` against it)."""
        ...

    def endpoints(self) -> Mapping[str, str]:
        """Must hold ``"bootstrap"``: the bootstrap servers (``host:port,...``), reachable
        from where the clients run (this host, or the cluster's pods on Kubernetes)."""
        ...

    def health(self) -> str | None:
        """Why the service is unhealthy, or None (as :meth:`greenflow.api.Service.health`);
        a run fails as soon as it says so, and its topic is deleted only while it is healthy."""
        ...

    @property
    def tools_version(self) -> str:
        """The Apache Kafka version of the client tools that load the service: the broker's
        own for Kafka, one known to work with it for another system."""
        ...

    @property
    def tools_image(self) -> str:
        """A container image holding those tools under ``/opt/kafka/bin`` (the official
        ``apache/kafka`` image does), for the Jobs on Kubernetes."""
        ...

    @property
    def kube_session(self) -> KubeSession | None:
        """The session the service was deployed through when it runs on Kubernetes (the
        clients then run there, as Jobs), else None (they run on this host)."""
        ...


#: The members a Kafka target must have, in the order :class:`KafkaTarget` declares them.
KAFKA_TARGET_MEMBERS: tuple[str, ...] = tuple(
    name for name in vars(KafkaTarget) if not name.startswith("_")
)


def missing_members(candidate: object) -> list[str]:
    """The members of :class:`KafkaTarget` that ``candidate``, a service or a service class,
    lacks. On a class, an annotated attribute counts (an instance may set it in
    ``__init__``)."""
    annotated: set[str] = set()
    if isinstance(candidate, type):
        for klass in candidate.__mro__:
            annotated.update(vars(klass).get("__annotations__", {}))
    return [m for m in KAFKA_TARGET_MEMBERS if m not in annotated and not hasattr(candidate, m)]


__all__ = ["KAFKA_TARGET_MEMBERS", "KafkaTarget", "missing_members"]
