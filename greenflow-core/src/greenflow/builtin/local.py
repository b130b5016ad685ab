"""The ``local`` platform: this machine, carrying every role."""

from __future__ import annotations

import socket
from collections.abc import Mapping
from typing import Any, ClassVar

import attrs

from greenflow.api import Capability, DeployContext, Host, Inventory, Platform
from greenflow.runner.provenance import host_facts

DEFAULT_ROLES = ("control", "broker", "worker")


@attrs.frozen
class LocalConfig:
    """``[platform] type = "local"``: nothing to reserve; every role maps to this host."""

    #: Roles this host carries; services and workloads ask for roles by name.
    roles: list[str] = attrs.field(factory=lambda: list(DEFAULT_ROLES))
    #: Address clients use to reach services on this host.
    address: str = "127.0.0.1"


class LocalPlatform(Platform):
    """This host. Acquire and release are free; processes are started by services."""

    Config: ClassVar[type] = LocalConfig
    capabilities: ClassVar[frozenset[Capability]] = frozenset({Capability.LOCAL_PROCESSES})
    config: LocalConfig

    def acquire(self, ctx: DeployContext) -> Inventory:
        return Inventory([Host(socket.gethostname(), self.config.address, self.config.roles)])

    def release(self) -> None:
        """Nothing was reserved; services stop their own processes."""

    def describe(self) -> Mapping[str, Any]:
        return {"platform": "local", "hosts": [host_facts()]}

    def check_roles(self, roles: frozenset[str]) -> str | None:
        missing = roles - set(self.config.roles)
        if missing:
            return (
                f"roles {sorted(missing)} are not carried by this host "
                f"(it has {sorted(self.config.roles)}); add them to [platform] roles"
            )
        return None
