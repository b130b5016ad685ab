"""The nodes of a k3s cluster and their roles: the original GreenFlow's Ansible-style
``hosts.yaml`` or hosts written in the plan, read into one :class:`Inventory` in which every
host has an address, its SSH settings and exactly one role. docs/k3s.md has both formats."""

from __future__ import annotations

import difflib
import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

import attrs
import yaml

from greenflow.errors import PlanError
from greenflow.plan.structure import where_in_plan
from greenflow_kubernetes import DEFAULT_ROLE_LABELS, split_role_label

if TYPE_CHECKING:
    from greenflow_k3s.config import K3sConfig

Role = Literal["control", "broker", "worker"]
#: GreenFlow's roles, in the order hosts are listed and installed.
ROLES: tuple[Role, ...] = ("control", "broker", "worker")
#: ``kubernetes_role`` in hosts.yaml (the original GreenFlow's words) → GreenFlow role.
KUBERNETES_ROLES: dict[str, Role] = {
    "control_plane": "control",
    "broker": "broker",
    "node": "worker",
}
#: The per-host variables hosts.yaml may set (Ansible's names); any other is refused, since
#: an SSH setting that was silently ignored would connect somewhere else than meant.
HOST_VARIABLES = (
    "kubernetes_role",
    "ansible_host",
    "ansible_user",
    "ansible_port",
    "ansible_ssh_private_key_file",
    "ansible_become",
)
#: Labels k3s gives a server node itself. The kubelet may not set ``node-role.kubernetes.io/*``
#: labels on its own node, so these are never passed as ``--node-label``.
K3S_SERVER_LABELS: Mapping[str, str] = {
    "node-role.kubernetes.io/control-plane": "true",
    "node-role.kubernetes.io/master": "true",
}
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")

_SHAPE = (
    "expected the Ansible inventory shape all: children: <control|broker|worker>: hosts: "
    "<name>: {kubernetes_role: control_plane|broker|node} (docs/k3s.md)"
)
# A node name (the inventory name becomes the node's name in the cluster): a DNS subdomain.
_NODE_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
# A host name or alias ssh can resolve (ssh_config aliases may carry '_').
_HOSTNAME = re.compile(r"[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?")
_USER = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*\$?")


