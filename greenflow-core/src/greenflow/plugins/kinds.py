"""The four plugin kinds and the entry-point group each one is registered in."""

from __future__ import annotations

import enum
from typing import Any

#: Entry-point groups, one per interface (dotted and plural, as stevedore and flake8 do).
PLATFORMS_GROUP = "greenflow.platforms"
SERVICES_GROUP = "greenflow.services"
WORKLOADS_GROUP = "greenflow.workloads"
COLLECTORS_GROUP = "greenflow.collectors"
PROTOCOLS_GROUP = "greenflow.protocols"


class Kind(enum.StrEnum):
    """A plugin kind: which entry-point group it lives in and which ABC it implements."""

    PLATFORM = "platform"
    SERVICE = "service"
    WORKLOAD = "workload"
    COLLECTOR = "collector"
    PROTOCOL = "protocol"

    @property
    def group(self) -> str:
        """The entry-point group, e.g. ``greenflow.platforms``."""
        return _GROUPS[self]

    @property
    def plural(self) -> str:
        """``platforms``, ``services``...: for messages."""
        return f"{self.value}s"

    @property
    def abc(self) -> type[Any]:
        """The ABC in :mod:`greenflow.api` that a plugin of this kind must subclass."""
        # Imported here so that `greenflow.plugins.kinds` stays importable on its own.
        from greenflow.api import Collector, Platform, Protocol, Service, Workload

        abcs: dict[Kind, type[Any]] = {
            Kind.PLATFORM: Platform,
            Kind.SERVICE: Service,
            Kind.WORKLOAD: Workload,
            Kind.COLLECTOR: Collector,
            Kind.PROTOCOL: Protocol,
        }
        return abcs[self]

    @classmethod
    def from_group(cls, group: str) -> Kind:
        """The kind registered in ``group``; ``ValueError`` for a group that is not ours."""
        for kind, g in _GROUPS.items():
            if g == group:
                return kind
        msg = f"{group!r} is not a greenflow entry-point group; expected one of {sorted(_GROUPS.values())}"
        raise ValueError(msg)


_GROUPS: dict[Kind, str] = {
    Kind.PLATFORM: PLATFORMS_GROUP,
    Kind.SERVICE: SERVICES_GROUP,
    Kind.WORKLOAD: WORKLOADS_GROUP,
    Kind.COLLECTOR: COLLECTORS_GROUP,
    Kind.PROTOCOL: PROTOCOLS_GROUP,
}

#: Every group, in the order `greenflow plugins` lists them.
GROUPS: tuple[str, ...] = tuple(_GROUPS.values())
