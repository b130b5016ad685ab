"""greenflow-g5k's tests. The SSH test hosts (real sshds in network namespaces, root) and
the k3s stand-in come from greenflow-k3s' session fixtures (docs/k3s-testing.md)."""

from __future__ import annotations

from greenflow_k3s.testing.hosts import ssh_host_pool  # noqa: F401  (fixtures, used by name)
from greenflow_k3s.testing.standin import standin_artefacts  # noqa: F401
