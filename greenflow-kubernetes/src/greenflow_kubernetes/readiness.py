"""Readiness checks for :meth:`KubeSession.wait`: ``(ready, what was seen)`` for an object as
the API returns it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def generation_seen(obj: Mapping[str, Any]) -> tuple[bool, str]:
    """Whether the controller has reported on the object's current spec (its status is
    for ``metadata.generation``): before that, a status is the previous spec's."""
    generation = (obj.get("metadata") or {}).get("generation")
    observed = (obj.get("status") or {}).get("observedGeneration")
    if generation is not None and (observed is None or observed < generation):
        return False, f"status not yet for generation {generation} (observed {observed})"
    return True, ""


def deployment_available(obj: Mapping[str, Any]) -> tuple[bool, str]:
    """A Deployment with at least one available replica, for its current spec."""
    seen, why = generation_seen(obj)
    if not seen:
        return False, why
    available = (obj.get("status") or {}).get("availableReplicas") or 0
    return available >= 1, f"availableReplicas {available}"


def daemonset_ready(obj: Mapping[str, Any]) -> tuple[bool, str]:
    """A DaemonSet scheduled on at least one node and ready on every node it is scheduled on."""
    seen, why = generation_seen(obj)
    if not seen:
        return False, why
    status = obj.get("status") or {}
    desired = status.get("desiredNumberScheduled") or 0
    ready = status.get("numberReady") or 0
    if desired == 0:
        return False, "no node is scheduled (no node carries the roles?)"
    return ready == desired, f"numberReady {ready} of desiredNumberScheduled {desired}"


def statefulset_ready(sts: Mapping[str, Any] | None, replicas: int) -> tuple[bool, str]:
    """A StatefulSet with ``replicas`` ready pods (``sts`` None: it does not exist)."""
    if sts is None:
        return False, "the StatefulSet does not exist"
    status = sts.get("status") or {}
    ready = int(status.get("readyReplicas") or 0)
    seen = (
        f"readyReplicas {ready}/{replicas}, replicas {int(status.get('replicas') or 0)}, "
        f"observedGeneration {status.get('observedGeneration')}"
        f"/{(sts.get('metadata') or {}).get('generation')}"
    )
    return ready >= replicas, seen
