"""A minimal GreenFlow plugin: the ``hello`` workload and the ``hello-clock`` collector."""

from __future__ import annotations

from greenflow_hello.collector import HelloClockCollector, HelloClockConfig
from greenflow_hello.workload import HelloConfig, HelloWorkload

__all__ = ["HelloClockCollector", "HelloClockConfig", "HelloConfig", "HelloWorkload"]
