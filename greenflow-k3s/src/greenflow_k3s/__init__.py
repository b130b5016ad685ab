"""k3s for GreenFlow: a Kubernetes cluster on nodes you already have, over SSH.

The ``k3s`` platform (:mod:`greenflow_k3s.platform`) and what it is built from, which
greenflow-g5k reuses: the inventory of nodes and roles (:func:`load_inventory`, from the
original GreenFlow's ``hosts.yaml`` or hosts written in the plan), the platform's settings
(:class:`K3sConfig`, its install options :class:`K3sOptions`), SSH to the nodes with
fabric (:class:`Connections`, :func:`run_all`, :class:`Secret`) and the install itself
(:class:`greenflow_k3s.install.Installer`). docs/k3s.md has the formats and every setting.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from greenflow_k3s.config import (
    DEFAULT_INSTALL_SCRIPT,
    DEFAULT_K3S_VERSION,
    HostEntry,
    K3sConfig,
    K3sOptions,
)
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
    suggest,
)
from greenflow_k3s.platform import K3sPlatform
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
    "K3sOptions",
    "K3sPlatform",
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
    "suggest",
]
