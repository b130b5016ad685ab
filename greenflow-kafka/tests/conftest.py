"""Fixtures for greenflow-kafka's tests: a resolved Kafka distribution, per-test time limits,
and the real kube-apiserver fixtures (``kube``, ``cluster``: greenflow_kubernetes.testing.fixtures)."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from greenflow_kafka.distribution import KafkaDistribution, resolve_distribution
from greenflow_kafka.errors import KafkaSetupError
from greenflow_kubernetes.testing.fixtures import cluster, kube  # noqa: F401 (fixtures)

# tests/real_node starts a whole Kubernetes node (root, containerd, minutes): only its own
# session, `nox -s tests_kube_node`, collects it (docs/kubernetes-testing.md).
collect_ignore = [] if os.environ.get("GREENFLOW_KUBE_NODE_TESTS") == "1" else ["real_node"]

# Per-test limits, applied only when pytest-timeout is installed (it is not required):
# a hung JVM or wait must fail one test, not stall the whole run.
_TIMEOUTS_S = {"integration": 240, "unit": 60}
_HAVE_TIMEOUT = importlib.util.find_spec("pytest_timeout") is not None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not _HAVE_TIMEOUT:
        return
    for item in items:
        kind = "integration" if "integration" in Path(str(item.path)).parts else "unit"
        if item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(_TIMEOUTS_S[kind]))


@pytest.fixture(scope="session")
def kafka_distribution() -> Iterator[KafkaDistribution]:
    """Kafka from KAFKA_HOME or Maven Central (downloads the jars on first use, then cached).

    Skips with the reason when Java or mvn is missing, unless GREENFLOW_REQUIRE_KAFKA=1,
    where a missing Kafka fails the run instead (for CI that must exercise a real broker).
    """
    try:
        yield resolve_distribution()
    except KafkaSetupError as exc:
        if os.environ.get("GREENFLOW_REQUIRE_KAFKA") == "1":
            raise
        pytest.skip(f"no runnable Kafka here: {exc}")
