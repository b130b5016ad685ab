"""What the k3s platform's ``reach`` (core's Forwarding) does to a collector's URL behind a
gateway: a URL on one of the hosts becomes a local forwarded port; anything else stays."""

from __future__ import annotations

from collections.abc import Callable

from greenflow_k3s.inventory import Host
from greenflow_k3s.tunnel import forwarded_url

HOSTS = [
    Host("n1", "n1.cluster.example", "control", node_ip="10.0.0.1"),
    Host("n2", "10.0.0.2", "worker"),
]


def _forward(calls: list[tuple[str, str, int]]) -> Callable[[Host, str, int], int]:
    def forward(host: Host, address: str, port: int) -> int:
        calls.append((host.name, address, port))
        return 40000 + len(calls)

    return forward


def test_a_url_on_a_host_goes_through_a_forwarded_local_port() -> None:
    calls: list[tuple[str, str, int]] = []
    out = forwarded_url("http://n1.cluster.example:30090/api/v1", HOSTS, _forward(calls))
    assert out == "http://127.0.0.1:40001/api/v1"
    assert calls == [("n1", "n1.cluster.example", 30090)]
    # By node IP, and with credentials and a query kept; https defaults to port 443.
    assert forwarded_url("https://u:p@10.0.0.1/q?x=1", HOSTS, _forward(calls)) == (
        "https://u:p@127.0.0.1:40002/q?x=1"
    )
    assert calls[-1] == ("n1", "10.0.0.1", 443)


def test_an_inventory_alias_is_asked_for_by_the_hosts_own_address() -> None:
    """``n2`` may mean something to SSH only (a Host alias): the host connects to its
    address instead."""
    calls: list[tuple[str, str, int]] = []
    assert forwarded_url("http://n2:9090", HOSTS, _forward(calls)) == "http://127.0.0.1:40001"
    assert calls == [("n2", "10.0.0.2", 9090)]


def test_a_url_elsewhere_is_left_alone() -> None:
    calls: list[tuple[str, str, int]] = []
    for url in ("http://prometheus.example.org:9090", "http://10.0.0.3:30090", "file:///x"):
        assert forwarded_url(url, HOSTS, _forward(calls)) == url
    assert calls == []
