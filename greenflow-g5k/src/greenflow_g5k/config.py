"""The settings of the g5k platform (the plan's ``[platform]`` table), checked before the
Grid'5000 API is reached. docs/g5k.md lists every key with its default."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import attrs

from greenflow.plan.durations import Duration, parse_duration
from greenflow.plan.validators import http_url, positive
from greenflow_k3s import ROLES, Gateway, K3sOptions, suggest

#: The real Grid'5000 API (python-grid5000's default, passed explicitly).
DEFAULT_API_URL = "https://api.grid5000.fr/stable"
#: Where python-grid5000 keeps a user's credentials (``username``, ``password``, ``uri``).
DEFAULT_CREDENTIALS_FILE = "~/.python-grid5000.yaml"
#: OAR queues a plan may ask for (``admin`` is not for users).
QUEUES = ("default", "production", "testing", "besteffort")
#: GreenFlow reserves whole nodes and gives them its own names: these OAR job types would
#: change what a job is (``deploy`` follows ``env``; ``besteffort`` is a queue here).
MANAGED_TYPES = {"deploy": "set env", "besteffort": 'set queue = "besteffort"'}
_OAR_WALLTIME = re.compile(r"(\d+):([0-5]\d)(?::([0-5]\d))?")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_NODE = re.compile(r"[a-z][a-z0-9]*-\d+(\.[a-z]+\.grid5000\.fr)?")
#: OAR reads advance reservations in the sites' local time.
RESERVATION_FORMAT = "%Y-%m-%d %H:%M:%S"


def walltime_seconds(value: object) -> int:
    """A walltime as OAR writes it (``"2:00:00"``, ``"1:30"``) or as a GreenFlow duration
    (``"2h"``, ``"90m"``, seconds); raises ValueError saying what is accepted."""
    if isinstance(value, str) and (m := _OAR_WALLTIME.fullmatch(value.strip())):
        hours, minutes, seconds = m.groups()
        return int(hours) * 3600 + int(minutes) * 60 + int(seconds or 0)
    try:
        return round(parse_duration(value))
    except ValueError:
        raise ValueError(
            f'expected a walltime like "2h", "1h30m" or OAR\'s "2:00:00", got {value!r}'
        ) from None


def oar_walltime(seconds: float) -> str:
    """``H:MM:SS``, as OAR takes it (hours may exceed 24)."""
    s = round(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _walltime(_inst: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    try:
        seconds = walltime_seconds(value)
    except ValueError as exc:
        raise ValueError(f"{attribute.name}: {exc}") from None
    if seconds < 60:
        raise ValueError(f"{attribute.name}: at least one minute, got {value!r}")


def _optional_walltime(inst: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None:
        _walltime(inst, attribute, value)


def _name(_inst: Any, attribute: attrs.Attribute[Any], value: str | None) -> None:
    if value is not None and not (isinstance(value, str) and _NAME.fullmatch(value)):
        raise ValueError(
            f"{attribute.name}: expected a name of letters, digits, '_', '.' and '-', got {value!r}"
        )


def _queue(_inst: Any, attribute: attrs.Attribute[Any], value: str) -> None:
    if value not in QUEUES:
        raise ValueError(
            f"{attribute.name}: expected one of {', '.join(QUEUES)}, got {value!r}"
            f"{suggest(value, QUEUES)}"
        )


def _reservation(_inst: Any, attribute: attrs.Attribute[Any], value: str | None) -> None:
    if value is None:
        return
    try:
        datetime.strptime(str(value), RESERVATION_FORMAT)
    except ValueError:
        raise ValueError(
            f'{attribute.name}: expected a start date "YYYY-MM-DD HH:MM:SS" in the site\'s '
            f"local time (Europe/Paris), got {value!r}"
        ) from None


def _job_types(_inst: Any, attribute: attrs.Attribute[Any], value: tuple[str, ...]) -> None:
    for item in value:
        if not isinstance(item, str) or not item or any(c.isspace() for c in item):
            raise ValueError(f"{attribute.name}: expected OAR job types, got {item!r}")
        if item.split("=")[0] in MANAGED_TYPES:
            raise ValueError(
                f"{attribute.name}: {item!r} is set by GreenFlow: {MANAGED_TYPES[item]}"
            )


def _gateway(_inst: Any, attribute: attrs.Attribute[Any], value: str | None) -> None:
    if value is not None:
        try:
            Gateway.parse(value)
        except ValueError as exc:
            raise ValueError(f"{attribute.name}: {exc}") from None


def _path(_inst: Any, attribute: attrs.Attribute[Any], value: str | None) -> None:
    if value is not None and (not isinstance(value, str) or not value.strip() or "\n" in value):
        raise ValueError(f"{attribute.name}: expected a path on this machine, got {value!r}")


def _servers(_inst: Any, attribute: attrs.Attribute[Any], value: tuple[str, ...]) -> None:
    for item in value:
        if not isinstance(item, str) or not _NODE.fullmatch(item):
            raise ValueError(
                f'{attribute.name}: expected node names like "nova-3" or '
                f'"nova-3.lyon.grid5000.fr", got {item!r}'
            )
    if len(set(value)) != len(value):
        raise ValueError(f"{attribute.name}: a node is named twice")


@attrs.frozen
class RoleNodes:
    """``roles.<role> = { cluster = "nova", nodes = 3 }`` or ``{ servers = ["nova-1"] }``."""

    #: The cluster the nodes come from (default: ``[platform] cluster``).
    cluster: str | None = attrs.field(default=None, validator=_name)
    #: How many nodes (with ``servers``: must match their number, or be left out).
    nodes: int | None = attrs.field(default=None, validator=attrs.validators.optional(positive))
    #: Exactly these nodes (short names or FQDNs), instead of any of the cluster's.
    servers: tuple[str, ...] = attrs.field(default=(), validator=_servers)

    def __attrs_post_init__(self) -> None:
        if self.servers and self.nodes is not None and self.nodes != len(self.servers):
            raise ValueError(
                f"nodes: {self.nodes} but {len(self.servers)} servers are named; "
                "leave nodes out with servers"
            )

    @property
    def count(self) -> int:
        return len(self.servers) if self.servers else (self.nodes or 1)


def _roles(inst: G5kConfig, attribute: attrs.Attribute[Any], value: Mapping[str, Any]) -> None:
    for role in value:
        if role not in ROLES:
            raise ValueError(
                f"{attribute.name}: unknown role {role!r}{suggest(role, ROLES)}; "
                f"valid: {', '.join(ROLES)}"
            )
    if "control" not in value:
        raise ValueError(
            f"{attribute.name}: no control role; add control = {{ nodes = 1 }} (the k3s "
            "server's node)"
        )
    for role, group in value.items():
        if not group.servers and group.cluster is None and inst.cluster is None:
            raise ValueError(
                f"{attribute.name}.{role}: no cluster; set cluster here or [platform] cluster"
            )
    named = [s.split(".")[0] for g in value.values() for s in g.servers]
    if len(set(named)) != len(named):
        raise ValueError(f"{attribute.name}: a node is named in two roles")


@attrs.frozen
class G5kConfig:
    """``[platform] type = "g5k"``: nodes reserved on one Grid'5000 site, k3s on them."""

    #: The site whose nodes are reserved (``lyon``, ``nancy``, …).
    site: str = attrs.field(validator=_name)
    #: Role → its nodes; control is required (one node: the k3s server).
    roles: dict[str, RoleNodes] = attrs.field(converter=dict, validator=_roles)
    #: The cluster of every role that names none.
    cluster: str | None = attrs.field(default=None, validator=_name)
    #: The job's walltime: ``"2h"`` or OAR's ``"2:00:00"``.
    walltime: str = attrs.field(default="1h", converter=str, validator=_walltime)
    #: Before each run, the walltime guard may extend the job up to this total walltime
    #: (unset: never extends; the run is not started when it would not fit).
    max_walltime: str | None = attrs.field(default=None, validator=_optional_walltime)
    #: OAR queue.
    queue: str = attrs.field(default="default", validator=_queue)
    #: OAR project (accounting; required on some queues).
    project: str | None = attrs.field(default=None, validator=_name)
    #: Advance reservation: the job starts at this date, ``"YYYY-MM-DD HH:MM:SS"`` in the
    #: site's local time (Europe/Paris); unset: as soon as possible.
    reservation: str | None = attrs.field(default=None, validator=_reservation)
    #: The job's name, by which a re-run finds it; default: ``greenflow-<experiment>``.
    job_name: str | None = attrs.field(default=None, validator=_name)
    #: More OAR job types (``exotic`` is added for exotic clusters).
    job_types: tuple[str, ...] = attrs.field(default=(), validator=_job_types)
    #: A kadeploy environment (``debian12-min``): a deploy job, nodes reinstalled, root
    #: over SSH. Unset: the nodes' standard environment, root through ``sudo-g5k``.
    env: str | None = attrs.field(default=None, validator=_name)
    #: The public key kadeploy installs for root (default: ~/.ssh/id_ed25519.pub, then
    #: id_rsa.pub).
    deploy_key: str | None = attrs.field(default=None, validator=_path)
    #: The Grid'5000 API.
    api_url: str = attrs.field(default=DEFAULT_API_URL, validator=http_url)
    #: python-grid5000's credentials file (``username``, ``password``); not needed on a
    #: frontend, where the API trusts the user.
    credentials_file: str = attrs.field(default=DEFAULT_CREDENTIALS_FILE, validator=_path)
    #: Your Grid'5000 login, for SSH (default: the credentials' username, else $USER).
    user: str | None = attrs.field(default=None, validator=_name)
    #: SSH jump host to the nodes from outside Grid'5000 (``"login@access.grid5000.fr"``);
    #: unset: direct (from a frontend or a node).
    gateway: str | None = attrs.field(default=None, validator=_gateway)
    #: OpenSSH client config read instead of ~/.ssh/config.
    ssh_config: str | None = attrs.field(default=None, validator=_path)
    #: Deadline for the job to start running (queue wait included).
    wait_timeout: Duration = attrs.field(default=Duration(3600), validator=positive)
    #: Kadeploy rounds, each on the nodes the previous one failed.
    deploy_attempts: int = attrs.field(default=3, validator=positive)
    #: Leave the job and k3s at release (``greenflow up`` does regardless; ``down`` ends
    #: both).
    keep: bool = False
    #: How k3s is installed on the nodes (greenflow-k3s' options: docs/k3s.md).
    k3s: K3sOptions = attrs.field(factory=K3sOptions)

    def __attrs_post_init__(self) -> None:
        if self.max_walltime is not None and walltime_seconds(self.max_walltime) < self.walltime_s:
            raise ValueError(
                f"max_walltime: below walltime ({self.max_walltime} < {self.walltime}); it is "
                "the most the job may be extended to"
            )

    @property
    def walltime_s(self) -> int:
        return walltime_seconds(self.walltime)

    @property
    def max_walltime_s(self) -> int | None:
        return walltime_seconds(self.max_walltime) if self.max_walltime is not None else None

    def name_for(self, experiment: str) -> str:
        """The OAR job name: ``job_name``, else ``greenflow-<experiment>`` made OAR-safe."""
        if self.job_name:
            return self.job_name
        return "greenflow-" + (re.sub(r"[^A-Za-z0-9_.-]+", "-", experiment).strip("-") or "run")
