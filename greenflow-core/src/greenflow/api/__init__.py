"""The contract between GreenFlow and its plugins.

Four plugin kinds, each an ABC loaded by name from an entry-point group:
``greenflow.platforms`` (:class:`Platform`), ``greenflow.services`` (:class:`Service`),
``greenflow.workloads`` (:class:`Workload`) and ``greenflow.collectors`` (:class:`Collector`);
plus ``greenflow.protocols`` (:class:`Protocol`) for adaptive experiments.
"""

from __future__ import annotations

from greenflow.api.collector import Collector, CollectorContext
from greenflow.api.context import (
    RUN_PHASES,
    Capability,
    Deadline,
    DeployContext,
    Host,
    Inventory,
    Metric,
    Phase,
    PhaseRecorder,
    ProcessGroups,
    RunContext,
    Sample,
    Window,
    WorkloadResult,
    wait_until,
)
from greenflow.api.platform import Costed, Forwarding, Platform, Preflight, TimeLimited
from greenflow.api.protocol import Probe, Protocol, Step
from greenflow.api.service import Service
from greenflow.api.workload import Workload

__all__ = [
    "RUN_PHASES",
    "Capability",
    "Collector",
    "CollectorContext",
    "Costed",
    "Deadline",
    "DeployContext",
    "Forwarding",
    "Host",
    "Inventory",
    "Metric",
    "Phase",
    "PhaseRecorder",
    "Platform",
    "Preflight",
    "Probe",
    "ProcessGroups",
    "Protocol",
    "RunContext",
    "Sample",
    "Service",
    "Step",
    "TimeLimited",
    "Window",
    "Workload",
    "WorkloadResult",
    "wait_until",
]
