"""The embedded results store (SQLite) and its exports; see docs/results.md."""

from __future__ import annotations

from greenflow.store.db import (
    DB_NAME,
    SCHEMA_VERSION,
    BaselineRow,
    ExperimentRow,
    RunRow,
    RunStatus,
    Store,
    WarningRow,
)

__all__ = [
    "DB_NAME",
    "SCHEMA_VERSION",
    "BaselineRow",
    "ExperimentRow",
    "RunRow",
    "RunStatus",
    "Store",
    "WarningRow",
]
