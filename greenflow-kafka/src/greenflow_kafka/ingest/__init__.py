"""The ``kafka-ingest`` workload (docs/kafka.md): its plugin class and plan section.

:mod:`.workload` is the plugin, which runs :mod:`.local` (Kafka's tools as processes on
this host) or :mod:`.kube` (the same tools as Jobs, when the target runs on Kubernetes;
the only module here that needs greenflow-kubernetes). :mod:`.config` holds the plan
section and shared settings, :mod:`.metrics` the figures both runs store, :mod:`.jobs` and
:mod:`.parse` the Jobs' manifests and what they print, as pure functions.
"""

from __future__ import annotations

from greenflow_kafka.ingest.config import KafkaIngestConfig
from greenflow_kafka.ingest.workload import KafkaIngestWorkload

__all__ = ["KafkaIngestConfig", "KafkaIngestWorkload"]
