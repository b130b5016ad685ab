"""Test support for Kafka-API brokers on Kubernetes (extra: ``greenflow-kafka[testing]``),
over :mod:`greenflow_kubernetes.testing`: what a bare API server cannot do for kafka-ingest.

:func:`empty_topic_read` plays the first offsets read of a run (before any producer writes),
through the :class:`~greenflow_kubernetes.testing.ScriptedLogs` that play the kubelet's
log endpoint; :func:`generator_log` writes what a producer pod (the load generator) prints;
:func:`shorten_start_timeout` makes a run give up on pods that never start in seconds
rather than minutes.
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


def generator_log(
    rate: float,
    start: float,
    end: float,
    *,
    latency_us: int = 2000,
    interval_s: float = 0.5,
    done: bool = True,
) -> str:
    """What the load generator prints when it sends ``rate`` msg/s on schedule from ``start``
    to ``end`` (Unix seconds): its start line, one report per ``interval_s`` (every message
    acknowledged ``latency_us`` after it was due), and, with ``done``, its totals."""
    from greenflow_kafka.generator import bucket_of

    per = round(rate * interval_s)
    lines = [
        f"greenflow-generator-start t={start:.6f} rate={rate:.6f} size=100 "
        f"slots={round(rate * (end - start))} max_lateness_ms=10"
    ]
    t, n = start, 0
    while t + interval_s <= end + 1e-9:
        t += interval_s
        n += 1
        lines.append(
            f"greenflow-generator t={t:.6f} sent={per} acked={per} errors=0 missed=0 "
            f"behind_ms=0.100 inflight=0 n={per} sum_us={per * latency_us} "
            f"max_us={latency_us} h={bucket_of(latency_us)}:{per}"
        )
    if done:
        lines.append(
            f"greenflow-generator-end t={t:.6f} sent={n * per} acked={n * per} errors=0 missed=0"
        )
    return "\n".join(lines) + "\n"


def shorten_start_timeout(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    """Make kafka-ingest on Kubernetes wait at most ``seconds`` (180 s otherwise) for a Job's
    pods to start, for a test whose pods never do; ``monkeypatch`` restores it."""
    from greenflow_kafka.ingest import kube

    monkeypatch.setattr(kube, "START_TIMEOUT_S", seconds)


__all__ = ["empty_topic_read", "generator_log", "shorten_start_timeout"]
