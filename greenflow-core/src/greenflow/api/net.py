"""Network helpers for plugins that start servers on this host."""

from __future__ import annotations

import socket


def free_ports(host: str, count: int) -> list[int]:
    """``count`` distinct TCP ports that are free on ``host`` (IPv4 or IPv6) right now.

    Each is bind-tested, and all sockets are held until every port is chosen so the kernel
    cannot hand one out twice. Another process may still take a port before the caller
    binds it: a server started on one should retry with new ports on "address in use".
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            s = socket.socket(family, socket.SOCK_STREAM)
            socks.append(s)
            s.bind((host, 0))
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


__all__ = ["free_ports"]
