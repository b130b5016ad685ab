"""Test support for Kafka-API brokers on Kubernetes (extra: ``greenflow-kafka[testing]``),
over :mod:`greenflow_kubernetes.testing`: what a bare API server cannot do for kafka-ingest.

:func:`empty_topic_read` plays the first offsets read of a run (before any producer writes),
through the :class:`~greenflow_kubernetes.testing.ScriptedLogs` that play the kubelet's
log endpoint; :func:`shorten_start_timeout` makes a run give up on pods that never start
in seconds rather than minutes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from greenflow_kubernetes.testing import ScriptedLogs, succeeded

if TYPE_CHECKING:
    import pytest


def empty_topic_read(
    logs: ScriptedLogs, topic: str, partitions: int = 1
) -> Callable[[Mapping[str, Any]], dict[str, Any]]:
    """A pod outcome for the ``offsets-warmup`` Job, which kafka-ingest runs before the
    producers start: the pod succeeds and its log prints every partition of ``topic`` at offset
    0 between clock stamps of now, as the offsets tool's wrapper does."""

    def outcome(pod: Mapping[str, Any]) -> dict[str, Any]:
        now = time.time()
        offsets = "".join(f"{topic}:{p}:0\n" for p in range(partitions))
        logs.logs[pod["metadata"]["name"]] = (
            f"greenflow-read-start {now - 0.5:.6f}\n{offsets}greenflow-read-end {now:.6f}\n"
        )
        return succeeded(pod)

    return outcome


def shorten_start_timeout(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    """Make kafka-ingest on Kubernetes wait at most ``seconds`` (180 s otherwise) for a Job's
    pods to start, for a test whose pods never do; ``monkeypatch`` restores it."""
    from greenflow_kafka.ingest import kube

    monkeypatch.setattr(kube, "START_TIMEOUT_S", seconds)


__all__ = ["empty_topic_read", "shorten_start_timeout"]
