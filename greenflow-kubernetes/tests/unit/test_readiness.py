"""Readiness checks for KubeSession.wait."""

from __future__ import annotations

from greenflow_kubernetes import daemonset_ready, deployment_available, statefulset_ready


def test_statefulset_ready_reads_ready_replicas() -> None:
    """Ready means readyReplicas reached the wanted count; what was seen is said."""
    assert statefulset_ready(None, 1) == (False, "the StatefulSet does not exist")
    ok, seen = statefulset_ready({"status": {"readyReplicas": 1, "replicas": 2}}, 2)
    assert not ok and "readyReplicas 1/2" in seen
    assert statefulset_ready({"status": {"readyReplicas": 2}}, 2)[0]


def test_a_status_for_an_older_generation_is_not_ready() -> None:
    """A Deployment or DaemonSet whose status predates its spec is not ready, whatever it says."""
    stale = {
        "metadata": {"generation": 2},
        "status": {"observedGeneration": 1, "availableReplicas": 1},
    }
    ok, seen = deployment_available(stale)
    assert not ok and "generation 2" in seen
    assert deployment_available(
        {**stale, "status": {"observedGeneration": 2, "availableReplicas": 1}}
    )[0]


def test_a_daemonset_scheduled_nowhere_is_not_ready() -> None:
    """A DaemonSet that no node runs is not ready (no node carries its roles), and says so."""
    ok, seen = daemonset_ready({"status": {"desiredNumberScheduled": 0, "numberReady": 0}})
    assert not ok and "no node" in seen
    assert daemonset_ready({"status": {"desiredNumberScheduled": 2, "numberReady": 2}})[0]
