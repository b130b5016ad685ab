"""greenflow.api.net: free ports for plugins that start servers on this host."""

from __future__ import annotations

import socket

import pytest

from greenflow.api.net import free_ports


def test_free_ports_are_distinct_and_bindable() -> None:
    """Free ports are distinct and can be bound right after."""
    ports = free_ports("127.0.0.1", 5)
    assert len(set(ports)) == 5
    for port in ports:
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))


def test_free_ports_on_an_ipv6_host() -> None:
    """An IPv6 host gets ports bindable on IPv6."""
    if not socket.has_ipv6:
        pytest.skip("this Python has no IPv6 support")
    try:
        (port,) = free_ports("::1", 1)
    except OSError as exc:
        pytest.skip(f"no IPv6 loopback here: {exc}")
    with socket.socket(socket.AF_INET6) as s:
        s.bind(("::1", port))
