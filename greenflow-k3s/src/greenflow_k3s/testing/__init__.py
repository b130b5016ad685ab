"""Test support for the k3s platform and for code that works on hosts over SSH (extra:
``greenflow-k3s[testing]``).

- :mod:`.hosts`: SSH test hosts, real sshds in network namespaces from a checkout's
  ``scripts/ssh-hosts`` (:func:`ssh_hosts`, the session fixture :func:`ssh_host_pool`).

docs/k3s-testing.md describes them and what tests on them prove.
"""

from __future__ import annotations

from greenflow_k3s.testing.hosts import (
    NOSUDO_USER,
    PRIVATE_DIRS,
    ROOT_USER,
    SUDO_USER,
    HostPool,
    SshHost,
    SshHosts,
    find_scripts,
    ssh_host_pool,
    ssh_hosts,
)

__all__ = [
    "NOSUDO_USER",
    "PRIVATE_DIRS",
    "ROOT_USER",
    "SUDO_USER",
    "HostPool",
    "SshHost",
    "SshHosts",
    "find_scripts",
    "ssh_host_pool",
    "ssh_hosts",
]
