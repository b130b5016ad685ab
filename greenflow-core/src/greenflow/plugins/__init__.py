"""Plugin discovery and loading: the entry-point groups, `available` and `load`.

Plugins are classes registered under an entry-point group, one group per kind::

    [project.entry-points."greenflow.workloads"]
    hello = "greenflow_hello.workload:HelloWorkload"

:func:`load` returns the class a plan names (or raises ``PluginError`` with what is
installed and what to do); :func:`available` lists every registration with its
distribution and whether it imports, for ``greenflow plugins``.
"""

from __future__ import annotations

from greenflow.plugins.kinds import (
    COLLECTORS_GROUP,
    GROUPS,
    PLATFORMS_GROUP,
    PROTOCOLS_GROUP,
    SERVICES_GROUP,
    WORKLOADS_GROUP,
    Kind,
)
from greenflow.plugins.registry import PluginInfo, Status, available, clear_cache, load

__all__ = [
    "COLLECTORS_GROUP",
    "GROUPS",
    "PLATFORMS_GROUP",
    "PROTOCOLS_GROUP",
    "SERVICES_GROUP",
    "WORKLOADS_GROUP",
    "Kind",
    "PluginInfo",
    "Status",
    "available",
    "clear_cache",
    "load",
]
