"""The redpanda service against greenflow.testing's service contract on the local platform,
with the SIMULATED redpanda binary (a real Kafka broker behind its Kafka API; see
tests/fake_redpanda/redpanda)."""

from __future__ import annotations

from pathlib import Path

import pytest

from greenflow.testing import ServiceContract
from greenflow_redpanda.service import RedpandaConfig, RedpandaService


class TestRedpandaService(ServiceContract):
    service_class = RedpandaService
    entry_point_name = "redpanda"
    service_name = "redpanda"
    remove_grace_s = 15.0

    @pytest.fixture
    def config(self, fake_redpanda: Path) -> RedpandaConfig:
        return RedpandaConfig(brokers=1)
