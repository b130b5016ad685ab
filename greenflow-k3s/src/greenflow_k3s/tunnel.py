"""The cluster's API from behind a gateway: a local port forwarded over SSH to the control
host's API (``127.0.0.1:6443`` there), and the kubeconfig pointed at it.

Nodes reached through a jump host (``gateway``: Grid'5000's access machine, a bastion) are
usually not routable from here, their API no more than their SSH. The forward goes through
the same SSH connection as the commands (through the gateway), so whatever reaches the
nodes reaches the API. k3s' serving certificate names ``127.0.0.1``, so TLS still checks
the server. The forward lives from the install to the release; ``greenflow down`` opens a
new one.

The same connections carry what a collector queries on the nodes (:class:`PortForwards`,
:func:`forwarded_url`): the platform's ``reach`` (core's ``Forwarding``) hands the
collectors ``http://127.0.0.1:<port>`` for a Prometheus NodePort behind the gateway.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, suppress
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psutil
import structlog

from greenflow.errors import PlatformError
from greenflow_k3s.inventory import Host
from greenflow_k3s.ssh import Connections

log = structlog.get_logger("greenflow.k3s")

#: The API server's port on the control host.
API_PORT = 6443
#: How long a forward's local listener may take to come up.
_LISTEN_TIMEOUT_S = 10.0
_SERVER = re.compile(r"(server:\s*https://)([^\s/]+)")


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (the OS's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def point_kubeconfig(path: Path, port: int) -> None:
    """Rewrite the kubeconfig at ``path`` to reach the API at ``127.0.0.1:port`` (kept
    0600, as it was written)."""
    text = path.read_text()
    out, n = _SERVER.subn(lambda m: f"{m.group(1)}127.0.0.1:{port}", text)
    if n == 0:
        raise PlatformError(f"{path}: no server to point at the tunnel")
    path.write_text(out)
    path.chmod(0o600)


def open_forward(
    conn: Any, local_port: int, remote_host: str, remote_port: int
) -> AbstractContextManager[Any]:
    """Fabric's ``forward_local`` from ``127.0.0.1:local_port``, entered, once it listens.

    Fabric binds the local port in a thread of its own and returns before it listens: a
    client connecting at once (a collector's first query) could be refused. Waits for the
    listener; raises :class:`PlatformError` if it never comes (the port taken meanwhile).
    """
    forward: AbstractContextManager[Any] = conn.forward_local(
        local_port=local_port, remote_port=remote_port, remote_host=remote_host
    )
    forward.__enter__()
    deadline = time.monotonic() + _LISTEN_TIMEOUT_S
    while not _listening(local_port):
        if time.monotonic() > deadline:
            with suppress(Exception):  # the forward's thread failed: its error is ours below
                forward.__exit__(None, None, None)
            msg = (
                f"the SSH forward to {remote_host}:{remote_port} did not listen on "
                f"127.0.0.1:{local_port} within {_LISTEN_TIMEOUT_S:g} s"
            )
            raise PlatformError(msg)
        time.sleep(0.01)
    return forward


def _listening(port: int) -> bool:
    """Whether this process listens on TCP ``port``."""
    return any(
        c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port
        for c in psutil.Process().net_connections(kind="tcp4")
    )


class ApiTunnel:
    """``127.0.0.1:<port>`` here → ``127.0.0.1:6443`` on ``control``, over SSH."""

    def __init__(self, connections: Connections, control: Host) -> None:
        self.connections = connections
        self.control = control
        self.port: int | None = None
        self._forward: AbstractContextManager[Any] | None = None
        self._lock = threading.Lock()

    def open(self) -> int:
        """Start forwarding; the local port. Raises :class:`~greenflow_k3s.ssh.SshError`
        when the control host cannot be reached."""
        with self._lock:
            if self.port is not None:
                return self.port
            conn = self.connections.open(self.control)
            port = free_port()
            forward = open_forward(conn, port, "127.0.0.1", API_PORT)
            self._forward, self.port = forward, port
            log.info("k3s.api_tunnel", local_port=port, control=self.control.name)
            return port

    def close(self) -> None:
        """Stop forwarding and close the SSH connections. Idempotent."""
        with self._lock:
            forward, self._forward, self.port = self._forward, None, None
        try:
            if forward is not None:
                forward.__exit__(None, None, None)
        finally:
            self.connections.close()


class PortForwards:
    """Local ports forwarded over SSH to ports on the hosts, for what a collector queries
    behind the gateway (Prometheus on a NodePort): one per (host, address, port), each
    opened on first use and kept until :meth:`close` (the release)."""

    def __init__(self, connections: Connections) -> None:
        self.connections = connections
        self._open: dict[tuple[str, str, int], tuple[int, AbstractContextManager[Any]]] = {}
        self._lock = threading.Lock()

    def local_port(self, host: Host, address: str, port: int) -> int:
        """The local port forwarded to ``address:port`` as ``host`` reaches it."""
        key = (host.name, address, port)
        with self._lock:
            if key in self._open:
                return self._open[key][0]
            conn = self.connections.open(host)
            local = free_port()
            forward = open_forward(conn, local, address, port)
            self._open[key] = (local, forward)
            log.info("k3s.port_forward", local_port=local, host=host.name, port=port)
            return local

    def close(self) -> None:
        """Stop every forward and close the SSH connections. Idempotent."""
        with self._lock:
            forwards, self._open = list(self._open.values()), {}
        try:
            for _, forward in forwards:
                forward.__exit__(None, None, None)
        finally:
            self.connections.close()


def forwarded_url(url: str, hosts: Sequence[Host], forward: Callable[[Host, str, int], int]) -> str:
    """``url`` with its host and port replaced by ``127.0.0.1:<forward(host, name, port)>``
    when its host names one of ``hosts`` (name, SSH address or node IP); else ``url``. The
    scheme, credentials, path and query stay."""
    parts = urlsplit(url)
    name = parts.hostname
    if not name:
        return url
    host = next((h for h in hosts if name in (h.name, h.address, h.node_ip)), None)
    if host is None:
        return url
    port = parts.port or (443 if parts.scheme == "https" else 80)
    # An inventory name may mean something only to SSH (a Host alias): the host is asked
    # for its own address instead.
    target = name if name != host.name else (host.node_ip or host.address)
    local = forward(host, target, port)
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = f"{userinfo}@127.0.0.1:{local}" if userinfo else f"127.0.0.1:{local}"
    return urlunsplit(parts._replace(netloc=netloc))
