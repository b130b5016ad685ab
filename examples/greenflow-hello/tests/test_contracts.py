"""greenflow-hello against greenflow's contract kit: the whole test suite of a plugin can be this."""

from __future__ import annotations

import pytest
from greenflow_hello import HelloClockCollector, HelloClockConfig, HelloConfig, HelloWorkload

from greenflow.testing import CollectorContract, WorkloadContract


class TestHelloWorkload(WorkloadContract):
    workload_class = HelloWorkload
    entry_point_name = "hello"

    @pytest.fixture
    def config(self) -> HelloConfig:
        return HelloConfig(count=200, duration_s=0.2)


class TestHelloClockCollector(CollectorContract):
    collector_class = HelloClockCollector
    entry_point_name = "hello-clock"
    window_s = 0.5

    @pytest.fixture
    def config(self) -> HelloClockConfig:
        return HelloClockConfig(interval_s=0.05)
