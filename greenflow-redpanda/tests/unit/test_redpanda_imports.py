"""Local Redpanda needs no Kubernetes: the service and its local processes import neither
greenflow-kubernetes nor the kubernetes client (a local-only install has neither)."""

from __future__ import annotations

import subprocess
import sys


def test_the_service_and_its_local_path_import_without_kubernetes() -> None:
    """Importing the redpanda service and its local cluster leaves Kubernetes unloaded."""
    code = (
        "import sys, greenflow_redpanda, greenflow_redpanda.service, greenflow_redpanda.local\n"
        "print(sorted(m for m in sys.modules "
        "if m.split('.')[0] in ('kubernetes', 'greenflow_kubernetes')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]", done.stdout + done.stderr


def test_redpanda_is_a_kafka_target() -> None:
    """kafka-ingest can load the redpanda service (greenflow_kafka.KafkaTarget)."""
    from greenflow_kafka import KafkaTarget
    from greenflow_redpanda.service import RedpandaConfig, RedpandaService

    svc = RedpandaService("redpanda", RedpandaConfig(brokers=3, tools_version="4.2.0"))
    assert isinstance(svc, KafkaTarget)
    assert RedpandaService.broker_count(svc.config) == 3
    assert (svc.tools_version, svc.tools_image, svc.kube_session) == (
        "4.2.0",
        "apache/kafka:4.2.0",
        None,
    )
