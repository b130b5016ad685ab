"""Contract tests for plugin authors: subclass one per plugin class, set it, override ``config``.

::

    from greenflow.testing import WorkloadContract

    class TestHelloWorkload(WorkloadContract):
        workload_class = HelloWorkload

        @pytest.fixture
        def config(self):
            return HelloWorkload.Config(count=200)

See :mod:`greenflow.testing.contracts` for what each contract checks, and
docs/writing-a-plugin.md. Needs pytest: ``pip install "greenflow-core[testing]"``.
"""

from __future__ import annotations

try:
    import pytest
except ImportError as exc:  # pragma: no cover - depends on the environment
    msg = 'greenflow.testing needs pytest: pip install "greenflow-core[testing]"'
    raise ImportError(msg) from exc

# The contracts' asserts carry their own messages; rewriting adds the values compared.
pytest.register_assert_rewrite("greenflow.testing.contracts")

from greenflow.testing.contracts import (  # noqa: E402  # after register_assert_rewrite, on purpose
    ENERGY_METHODS,
    ENERGY_METRICS,
    CollectorContract,
    PlatformContract,
    ProtocolContract,
    ServiceContract,
    StateRecorder,
    WorkloadContract,
    assert_energy_metrics,
    assert_valid_result,
    assert_valid_samples,
    assert_window_edges,
    deploy_services,
    local_inventory,
    make_collector_context,
    make_deploy_context,
    make_run_context,
)

__all__ = [
    "ENERGY_METHODS",
    "ENERGY_METRICS",
    "CollectorContract",
    "PlatformContract",
    "ProtocolContract",
    "ServiceContract",
    "StateRecorder",
    "WorkloadContract",
    "assert_energy_metrics",
    "assert_valid_result",
    "assert_valid_samples",
    "assert_window_edges",
    "deploy_services",
    "local_inventory",
    "make_collector_context",
    "make_deploy_context",
    "make_run_context",
]
