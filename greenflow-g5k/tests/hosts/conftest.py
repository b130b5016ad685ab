"""The images the end-to-end test's k3s nodes import (no registry here): the sandbox image
and the stand-in ``apache/kafka`` image, built by scripts/kube-node/build-images.sh with
Kafka's own jars (cached; the real-node tests build the same)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
BUILD_IMAGES = ROOT / "scripts" / "kube-node" / "build-images.sh"


@pytest.fixture(scope="session")
def kafka_images() -> tuple[Path, ...]:
    """(pause, kafka) OCI archives, built on first use (the JRE rootfs ~150 s cold; scripts/
    setup-system starts the build in the background, which this waits for)."""
    from greenflow_kafka.distribution import resolve_distribution
    from greenflow_kafka.errors import KafkaSetupError

    if not BUILD_IMAGES.is_file():
        pytest.skip(f"{BUILD_IMAGES} is not in this checkout")
    try:
        kafka = resolve_distribution()
    except KafkaSetupError as exc:
        pytest.skip(f"no Kafka jars for the stand-in image: {exc}")
    images = Path(os.environ.get("IMAGES", Path.home() / ".cache/greenflow/kube-node/images"))
    built = subprocess.run(
        ["bash", str(BUILD_IMAGES)],
        env={
            **os.environ,
            "IMAGES": str(images),
            "KAFKA_LIBS": str(kafka.libs_dir),
            "KAFKA_VERSION": kafka.version,
        },
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )
    wanted = (images / "pause-oci.tar", images / "kafka-oci.tar")
    if built.returncode != 0 or not all(p.is_file() for p in wanted):
        tail = "\n".join(built.stderr.splitlines()[-20:])
        pytest.skip(f"the node images could not be built here (bash {BUILD_IMAGES}):\n{tail}")
    return wanted
