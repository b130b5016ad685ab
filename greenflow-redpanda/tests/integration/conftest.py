"""Fixtures for the local-platform tests: the SIMULATED redpanda binary on PATH and the Kafka
jars its real Kafka broker runs from (see tests/fake_redpanda/redpanda); and for the
Kubernetes tests, the real kube-apiserver fixtures (greenflow_kubernetes.testing.fixtures)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from greenflow_kafka import KafkaDistribution, KafkaSetupError, resolve_distribution
from greenflow_kubernetes.testing.fixtures import cluster, kube  # noqa: F401 (fixtures)

FAKE = Path(__file__).parents[1] / "fake_redpanda" / "redpanda"


@pytest.fixture(scope="session")
def kafka_distribution() -> KafkaDistribution:
    """The Kafka jars the simulated redpanda runs its real broker from (cached after the first
    resolution with mvn); skips with the reason when Java or mvn is missing, unless
    GREENFLOW_REQUIRE_KAFKA=1."""
    try:
        return resolve_distribution()
    except KafkaSetupError as exc:
        if os.environ.get("GREENFLOW_REQUIRE_KAFKA") == "1":
            raise
        pytest.skip(f"no runnable Kafka for the simulated redpanda's Kafka API: {exc}")


@pytest.fixture
def fake_redpanda(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kafka_distribution: KafkaDistribution
) -> Path:
    """A ``redpanda`` on PATH that runs the simulated binary with this interpreter (which has
    PyYAML and greenflow_kafka); returns its directory."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "redpanda"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{FAKE}" "$@"\n')
    wrapper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("GREENFLOW_FAKE_REDPANDA_KAFKA_VERSION", kafka_distribution.version)
    return bin_dir
