"""The built-in protocols pass the contract kit."""

from __future__ import annotations

from typing import Any

import pytest

from greenflow.builtin.protocols import (
    IdleConfig,
    IdleProtocol,
    MaxThroughputConfig,
    MaxThroughputProtocol,
    ProportionalityConfig,
    ProportionalityProtocol,
)
from greenflow.testing import ProtocolContract


class TestMaxThroughput(ProtocolContract):
    protocol_class = MaxThroughputProtocol
    entry_point_name = "max-throughput"

    @pytest.fixture
    def config(self) -> Any:
        return MaxThroughputConfig()


class TestProportionality(ProtocolContract):
    protocol_class = ProportionalityProtocol
    entry_point_name = "proportionality"

    @pytest.fixture
    def config(self) -> Any:
        return ProportionalityConfig()


class TestIdle(ProtocolContract):
    protocol_class = IdleProtocol
    entry_point_name = "idle"

    @pytest.fixture
    def config(self) -> Any:
        return IdleConfig()
