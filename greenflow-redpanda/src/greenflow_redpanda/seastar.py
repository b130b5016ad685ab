"""How much of a broker's memory Redpanda (Seastar) is given, locally and on Kubernetes."""

from __future__ import annotations

from greenflow.plan.quantities import MIB, memory_bytes

#: Seastar's share of the broker's memory (``--memory``); the rest is for the process
#: outside Seastar's allocator (and, on Kubernetes, stays under the container's limit).
SEASTAR_MEMORY_FRACTION = 0.8


def seastar_memory_mib(memory: str) -> int:
    """Seastar's ``--memory`` (MiB) for a broker given ``memory`` (a quantity: ``"2Gi"``)."""
    return int(memory_bytes(memory) * SEASTAR_MEMORY_FRACTION) // MIB