class InventoryError(PlanError):
    """The inventory is wrong; one line per problem, each naming the file, host and key."""

    def __init__(self, where: str, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        head = [f"{where}: {len(problems)} problems in the inventory:"] if len(problems) > 1 else []
        super().__init__("\n".join(head + self.problems))


def suggest(value: object, valid: Iterable[str], aliases: Mapping[str, str] | None = None) -> str:
    """``' (did you mean "x"?)'`` when ``value`` is close to one of ``valid`` (or is one of
    ``aliases``' keys, which name the valid value meant), else ``""``."""
    if not isinstance(value, str):
        return ""
    if aliases and value in aliases:
        return f' (did you mean "{aliases[value]}"?)'
    close = difflib.get_close_matches(value, list(valid), n=1)
    return f' (did you mean "{close[0]}"?)' if close else ""


def node_name_problem(name: object) -> str | None:
    """Why ``name`` cannot be a node's name, or None."""
    if not isinstance(name, str):
        return f"expected a host name, got {name!r}"
    if len(name) > 253 or not _NODE_NAME.fullmatch(name):
        return (
            f"{name!r} cannot name a Kubernetes node (lower-case letters, digits, '-' and '.'; "
            "the inventory name becomes the node's name)"
        )
    return None


def address_problem(address: object) -> str | None:
    """Why ``address`` is no host name or IP address to connect to, or None."""
    if isinstance(address, str):
        try:
            ipaddress.ip_address(address)
            return None
        except ValueError:
            if len(address) <= 253 and _HOSTNAME.fullmatch(address):
                return None
    return f"expected a host name or an IP address, got {address!r}"


def user_problem(user: object) -> str | None:
    if isinstance(user, str) and _USER.fullmatch(user):
        return None
    return f"expected a user name, got {user!r}"


def port_problem(port: object) -> str | None:
    if isinstance(port, int) and not isinstance(port, bool) and 1 <= port <= 65535:
        return None
    return f"expected a port number 1–65535, got {port!r}"


@attrs.frozen
class Gateway:
    """The SSH jump host every node is reached through (``user@host:port``)."""

    host: str
    user: str | None = None
    port: int | None = None

    @classmethod
    def parse(cls, text: str) -> Gateway:
        """``[user@]host[:port]`` (an IPv6 address in brackets: ``[::1]:22``); raises
        ValueError saying what is expected."""
        expected = (
            f'expected "user@host:port" (user and port optional, an IPv6 address in '
            f"brackets), got {text!r}"
        )
        if not isinstance(text, str):
            raise ValueError(expected)
        user, at, rest = text.rpartition("@")
        if at and user_problem(user):
            raise ValueError(expected)
        port: int | None = None
        if rest.startswith("["):
            host, bracket, tail = rest[1:].partition("]")
            if not bracket or (tail and not tail.startswith(":")):
                raise ValueError(expected)
            port_text = tail[1:] if tail else None
        else:
            host, colon, port_text_ = rest.partition(":")
            port_text = port_text_ if colon else None
        if port_text is not None:
            if not port_text.isdigit() or port_problem(int(port_text)):
                raise ValueError(expected)
            port = int(port_text)
        if address_problem(host):
            raise ValueError(expected)
        return cls(host=host, user=user or None, port=port)

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return (
            (f"{self.user}@" if self.user else "") + host + (f":{self.port}" if self.port else "")
        )


@attrs.frozen
class Host:
    """A node: its name (also its Kubernetes node name), where SSH reaches it, its role."""

    name: str
    address: str
    role: Role
    #: None: from the SSH config, else the local user name.
    user: str | None = None
    #: None: from the SSH config, else 22.
    port: int | None = None
    #: Private key file; None: the SSH agent and the default keys (~/.ssh/id_*).
    key: Path | None = None
    #: Run privileged commands through ``sudo -n`` (passwordless sudo; never a prompt).
    become: bool = False
    #: k3s ``--node-ip``; None: k3s chooses.
    node_ip: str | None = None

    @property
    def target(self) -> str:
        """``user@address:port`` as far as known, for messages."""
        host = f"[{self.address}]" if ":" in self.address else self.address
        return (
            (f"{self.user}@" if self.user else "") + host + (f":{self.port}" if self.port else "")
        )


def _hosts_tuple(hosts: Iterable[Host]) -> tuple[Host, ...]:
    return tuple(hosts)


def role_problems(hosts: Sequence[Host], where: str, control_hint: str) -> list[str]:
    """What is wrong with the roles of ``hosts`` as a whole; ``where`` starts each message,
    ``control_hint`` says how this kind of inventory makes a host the control host."""
    if not hosts:
        return [f"{where}: no hosts; list at least the control host ({control_hint})"]
    problems = []
    roles_of: dict[str, list[str]] = {}
    for host in hosts:
        roles_of.setdefault(host.name, []).append(host.role)
    for name, roles in roles_of.items():
        if len(set(roles)) > 1:
            problems.append(
                f"{where}: host {name!r} is in two roles, {' and '.join(dict.fromkeys(roles))}; "
                "a host has one role: keep it in one"
            )
        elif len(roles) > 1:
            problems.append(f"{where}: host {name!r} is listed twice; remove one")
    controls = list(dict.fromkeys(h.name for h in hosts if h.role == "control"))
    if not controls:
        problems.append(
            f"{where}: no control host; make exactly one host the control host ({control_hint})"
        )
    elif len(controls) > 1:
        problems.append(
            f"{where}: {len(controls)} control hosts ({', '.join(controls)}); GreenFlow installs "
            "one k3s server (high availability with several servers is not supported): keep "
            "one control host and make the others workers"
        )
    return problems


@attrs.frozen
class Inventory:
    """The hosts of one cluster: exactly one control host, any number of brokers and
    workers, each host in one role; ``gateway`` the jump host, if any."""

    hosts: tuple[Host, ...] = attrs.field(converter=_hosts_tuple)
    gateway: Gateway | None = None
    #: Where the hosts were written (``hosts.yaml``, ``plan.toml [platform] hosts``).
    source: str = "inventory"

    def __attrs_post_init__(self) -> None:
        problems = role_problems(self.hosts, self.source, 'role "control"')
        if problems:
            raise InventoryError(self.source, problems)

    @property
    def control(self) -> Host:
        """The host that runs the k3s server (the control plane)."""
        return self.by_role("control")[0]

    @property
    def agents(self) -> tuple[Host, ...]:
        """Every host but the control host: brokers, then workers."""
        return self.by_role("broker") + self.by_role("worker")

    def by_role(self, role: Role) -> tuple[Host, ...]:
        """The hosts of ``role``, in inventory order."""
        return tuple(h for h in self.hosts if h.role == role)

    def __getitem__(self, name: str) -> Host:
        for host in self.hosts:
            if host.name == name:
                return host
        raise KeyError(name)


# -- labels and taints ------------------------------------------------------------------


def node_labels(host: Host) -> dict[str, str]:
    """The labels by which the kubernetes platform's role selectors find ``host``'s role
    (``DEFAULT_ROLE_LABELS``): a broker ``node.kubernetes.io/broker=true``, a worker
    ``node.kubernetes.io/worker=true``, the control host
    ``node-role.kubernetes.io/control-plane=true``."""
    key, value = split_role_label(DEFAULT_ROLE_LABELS[host.role])
    return {key: "true" if value is None else value}


def registration_labels(host: Host) -> dict[str, str]:
    """:func:`node_labels` less those k3s sets on a server itself: the host's
    ``--node-label`` values (labels are applied only when a node registers)."""
    own = K3S_SERVER_LABELS if host.role == "control" else {}
    return {k: v for k, v in node_labels(host).items() if own.get(k) != v}


def node_taints(host: Host, taints: Mapping[str, str]) -> list[str]:
    """The host's ``--node-taint`` values: its role's label with the effect ``taints``
    gives the role (``{"broker": "NoSchedule"}`` dedicates brokers). Keyed by the role's
    label, so GreenFlow's services for that role tolerate it (``KubeSession.tolerations``)."""
    effect = taints.get(host.role)
    if effect is None:
        return []
    return [f"{key}={value}:{effect}" for key, value in node_labels(host).items()]


# -- reading ------------------------------------------------------------------------------


class _UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.safe_load``'s loader, but a key written twice in one mapping is an error:
    PyYAML would keep the last one, and a host listed twice would silently lose a role."""


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: dict[Any, int] = {}
    for key_node, _value in node.value:
        key = loader.construct_object(key_node)
        try:
            first = seen.setdefault(key, key_node.start_mark.line)
        except TypeError:  # an unhashable key: construct_mapping says so
            continue
        if first != key_node.start_mark.line:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"{key!r} is written twice in one mapping (first at line {first + 1})",
                key_node.start_mark,
            )
    return loader.construct_mapping(node)


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_mapping,
)


def parse_hosts_yaml(text: str, shown: str, base: Path) -> list[Host]:
    """Hosts from the text of a hosts.yaml; ``shown`` names the file in messages, ``base``
    is the directory key files are relative to. Raises :class:`InventoryError`."""
    try:
        data = yaml.load(
            text, Loader=_UniqueKeyLoader
        )  # a SafeLoader subclass: safe_load plus one check
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        what = exc.problem or exc.context or "cannot parse"
        if "written twice" in what:
            msg = f"{shown}: line {mark.line + 1 if mark else '?'}: {what}; remove one"
        else:
            msg = (
                f"{shown}: not valid YAML{at}: {what}; check the indentation and the ':' "
                "after each name on that line"
            )
        raise InventoryError(shown, [msg]) from None
    except yaml.YAMLError as exc:
        raise InventoryError(shown, [f"{shown}: not valid YAML: {exc}"]) from None
    problems: list[str] = []
    hosts = _hosts_from_data(data, shown, base, problems)
    if not problems:
        problems = role_problems(
            hosts,
            shown,
            "put it under all.children.control.hosts with kubernetes_role: control_plane",
        )
    if problems:
        raise InventoryError(shown, problems)
    return hosts


def _hosts_from_data(data: Any, shown: str, base: Path, problems: list[str]) -> list[Host]:
    if data is None:
        problems.append(f"{shown}: the file is empty; {_SHAPE}")
        return []
    if not isinstance(data, dict) or list(data) != ["all"]:
        found = sorted(map(str, data)) if isinstance(data, dict) else type(data).__name__
        problems.append(f"{shown}: expected one top-level key 'all', found {found}; {_SHAPE}")
        return []
    top = data["all"]
    if not isinstance(top, dict):
        problems.append(f"{shown}: 'all' must be a mapping with 'children'; {_SHAPE}")
        return []
    if "hosts" in top:
        problems.append(
            f"{shown}: all.hosts: hosts directly under 'all' have no role; move each into the "
            "group of its role (all.children.control, .broker or .worker)"
        )
    unknown = sorted(map(str, set(top) - {"children", "vars", "hosts"}))
    if unknown:
        problems.append(
            f"{shown}: all: unknown key(s) {', '.join(unknown)}; 'all' has children and vars"
        )
    all_vars = _vars(top.get("vars"), f"{shown}: all.vars", problems)
    children = top.get("children")
    if not isinstance(children, dict):
        problems.append(
            f"{shown}: all.children must map each role (control, broker, worker) to its hosts; {_SHAPE}"
        )
        return []
    hosts: list[Host] = []
    for group, body in children.items():
        where = f"{shown}: all.children.{group}"
        if group not in ROLES:
            hint = suggest(group, ROLES, {k: v for k, v in KUBERNETES_ROLES.items() if k != v})
            problems.append(
                f"{where}: unknown group {group!r}{hint}; the groups are control, broker and worker"
            )
            continue
        if body is None:
            continue
        if not isinstance(body, dict):
            problems.append(f"{where}: expected a mapping with 'hosts', got {body!r}")
            continue
        unknown = sorted(map(str, set(body) - {"hosts", "vars"}))
        if unknown:
            problems.append(
                f"{where}: unknown key(s) {', '.join(unknown)}; a group has hosts and vars"
            )
        group_vars = _vars(body.get("vars"), f"{where}.vars", problems)
        members = body.get("hosts")
        if members is None:
            continue
        if not isinstance(members, dict):
            problems.append(
                f"{where}.hosts: expected a mapping of host name to its variables, got {members!r}"
            )
            continue
        for name, own in members.items():
            if own is None:
                own = {}
            if not isinstance(own, dict):
                problems.append(
                    f"{shown}: host {name!r}: expected a mapping of variables, got {own!r}"
                )
                continue
            host = _yaml_host(name, group, {**all_vars, **group_vars, **own}, shown, base, problems)
            if host is not None:
                hosts.append(host)
    order = {role: i for i, role in enumerate(ROLES)}
    return sorted(hosts, key=lambda h: order[h.role])


def _vars(value: Any, where: str, problems: list[str]) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        problems.append(f"{where}: expected a mapping of variables, got {value!r}")
        return {}
    return value


def _yaml_host(
    name: Any, group: Role, values: Mapping[str, Any], shown: str, base: Path, problems: list[str]
) -> Host | None:
    where = f"{shown}: host {name!r}"
    before = len(problems)
    if (problem := node_name_problem(name)) is not None:
        problems.append(f"{where}: {problem}; rename it and set ansible_host to its address")
    unknown = sorted(map(str, set(values) - set(HOST_VARIABLES)))
    if unknown:
        problems.append(
            f"{where}: unknown variable(s) {', '.join(unknown)}; GreenFlow reads "
            f"{', '.join(HOST_VARIABLES)}: remove the others"
        )
    role = group
    if "kubernetes_role" in values:
        given = values["kubernetes_role"]
        if given not in KUBERNETES_ROLES:
            aliases = {"control": "control_plane", "master": "control_plane", "worker": "node"}
            problems.append(
                f"{where}: kubernetes_role: unknown role {given!r}"
                f"{suggest(given, KUBERNETES_ROLES, aliases)}; valid: "
                f"{', '.join(KUBERNETES_ROLES)}"
            )
        elif KUBERNETES_ROLES[given] != group:
            expected = next(k for k, v in KUBERNETES_ROLES.items() if v == group)
            problems.append(
                f"{where}: kubernetes_role: {given!r} is the {KUBERNETES_ROLES[given]} role but "
                f"the host is in group {group!r}; a host has one role: move it to "
                f"all.children.{KUBERNETES_ROLES[given]} or write kubernetes_role: {expected}"
            )
    address = values.get("ansible_host", name)
    if "ansible_host" in values and (problem := address_problem(address)) is not None:
        problems.append(f"{where}: ansible_host: {problem}")
    user = values.get("ansible_user")
    if user is not None and (problem := user_problem(user)) is not None:
        problems.append(f"{where}: ansible_user: {problem}")
    port = values.get("ansible_port")
    if port is not None and (problem := port_problem(port)) is not None:
        problems.append(f"{where}: ansible_port: {problem}")
    become = values.get("ansible_become", False)
    if not isinstance(become, bool):
        problems.append(f"{where}: ansible_become: expected true or false, got {become!r}")
    key = None
    if "ansible_ssh_private_key_file" in values:
        key, problem = key_file(values["ansible_ssh_private_key_file"], base)
        if problem:
            problems.append(f"{where}: ansible_ssh_private_key_file: {problem}")
    if len(problems) > before:
        return None
    return Host(name=name, address=address, role=role, user=user, port=port, key=key, become=become)


def key_file(value: Any, base: Path) -> tuple[Path | None, str | None]:
    """(the key file ``value`` names, resolved against ``base``; or why it is unusable)."""
    if not isinstance(value, str) or not value:
        return None, f"expected the path of a private key file, got {value!r}"
    path = Path(value).expanduser()
    path = path if path.is_absolute() else base / path
    if not path.is_file():
        what = "is not a file" if path.exists() else "no such file"
        return None, (
            f"{what}: {path} (relative paths are relative to {base}); give the path of the "
            "private key that logs in to this host"
        )
    return path, None


def load_inventory(config: K3sConfig, plan: Path) -> Inventory:
    """The inventory ``config`` describes: its ``inventory`` file (relative to the plan's
    directory) or its inline ``hosts``, with ``node_ip`` and ``gateway`` applied.

    Raises :class:`InventoryError` (a :class:`~greenflow.errors.PlanError`) listing every
    problem, each naming the file, the host and the key."""
    base = plan.parent
    if config.inventory is not None:
        path = Path(config.inventory).expanduser()
        path = path if path.is_absolute() else base / path
        where = where_in_plan(plan, "platform", "inventory")
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            msg = f"{where}: no such file {path} (relative paths are relative to the plan's directory)"
            raise InventoryError(where, [msg]) from None
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            raise InventoryError(where, [f"{where}: cannot read {path}: {reason}"]) from None
        source = config.inventory
        hosts = parse_hosts_yaml(text, source, path.parent)
    else:
        source = where_in_plan(plan, "platform", "hosts")
        hosts = _inline_hosts(config, plan)
    problems = []
    names = [h.name for h in hosts]
    for name in config.node_ip:
        if name not in names:
            problems.append(
                f"{where_in_plan(plan, 'platform', 'node_ip')}: {name!r} is not in the "
                f"inventory{suggest(name, names)}; hosts: {', '.join(names)}"
            )
    if problems:
        raise InventoryError(where_in_plan(plan, "platform", "node_ip"), problems)
    hosts = [attrs.evolve(h, node_ip=config.node_ip.get(h.name)) for h in hosts]
    gateway = Gateway.parse(config.gateway) if config.gateway else None
    return Inventory(hosts, gateway=gateway, source=source)


def _inline_hosts(config: K3sConfig, plan: Path) -> list[Host]:
    problems = []
    hosts = []
    for i, entry in enumerate(config.hosts):
        key = None
        if entry.key is not None:
            key, problem = key_file(entry.key, plan.parent)
            if problem:
                where = where_in_plan(plan, "platform", f"hosts[{i}] key")
                problems.append(f"{where}: host {entry.name!r}: {problem}")
        hosts.append(
            Host(
                name=entry.name,
                address=entry.address or entry.name,
                role=cast(Role, entry.role),  # checked by HostEntry
                user=entry.user,
                port=entry.port,
                key=key,
                become=entry.become,
            )
        )
    where = where_in_plan(plan, "platform", "hosts")
    problems += role_problems(hosts, where, 'give it role = "control"')
    if problems:
        raise InventoryError(where, problems)
    order = {role: i for i, role in enumerate(ROLES)}
    return sorted(hosts, key=lambda h: order[h.role])
