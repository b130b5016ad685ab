"""The cluster's API from behind a gateway: a local port forwarded over SSH to the control
host's API (``127.0.0.1:6443`` there), and the kubeconfig pointed at it.

Nodes reached through a jump host (``gateway``: Grid'5000's access machine, a bastion) are
usually not routable from here, their API no more than their SSH. The forward goes through
the same SSH connection as the commands (through the gateway), so whatever reaches the
nodes reaches the API. k3s' serving certificate names ``127.0.0.1``, so TLS still checks
the server. The forward lives from the install to the release; ``greenflow down`` opens a
new one.
"""

from __future__ import annotations

import re
import socket
import threading
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import structlog

from greenflow.errors import PlatformError
from greenflow_k3s.inventory import Host
from greenflow_k3s.ssh import Connections

log = structlog.get_logger("greenflow.k3s")

#: The API server's port on the control host.
API_PORT = 6443
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
            forward = conn.forward_local(
                local_port=port, remote_port=API_PORT, remote_host="127.0.0.1"
            )
            forward.__enter__()
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
