"""greenflow-k3s' tests. The SSH test hosts (real sshds in network namespaces, root) come
from the session fixture ``ssh_host_pool`` (docs/k3s-testing.md, "Test hosts")."""

from __future__ import annotations

from greenflow_k3s.testing.hosts import ssh_host_pool  # noqa: F401  (a fixture, used by name)
