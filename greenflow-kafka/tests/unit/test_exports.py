"""What greenflow_kafka exports to other distributions, and that importing it needs no
Kubernetes (a local-only install has neither greenflow-kubernetes nor its client)."""

from __future__ import annotations

import subprocess
import sys

import pytest

import greenflow_kafka


def test_the_package_and_its_plugins_import_without_kubernetes() -> None:
    """Importing greenflow_kafka, the kafka service and kafka-ingest loads neither
    greenflow_kubernetes nor the kubernetes client."""
    code = (
        "import sys, greenflow_kafka, greenflow_kafka.service, greenflow_kafka.ingest\n"
        "print(sorted(m for m in sys.modules "
        "if m.split('.')[0] in ('kubernetes', 'greenflow_kubernetes')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]", done.stdout + done.stderr


def test_every_exported_name_resolves() -> None:
    """Each name of __all__ is there, the Kubernetes ones loaded on first use."""
    from greenflow_kafka import kube

    for name in greenflow_kafka.__all__:
        assert getattr(greenflow_kafka, name) is not None, name
    assert greenflow_kafka.BrokerStatefulSet is kube.BrokerStatefulSet


def test_an_unknown_name_is_an_attribute_error() -> None:
    """A name the package does not export fails as a missing attribute does."""
    with pytest.raises(AttributeError, match="no attribute 'NoSuchThing'"):
        _ = greenflow_kafka.NoSuchThing
