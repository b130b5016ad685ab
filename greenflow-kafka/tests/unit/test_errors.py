"""greenflow-kafka's errors fit greenflow-core's hierarchy, so the runner classifies them."""

from __future__ import annotations

import pytest

from greenflow_kafka.errors import (
    KafkaAdminError,
    KafkaClusterError,
    KafkaNotReadyError,
    KafkaSetupError,
    ProducerPerfError,
)


def test_errors_subclass_greenflow_core() -> None:
    """Setup and admin errors are GreenFlowErrors, cluster ones ServiceErrors, timeouts ReadinessTimeouts."""
    core = pytest.importorskip("greenflow.errors", reason="greenflow-core is not installed")
    assert issubclass(KafkaSetupError, core.GreenFlowError)
    assert issubclass(KafkaAdminError, core.GreenFlowError)
    assert issubclass(KafkaClusterError, core.ServiceError)
    assert issubclass(KafkaNotReadyError, core.ReadinessTimeout)
    assert issubclass(KafkaNotReadyError, KafkaClusterError)
    assert issubclass(ProducerPerfError, core.WorkloadError)
