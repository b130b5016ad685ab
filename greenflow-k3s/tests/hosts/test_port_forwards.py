"""A collector's URL on a node behind a gateway, reached for real: greenflow-k3s forwards a
local port over SSH through the jump host (gfh0) to a port on gfh1, where an HTTP server
listens on gfh1's own address — what ``reach`` does for Prometheus' NodePort on k3s and
Grid'5000 nodes (core's Forwarding)."""

from __future__ import annotations

import urllib.request
import uuid

from greenflow_k3s.inventory import Gateway, Host, Inventory
from greenflow_k3s.ssh import Connections
from greenflow_k3s.testing.hosts import HostPool
from greenflow_k3s.tunnel import PortForwards, forwarded_url

PORT = 18093


def test_a_url_on_a_node_behind_the_gateway_is_served_through_ssh(
    ssh_host_pool: HostPool,
) -> None:
    hosts = ssh_host_pool.get(2)
    target = hosts[1]
    # As a plan names them: SSH aliases (the ssh_config maps them), the node IP known.
    node = Host(target.name, target.name, "control", node_ip=target.address)
    inventory = Inventory([node], gateway=Gateway(hosts[0].name))
    marker = uuid.uuid4().hex
    serve = (
        f"mkdir -p /tmp/gf-forward && echo {marker} > /tmp/gf-forward/index.html; "
        f"(setsid nohup python3 -m http.server {PORT} --bind {target.address} "
        "--directory /tmp/gf-forward >/dev/null 2>&1 < /dev/null &); "
        f"for i in $(seq 50); do python3 -c 'import socket; socket.create_connection("
        f'("{target.address}", {PORT}), 1)\' 2>/dev/null && exit 0; sleep 0.1; done; exit 1'
    )
    with Connections(inventory, ssh_config=hosts.ssh_config) as conns:
        assert conns.run(node, serve, timeout=30).ok
        forwards = PortForwards(Connections(inventory, ssh_config=hosts.ssh_config))
        try:
            url = forwarded_url(f"http://{target.address}:{PORT}/", [node], forwards.local_port)
            assert url.startswith("http://127.0.0.1:") and url != f"http://{target.address}:{PORT}/"
            with urllib.request.urlopen(url, timeout=10) as answer:
                assert answer.read().decode().strip() == marker
            # The same node and port: the same forward.
            assert (
                forwarded_url(f"http://{target.address}:{PORT}/x", [node], forwards.local_port)
                == url + "x"
            )
        finally:
            forwards.close()
            conns.run(node, f"pkill -f 'http[.]server {PORT}' || true", timeout=30)
