"""The run lifecycle, its teardown guarantees and provenance."""

from __future__ import annotations

from greenflow.runner.lifecycle import (
    Observer,
    Outcome,
    Runner,
    check_capabilities,
    down,
    required_roles,
    service_configs,
)

__all__ = [
    "Observer",
    "Outcome",
    "Runner",
    "check_capabilities",
    "down",
    "required_roles",
    "service_configs",
]
