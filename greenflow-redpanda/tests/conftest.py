"""Per-test time limits for greenflow-redpanda's tests (when pytest-timeout is installed)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

# A hung wait must fail one test, not stall the run.
_TIMEOUTS_S = {"integration": 240, "unit": 60}
_HAVE_TIMEOUT = importlib.util.find_spec("pytest_timeout") is not None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not _HAVE_TIMEOUT:
        return
    for item in items:
        kind = "integration" if "integration" in Path(str(item.path)).parts else "unit"
        if item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(_TIMEOUTS_S[kind]))
