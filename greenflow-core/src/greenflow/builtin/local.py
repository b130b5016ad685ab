"""The ``local`` platform: this machine, carrying every role."""

from __future__ import annotations

import socket
from collections.abc import Mapping
from typing import Any, ClassVar

import attrs

from greenflow.api import Capability, DeployContext, Host, Inventory, Platform
from greenflow.runner.provenance import host_facts

DEFAULT_ROLES = ("control", "broker", "worker")


def _bindable(_inst: Any, attribute: attrs.Attribute[Any], value: str) -> None:
    """An address of this machine: services bind their ports on it."""
    try:
        infos = socket.getaddrinfo(value, 0, type=socket.SOCK_STREAM)
        family, _, _, _, sockaddr = infos[0]
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.bind(sockaddr)
    except OSError as exc:
        import psutil

        mine = sorted(
            {
                a.address
                for addrs in psutil.net_if_addrs().values()
                for a in addrs
                if a.family in (socket.AF_INET, socket.AF_INET6)
            }
        )
        msg = (
            f"{attribute.name}: expected an address of this machine (services bind their "
            f"ports on it), got {value!r} ({exc.strerror or exc}); this machine has: "
            f"{', '.join(mine)}"
        )
        raise ValueError(msg) from None


@attrs.frozen
class LocalConfig:
    """``[platform] type = "local"``: nothing to reserve; every role maps to this host."""

    #: Roles this host carries; services and workloads ask for roles by name.
    roles: list[str] = attrs.field(factory=lambda: list(DEFAULT_ROLES))
    #: Address clients use to reach services on this host (one of its own: services bind
    #: their ports on it).
    address: str = attrs.field(default="127.0.0.1", validator=_bindable)


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
