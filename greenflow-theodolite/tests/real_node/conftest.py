"""A real single-node Kubernetes cluster (scripts/kube-node) with the Kafka stand-in image and
Theodolite's (GreenFlow's builds of its use cases under its published names), for the tests
in this folder. Only ``nox -s tests_kube_node`` runs them (``GREENFLOW_KUBE_NODE_TESTS=1``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from greenflow_kafka import resolve_distribution
from greenflow_kubernetes.testing import real_node
from greenflow_theodolite.apps import resolve_apps

KUBE_NODE = Path(__file__).resolve().parents[3] / "scripts" / "kube-node"


@pytest.fixture(scope="session")
def kube_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The node for the session, its images including Theodolite's; its kubeconfig."""
    distribution = resolve_distribution()
    build = resolve_apps(kafka_version=distribution.version)
    env = {
        "KAFKA_LIBS": str(distribution.libs_dir),
        "KAFKA_VERSION": distribution.version,
        "THEODOLITE_APPS": str(build.jar.parent),
    }
    with real_node(KUBE_NODE, tmp_path_factory.mktemp("kube-node"), env) as kubeconfig:
        yield kubeconfig
