"""k3s for GreenFlow: a Kubernetes cluster on nodes you already have, over SSH.

This is the foundation of the coming ``k3s`` platform (and of the installer greenflow-g5k
reuses): the inventory of nodes and roles (:func:`load_inventory`, from the original
GreenFlow's ``hosts.yaml`` or hosts written in the plan), the platform's settings
(:class:`K3sConfig`), and SSH to the nodes with fabric (:class:`Connections`,
:func:`run_all`, :class:`Secret`). Installing k3s is not here yet. docs/k3s.md has the
formats and every setting.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from greenflow_k3s.config import DEFAULT_INSTALL_SCRIPT, DEFAULT_K3S_VERSION, HostEntry, K3sConfig
from greenflow_k3s.inventory import (
    KUBERNETES_ROLES,
    ROLES,
    Gateway,
    Host,
    Inventory,
    InventoryError,
    Role,
    load_inventory,
    node_labels,
    node_taints,
    parse_hosts_yaml,
    registration_labels,
)
from greenflow_k3s.ssh import (
    Connections,
    HostsFailed,
    Secret,
    SshError,
    SudoRefused,
    remote_command,
    run_all,
    secret_file_command,
)

try:
    __version__ = version("greenflow-k3s")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0"

__all__ = [
    "DEFAULT_INSTALL_SCRIPT",
    "DEFAULT_K3S_VERSION",
    "KUBERNETES_ROLES",
    "ROLES",
    "Connections",
    "Gateway",
    "Host",
    "HostEntry",
    "HostsFailed",
    "Inventory",
    "InventoryError",
    "K3sConfig",
    "Role",
    "Secret",
    "SshError",
    "SudoRefused",
    "__version__",
    "load_inventory",
    "node_labels",
    "node_taints",
    "parse_hosts_yaml",
    "registration_labels",
    "remote_command",
    "run_all",
    "secret_file_command",
]
