"""Errors greenflow-kafka expects; each message says what failed, what was seen and what to do.

They subclass greenflow-core's errors so that the CLI prints them as one message and the
runner classifies them (a cluster that never became ready is a ``ReadinessTimeout``, a
broker that died is a ``ServiceError``).
"""

from __future__ import annotations

try:
    from greenflow.errors import GreenFlowError, ReadinessTimeout, ServiceError, WorkloadError
except ImportError:  # pragma: no cover
    # greenflow-core not installed (low-level use, early development).
    # TODO: drop this fallback once greenflow-core is installable everywhere; the distribution
    # already depends on it. Stand-ins keep the same hierarchy so `except` clauses still work.
    class GreenFlowError(Exception):  # type: ignore[no-redef]  # stand-in for greenflow.errors
        """Root of every expected failure."""

    class ServiceError(GreenFlowError):  # type: ignore[no-redef]  # stand-in for greenflow.errors
        """A service failed to deploy, to become ready, or died."""

    class ReadinessTimeout(GreenFlowError):  # type: ignore[no-redef]  # stand-in for greenflow.errors
        """A wait hit its deadline."""

    class WorkloadError(GreenFlowError):  # type: ignore[no-redef]  # stand-in for greenflow.errors
        """A workload run failed."""


class KafkaSetupError(GreenFlowError):
    """Kafka cannot be obtained or run here: no Java 17+, no ``mvn``, a bad ``KAFKA_HOME``,
    or resolving the jars from Maven Central failed."""


class KafkaClusterError(ServiceError):
    """A local Kafka process failed to format or start, or exited while it should run."""


class KafkaNotReadyError(ReadinessTimeout, KafkaClusterError):
    """The cluster did not report all its brokers before the deadline."""


class KafkaAdminError(GreenFlowError):
    """A topic could not be created, deleted or read within its deadline."""


class ProducerPerfError(WorkloadError):
    """Kafka's producer performance tool failed or did not finish in time."""


__all__ = [
    "KafkaAdminError",
    "KafkaClusterError",
    "KafkaNotReadyError",
    "KafkaSetupError",
    "ProducerPerfError",
]
