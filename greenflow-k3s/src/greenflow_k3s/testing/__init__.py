"""Test support for the k3s platform and for code that works on hosts over SSH (extra:
``greenflow-k3s[testing]``).

- :mod:`.hosts`: SSH test hosts, real sshds in network namespaces from a checkout's
  ``scripts/ssh-hosts`` (:func:`ssh_hosts`, the session fixture :func:`ssh_host_pool`).
- :mod:`.standin`: the k3s stand-in's artefacts (the session fixture
  :func:`standin_artefacts`) and what its network leaves on a host (:func:`network_left`).

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
from greenflow_k3s.testing.standin import network_left, standin_artefacts

__all__ = [
    "NOSUDO_USER",
    "PRIVATE_DIRS",
    "ROOT_USER",
    "SUDO_USER",
    "HostPool",
    "SshHost",
    "SshHosts",
    "find_scripts",
    "network_left",
    "ssh_host_pool",
    "ssh_hosts",
    "standin_artefacts",
]
