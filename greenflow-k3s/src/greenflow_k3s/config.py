"""The settings of the k3s platform (the plan's ``[platform]`` table), checked before any
host is reached. docs/k3s.md lists every key with its default."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, cast

import attrs

from greenflow.plan.durations import Duration
from greenflow.plan.validators import http_url, matches, positive
from greenflow_k3s.inventory import (
    KUBERNETES_ROLES,
    ROLES,
    TAINT_EFFECTS,
    Gateway,
    Host,
    Role,
    address_problem,
    node_name_problem,
    port_problem,
    role_problems,
    suggest,
    user_problem,
)
from greenflow_kubernetes import KubernetesConfig

#: The k3s release installed unless the plan says otherwise: pinned, so that two runs of a
#: plan months apart get the same Kubernetes (a channel such as "stable" moves).
DEFAULT_K3S_VERSION = "v1.33.4+k3s1"
#: k3s' official install script.
DEFAULT_INSTALL_SCRIPT = "https://get.k3s.io"
#: What ``k3s server --disable`` accepts (its packaged components).
K3S_COMPONENTS = ("coredns", "servicelb", "traefik", "local-storage", "metrics-server", "runtimes")
#: k3s flags GreenFlow sets itself → the plan key (or the rule) that decides them.
MANAGED_FLAGS: Mapping[str, str] = {
    "node-ip": "set node_ip",
    "node-name": "the host's name in the inventory is its node name",
    "node-label": "labels follow the host's role",
    "node-taint": "set taints",
    "disable": "set disable",
    "token": "GreenFlow reads the join token from the server",
    "token-file": "GreenFlow reads the join token from the server",
    "server": "agents join the control host",
    "write-kubeconfig": "GreenFlow fetches the kubeconfig from where k3s writes it",
}
_FLAG = re.compile(r"--([a-z0-9][a-z0-9-]*)(=.*)?")


def _fail(attribute: attrs.Attribute[Any], expected: str, value: Any) -> None:
    raise ValueError(f"{attribute.name}: expected {expected}, got {value!r}")


def _check(
    problem: Callable[[Any], str | None],
) -> Callable[[Any, attrs.Attribute[Any], Any], None]:
    """A validator from an ``x_problem`` function of greenflow_k3s.inventory (None passes)."""

    def check(_inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value is not None and (text := problem(value)) is not None:
            raise ValueError(f"{attribute.name}: {text}")

    return check


def _local_path(_inst: Any, attribute: attrs.Attribute[Any], value: str | None) -> None:
    """A path on this machine, on one line (None passes)."""
    if value is not None and (not isinstance(value, str) or not value.strip() or "\n" in value):
        _fail(attribute, "a path on this machine", value)


def _image_archives(_inst: Any, attribute: attrs.Attribute[Any], value: tuple[str, ...]) -> None:
    """Paths on this machine whose file names differ: each lands in k3s' images directory
    under its own name."""
    names: dict[str, str] = {}
    for path in value:
        _local_path(_inst, attribute, path)
        name = Path(path).name
        if name in names:
            raise ValueError(
                f"{attribute.name}: {names[name]!r} and {path!r} have the same file name, "
                "and would overwrite each other on the nodes; rename one"
            )
        names[name] = path


def _role(_inst: Any, attribute: attrs.Attribute[Any], value: str) -> None:
    if value not in ROLES:
        aliases = {k: v for k, v in KUBERNETES_ROLES.items() if k != v}
        raise ValueError(
            f"{attribute.name}: unknown role {value!r}{suggest(value, ROLES, aliases)}; "
            f"valid: {', '.join(ROLES)}"
        )


def _node_name(_inst: Any, attribute: attrs.Attribute[Any], value: str) -> None:
    if (problem := node_name_problem(value)) is not None:
        raise ValueError(f"{attribute.name}: {problem}; rename it and set address")


@attrs.frozen
class HostEntry:
    """One host written in the plan (``[[platform.hosts]]``)."""

    #: The host's name, also its Kubernetes node name.
    name: str = attrs.field(validator=_node_name)
    #: control, broker or worker.
    role: str = attrs.field(validator=_role)
    #: Host name or IP address to connect to; default: ``name``.
    address: str | None = attrs.field(default=None, validator=_check(address_problem))
    #: SSH user; default: from the SSH config, else the local user name.
    user: str | None = attrs.field(default=None, validator=_check(user_problem))
    #: SSH port; default: from the SSH config, else 22.
    port: int | None = attrs.field(default=None, validator=_check(port_problem))
    #: Private key file, relative to the plan's directory; default: agent and ~/.ssh/id_*.
    key: str | None = attrs.field(default=None, validator=_local_path)
    #: Privileged commands through ``sudo -n`` (passwordless sudo).
    become: bool = False


def _hosts(inst: K3sConfig, attribute: attrs.Attribute[Any], value: tuple[HostEntry, ...]) -> None:
    if inst.inventory is not None and value:
        raise ValueError(
            f"{attribute.name}: the plan gives both inventory and hosts; keep one of them"
        )
    if inst.inventory is None:
        hosts = [Host(h.name, h.address or h.name, cast(Role, h.role)) for h in value]
        problems = role_problems(hosts, attribute.name, 'give it role = "control"')
        if not hosts:
            problems = [
                f'{attribute.name}: no hosts; set inventory = "hosts.yaml" or list the hosts '
                'as [[platform.hosts]] tables (name, role = "control", "broker" or "worker")'
            ]
        if problems:
            # One message per problem would be better, but attrs validators raise one error.
            raise ValueError(problems[0] + "".join(f"; also {p}" for p in problems[1:]))


def _gateway(_inst: Any, attribute: attrs.Attribute[Any], value: str | None) -> None:
    if value is not None:
        try:
            Gateway.parse(value)
        except ValueError as exc:
            raise ValueError(f"{attribute.name}: {exc}") from None


def _install_script(_inst: Any, attribute: attrs.Attribute[Any], value: str) -> None:
    if isinstance(value, str) and "://" in value:
        try:
            http_url(_inst, attribute, value)
        except ValueError:
            _fail(attribute, "an http(s):// URL or a path on this machine", value)
    else:
        _local_path(_inst, attribute, value)


def _components(_inst: Any, attribute: attrs.Attribute[Any], value: tuple[str, ...]) -> None:
    for item in value:
        if item not in K3S_COMPONENTS:
            raise ValueError(
                f"{attribute.name}: {item!r} is no k3s component{suggest(item, K3S_COMPONENTS)}; "
                f"k3s can disable {', '.join(K3S_COMPONENTS)}"
            )


def _node_ips(_inst: Any, attribute: attrs.Attribute[Any], value: Mapping[str, str]) -> None:
    for name, ip in value.items():
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            raise ValueError(
                f"{attribute.name}: host {name!r}: expected an IP address, got {ip!r}"
            ) from None


def _args(kind: str) -> Callable[[Any, attrs.Attribute[Any], tuple[str, ...]], None]:
    def check(_inst: Any, attribute: attrs.Attribute[Any], value: tuple[str, ...]) -> None:
        for item in value:
            match = _FLAG.fullmatch(item) if isinstance(item, str) and "\n" not in item else None
            if match is None:
                raise ValueError(
                    f"{attribute.name}: expected k3s {kind} flags, each one item "
                    f'"--flag" or "--flag=value" (e.g. "--kubelet-arg=max-pods=200"), got {item!r}'
                )
            if match.group(1) in MANAGED_FLAGS:
                raise ValueError(
                    f"{attribute.name}: {item!r} is set by GreenFlow: "
                    f"{MANAGED_FLAGS[match.group(1)]}"
                )

    return check


def _taints(_inst: Any, attribute: attrs.Attribute[Any], value: Mapping[str, str]) -> None:
    for role, effect in value.items():
        if role not in ROLES:
            raise ValueError(
                f"{attribute.name}: unknown role {role!r}{suggest(role, ROLES)}; "
                f"valid: {', '.join(ROLES)}"
            )
        if effect not in TAINT_EFFECTS:
            raise ValueError(
                f"{attribute.name}: {role}: expected a taint effect, one of "
                f"{', '.join(TAINT_EFFECTS)}, got {effect!r}{suggest(effect, TAINT_EFFECTS)}"
            )


def _kubernetes(_inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """Checked by the kubernetes platform's own Config, which receives it."""
    KubernetesConfig(**{attribute.name: value})


