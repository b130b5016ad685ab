"""The run lifecycle, its teardown guarantees and provenance."""

from __future__ import annotations

from greenflow.runner.lifecycle import (
    Runner,
    check_capabilities,
    required_roles,
    service_configs,
)
from greenflow.runner.lock import output_lock
from greenflow.runner.observer import Observer, Outcome
from greenflow.runner.recorded import down

__all__ = [
    "Observer",
    "Outcome",
    "Runner",
    "check_capabilities",
    "down",
    "output_lock",
    "required_roles",
    "service_configs",
]
