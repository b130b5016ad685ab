"""The k3s platform's parts that need no host: the recorded state a `greenflow down` in
another process rebuilds the inventory from, release before acquire, and the facts it
states before and after. Nothing is simulated; what needs hosts is tests/standin/."""

from __future__ import annotations

from pathlib import Path

from greenflow_k3s import Host, K3sConfig
from greenflow_k3s.platform import K3sPlatform, _host_from_state, _host_state


def test_a_host_survives_the_recorded_state() -> None:
    """JSON-able (the key as a string), and the same host back for `greenflow down`."""
    host = Host(
        "broker-1",
        "10.0.0.2",
        "broker",
        user="gf",
        port=2222,
        key=Path("/k/id"),
        become=True,
        node_ip="10.0.0.2",
    )
    state = _host_state(host)
    assert state["key"] == "/k/id" and all(
        isinstance(v, str | int | bool | type(None)) for v in state.values()
    )
    assert _host_from_state(state) == host
    assert _host_from_state(_host_state(Host("c", "c", "control"))) == Host("c", "c", "control")


def test_release_before_acquire_does_nothing_and_recorded_nothing_neither() -> None:
    platform = K3sPlatform(K3sConfig(inventory="hosts.yaml"))
    platform.release()
    platform.release()
    assert platform.kube is None
    # A crash before any host was touched: nothing to uninstall, no cluster to clean.
    K3sPlatform.release_recorded(K3sConfig(inventory="hosts.yaml"), {"hosts": [], "touched": []})


def test_facts_before_acquire_name_the_platform_and_version() -> None:
    platform = K3sPlatform(K3sConfig(inventory="hosts.yaml", k3s_version="v1.33.4+k3s1"))
    facts = platform.describe()
    assert facts["platform"] == "k3s" and facts["k3s_version"] == "v1.33.4+k3s1"
    assert facts["hosts"] == {}
    assert platform.check_roles(frozenset({"broker"})) is None  # the inventory is read later