_K3S_VERSION = matches(
    r"v\d+\.\d+\.\d+(-rc\d+)?\+k3s\d+",
    f'a k3s release tag like "{DEFAULT_K3S_VERSION}" (a pinned release: a channel such as '
    '"stable" changes under a plan)',
)


@attrs.frozen
class K3sOptions:
    """How k3s is installed and the cluster driven, whoever provides the hosts: the
    ``k3s`` platform's keys beside its inventory, and greenflow-g5k's ``[platform.k3s]``."""

    #: Deadline of each SSH connection (TCP and the SSH handshake).
    connect_timeout: Duration = attrs.field(default=Duration(10), validator=positive)
    #: The k3s release installed on every host.
    k3s_version: str = attrs.field(default=DEFAULT_K3S_VERSION, validator=_K3S_VERSION)
    #: The install script: an http(s) URL each host downloads, or a file on this machine
    #: uploaded to the hosts.
    install_script: str = attrs.field(default=DEFAULT_INSTALL_SCRIPT, validator=_install_script)
    #: Air-gapped install: a k3s binary on this machine, uploaded (no download on the hosts).
    k3s_binary: str | None = attrs.field(default=None, validator=_local_path)
    #: Air-gapped install: image archives on this machine (k3s' own images archive, and any
    #: other the services need), uploaded to every host's k3s images directory.
    airgap_images: tuple[str, ...] = attrs.field(default=(), validator=_image_archives)
    #: Packaged components k3s does not deploy.
    disable: tuple[str, ...] = attrs.field(default=("traefik", "servicelb"), validator=_components)
    #: More ``k3s server`` flags (control host), each ``"--flag=value"``.
    server_args: tuple[str, ...] = attrs.field(default=(), validator=_args("server"))
    #: More ``k3s agent`` flags (broker and worker hosts), each ``"--flag=value"``.
    agent_args: tuple[str, ...] = attrs.field(default=(), validator=_args("agent"))
    #: Role → taint effect on its nodes (``{ broker = "NoSchedule" }``: dedicated brokers).
    taints: dict[str, str] = attrs.field(factory=dict, converter=dict, validator=_taints)
    #: Deadline for every node to be Ready after the install.
    ready_timeout: Duration = attrs.field(default=Duration(300), validator=positive)
    #: The experiment's namespace, as for the kubernetes platform.
    namespace: str | None = attrs.field(default=None, validator=_kubernetes)
    #: Deadline of each wait of the kubernetes platform's acquire and release.
    timeout_s: float = attrs.field(default=300.0, validator=_kubernetes)

    def kubernetes(self, kubeconfig: str, context: str | None = None) -> KubernetesConfig:
        """The kubernetes platform's settings for the installed cluster."""
        return KubernetesConfig(
            kubeconfig=kubeconfig,
            context=context,
            namespace=self.namespace,
            timeout_s=self.timeout_s,
        )


@attrs.frozen
class K3sConfig(K3sOptions):
    """``[platform] type = "k3s"``: a k3s cluster on the hosts of an inventory (the install
    options are :class:`K3sOptions`')."""

    #: Ansible-style hosts.yaml, relative to the plan's directory (or ``hosts``).
    inventory: str | None = attrs.field(default=None, validator=_local_path)
    #: The hosts, written in the plan (or ``inventory``).
    hosts: tuple[HostEntry, ...] = attrs.field(default=(), validator=_hosts)
    #: SSH jump host every node is reached through: ``"user@host:port"``.
    gateway: str | None = attrs.field(default=None, validator=_gateway)
    #: OpenSSH client config read instead of ~/.ssh/config and /etc/ssh/ssh_config.
    ssh_config: str | None = attrs.field(default=None, validator=_local_path)
    #: Host name → the IP address k3s uses for the node (``--node-ip``); default: k3s chooses.
    node_ip: dict[str, str] = attrs.field(factory=dict, converter=dict, validator=_node_ips)
    #: Leave k3s installed at release (``greenflow up`` does regardless; ``down`` removes it).
    keep: bool = False
