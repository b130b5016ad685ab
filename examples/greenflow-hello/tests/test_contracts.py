"""greenflow-hello against greenflow's contract kit: the whole test suite of a plugin can be this."""

from __future__ import annotations

import pytest
from greenflow_hello import HelloClockCollector, HelloClockConfig, HelloConfig, HelloWorkload

from greenflow.plan import Duration
from greenflow.testing import CollectorContract, WorkloadContract


class TestHelloWorkload(WorkloadContract):
    workload_class = HelloWorkload
    entry_point_name = "hello"

    @pytest.fixture
    def config(self) -> HelloConfig:
        return HelloConfig(count=200, duration=Duration(0.2))

    @pytest.fixture
    def cancel_config(self) -> HelloConfig:
        # Long enough that the contract's Ctrl-C comes in the middle of it.
        return HelloConfig(count=3000, duration=Duration(30))


class TestHelloClockCollector(CollectorContract):
    collector_class = HelloClockCollector
    entry_point_name = "hello-clock"
    window_s = 0.5

    @pytest.fixture
    def config(self) -> HelloClockConfig:
        return HelloClockConfig(interval_s=0.05)
