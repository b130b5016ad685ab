"""Apache Kafka for GreenFlow: the ``kafka`` service, the ``kafka-ingest`` workload, and what
other distributions build on (docs/kafka.md).

Other distributions use what is exported here (``__all__``) and nothing else: the
:class:`KafkaTarget` protocol a service implements to be loaded by ``kafka-ingest``, the
Kafka distribution and admin client, and, for brokers deployed on Kubernetes, the
StatefulSet plumbing. Those Kubernetes names are loaded on first use, so that importing
this package never imports greenflow-kubernetes or the ``kubernetes`` client (a local-only
install, ``pip install greenflow-core greenflow-kafka``, has neither).
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING

from greenflow_kafka.admin import (
    AdminSession,
    create_topic,
    delete_topic,
    end_offsets,
    partition_end_offsets,
    topic_exists,
)
from greenflow_kafka.consumer import committed_offsets
from greenflow_kafka.distribution import (
    DEFAULT_KAFKA_VERSION,
    KafkaDistribution,
    locked,
    package_data,
    resolve_distribution,
    run_logged,
)
from greenflow_kafka.errors import (
    KafkaAdminError,
    KafkaClusterError,
    KafkaNotReadyError,
    KafkaSetupError,
    ProducerPerfError,
)
from greenflow_kafka.ingest import KafkaIngestConfig, KafkaIngestWorkload
from greenflow_kafka.service import KafkaConfig, KafkaService
from greenflow_kafka.target import KafkaTarget

if TYPE_CHECKING:
    from greenflow_kafka.kube import (
        BROKER_ROLE,
        EMPTY_DIR,
        BrokerStatefulSet,
        attach_recorded,
        broker_statefulset,
        check_broker_nodes,
        data_volume,
        deploy_statefulset,
        guaranteed_resources,
        remove_recorded,
    )

try:
    __version__ = version("greenflow-kafka")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0"

#: Names that need greenflow-kubernetes (``greenflow-kafka[kubernetes]``), by their module.
_KUBERNETES = {
    name: "greenflow_kafka.kube"
    for name in (
        "BROKER_ROLE",
        "EMPTY_DIR",
        "BrokerStatefulSet",
        "attach_recorded",
        "broker_statefulset",
        "check_broker_nodes",
        "data_volume",
        "deploy_statefulset",
        "guaranteed_resources",
        "remove_recorded",
    )
}


def __getattr__(name: str) -> object:
    # PEP 562: the Kubernetes names are imported when first asked for, not with the package.
    module = _KUBERNETES.get(name)
    if module is None:
        msg = f"module {__name__!r} has no attribute {name!r}"
        raise AttributeError(msg)
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "BROKER_ROLE",
    "DEFAULT_KAFKA_VERSION",
    "EMPTY_DIR",
    "AdminSession",
    "BrokerStatefulSet",
    "KafkaAdminError",
    "KafkaClusterError",
    "KafkaConfig",
    "KafkaDistribution",
    "KafkaIngestConfig",
    "KafkaIngestWorkload",
    "KafkaNotReadyError",
    "KafkaService",
    "KafkaSetupError",
    "KafkaTarget",
    "ProducerPerfError",
    "__version__",
    "attach_recorded",
    "broker_statefulset",
    "check_broker_nodes",
    "committed_offsets",
    "create_topic",
    "data_volume",
    "delete_topic",
    "deploy_statefulset",
    "end_offsets",
    "guaranteed_resources",
    "locked",
    "package_data",
    "partition_end_offsets",
    "remove_recorded",
    "resolve_distribution",
    "run_logged",
    "topic_exists",
]
