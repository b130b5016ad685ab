"""An emulator of the Grid'5000 REST API, for tests that drive python-grid5000 against it.

A stdlib HTTP server on 127.0.0.1 that answers the calls the ``g5k`` platform makes through
python-grid5000 (``Grid5000(uri=emu.url, username=..., password=...)``)::

    sites = [Site("lyon", clusters=[Cluster("nova", nodes=4, wattmeter=True)])]
    with G5kEmulator(sites, clock=lambda: 1_780_000_000.0) as emu:
        gk = Grid5000(uri=emu.url, username="alice", password="s3cret")
        job = gk.sites["lyon"].jobs.create({...})

Emulated (SIMULATED, not Grid'5000):

- Reference API: ``/sites``, ``/sites/{s}``, ``/sites/{s}/clusters[/{c}]``,
  ``/sites/{s}/clusters/{c}/nodes[/{n}]``, built from :class:`Site` and :class:`Cluster`.
- OAR jobs: submit, get, list with filters, delete, walltime change (``/jobs/{id}/walltime``).
  A job's life is scripted (:class:`JobScript`): states advance with the client's GETs of
  the job and with the clock, never by themselves.
- Kadeploy deployments: create, get, list; per-node KO and whole-deployment errors on demand.
- Kwollect: ``/sites/{s}/metrics``, samples computed from a power callable.
- HTTP basic auth, failures on demand (:meth:`G5kEmulator.fail_next`), answers held
  after the API acted (:meth:`G5kEmulator.hold_next_answer`), a request log.

Not emulated: the OAR scheduler (nodes busy in another job refuse a submission instead of
queueing it; a waiting job starts when its script says so), OAR properties beyond
``cluster=`` and ``network_address``, kavlan/subnets (``resources_by_type`` has only
``cores``), disks, besteffort preemption, other users' jobs and the 403 for them,
deployment cancel, Kwollect's ``summary``, ``devices`` and ``prom_*`` metrics, the status,
vlan, storage and firewall APIs.

Confirmed from sources (g5k-api v3.11.13 ``grid5000/g5k-api``, OAR 2.5 ``oar-team/oar``,
reference repository ``grid5000/reference-repository`` of March 2026, python-grid5000
1.2.5, Kwollect outputs quoted in public code):

- Job JSON keys are those of g5k-api's ``OAR::Job#to_reservation`` plus, for a single job,
  ``resources_by_type`` and ``assigned_nodes``: there is no ``site`` and no
  ``reservation`` key (python-grid5000 takes ``job.site`` from the URL it used). A job
  list leaves ``assigned_nodes``/``resources_by_type`` out unless ``resources=yes``.
  Keys with a NULL value are left out (``name``, ``stopped_at``); ``started_at`` is 0
  before the start (OAR's column default) and ``scheduled_at`` absent without prediction.
  Nodes come from OAR's assignment or its prediction: ``assigned_nodes`` is ``[]`` (and
  ``resources_by_type`` ``{}``) until the job has a predicted start or has started, as in
  the answer to the POST. ``resources_by_type`` holds only the resource types the job has
  (no empty ``vlans``).
- States are OAR's, lower-cased: waiting, hold, launching, running, finishing, error,
  terminated (and OAR's transient ones). A killed job (DELETE or walltime reached) ends in
  ``error``; ``terminated`` is a command that exited by itself. A second DELETE, and a
  DELETE after the walltime kill, is refused: oardel's "Cannot frag N ; This job was
  already killed." comes back as a 400.
- DELETE answers 202 with an empty body; the walltime change (``POST .../walltime``)
  answers 202 with OAR's sentence as a raw body under ``Content-Type: application/json``
  (g5k-api renders the string as is), so python-grid5000's ``walltime_change.create``
  raises ``Grid5000ParsingError`` although the change was accepted. Refusals are 403
  (``Job N is not running``, ``... cannot increase by more than H:M:S``).
- Submission errors carry oarsub's output inside g5k-api's "Request to ... failed with
  status 400: {OAR error JSON}"; "There are not enough resources for your request"; "#
  Reservation not valid --> KO (This reservation could run at YYYY-MM-DD HH:MM:SS)" (Paris
  time); a reservation whose whole window has passed is "Reservation too old". The
  default walltime is 3600 s. Exotic clusters are filtered out unless the job has the
  ``exotic`` type. Reservations are ``YYYY-MM-DD hh:mm[:ss]`` in Europe/Paris time.
- Deployment JSON: ``uid`` ``D-<uuid>``, ``site_uid``, ``user_uid``, ``status``
  (processing, terminated, error), ``result[fqdn] = {macro, micro, state: OK|KO}``; a key
  given as text is stored and replaced by a URL under ``/sites/{s}/files/``.
- Reference: cluster ``exotic``, ``queues``, ``metrics[] {name, description, period,
  optional_period, source: {protocol[, id]}}`` (``labels``/``only_for`` only when set,
  never here); wattmetre 1000 ms (optional 20 ms), BMC 5000 ms; node ``processor
  {model: "Intel Xeon", version: "E5-2620 v4", ...}``, ``architecture {nb_procs,
  nb_cores, nb_threads}``, ``main_memory {ram_size}``. Nodes no longer have ``sensors`` or
  ``monitoring`` (removed in 2021); a wattmetre-equipped node names its port in
  ``pdu: [{"uid": "wattmetre1", "port": N}]``.
- Kwollect returns a bare JSON list of ``{timestamp, device_id, metric_id, value,
  labels}``, timestamps ISO 8601 with the Europe/Paris offset, ``device_id`` the short
  node name, wattmetre labels ``{"_device_orig": ["wattmetre1-portN"]}``, BMC labels ``{}``.

Assumed (not confirmed): error bodies are JSON ``{"code", "title", "message"}`` (g5k-api
sends the same message as text/plain; python-grid5000 yields the same ``str(error)``
either way, only ``error.response_body`` differs); the 401 body; 404 texts of the
reference API; the oarsub lines around the confirmed sentences and the internal OAR API
host in messages; the ``macro``/``micro`` of a KO node; the message of an unknown node in
a deployment; Kwollect's defaults (no ``start_time``: 5 min before ``end_time``; no
``end_time``: now; ``job_id``: the job's nodes from its start to its stop or now), its
inclusive window and its order (by time, node, metric); ``properties`` and ``directory``
of a job.

Simplified on purpose: Kwollect timestamps sit exactly on the period's grid (real ones
do not: ``...:37.003778+01:00``); a walltime change is granted at once (OAR grants it at
a later scheduling round); a job never leaves ``waiting`` before its ``scheduled_at``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import itertools
import json
import math
import re
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, NamedTuple, TypeVar, cast
from urllib.parse import parse_qsl, urlsplit
from zoneinfo import ZoneInfo

import attrs

#: Grid'5000 runs on Paris time: OAR reservations and Kwollect timestamps use it.
PARIS = ZoneInfo("Europe/Paris")
#: The API version the emulator serves, as the first path segment (``emu.url`` ends with it).
API_VERSION = "stable"
#: OAR's job states as the API spells them (lower-cased by g5k-api).
OAR_STATES = frozenset(
    {
        "waiting",
        "hold",
        "tolaunch",
        "toerror",
        "toackreservation",
        "launching",
        "running",
        "suspended",
        "resuming",
        "finishing",
        "terminated",
        "error",
    }
)
FINAL_STATES = frozenset({"terminated", "error"})
#: OAR's walltime when the request gives none (a Grid'5000 admission rule).
DEFAULT_WALLTIME_S = 3600

#: A JSON object as the API sends or receives it.
JsonObject = dict[str, Any]
#: ``power(node, unix_time) -> watts``: what a node draws, for the Kwollect samples.
PowerSource = Callable[[str, float], float]
#: A scripted job state held for a number of GETs of the job: ``("waiting", 2)``.
Step = tuple[str, int]

# Where g5k-api reaches OAR; it appears in the messages of refused submissions.
_OAR_API = "https://api-out.grid5000.fr/sites/{site}/internal/oarapi/jobs"
_WATTMETRE = "wattmetre_power_watt"
_BMC = "bmc_node_power_watt"


# --- configuration -------------------------------------------------------------------------


def _strings(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


@attrs.frozen
class Cluster:
    """A cluster of the reference API: ``nodes`` identical nodes ``{uid}-1`` … ``{uid}-N``.

    ``wattmeter`` gives it the ``wattmetre_power_watt`` metric (and its nodes a wattmetre
    port), ``bmc`` the ``bmc_node_power_watt`` metric. ``cores`` counts all cores of a node
    (``architecture.nb_cores``); OAR has one resource per core. ``queues`` are the OAR
    queues whose jobs may use it ("production" clusters have ``("production", "admin")``).
    """

    uid: str
    nodes: int = 4
    wattmeter: bool = False
    bmc: bool = True
    exotic: bool = False
    queues: tuple[str, ...] = attrs.field(default=("default", "admin"), converter=_strings)
    model: str = "Dell PowerEdge R430"
    cpu_model: str = "Intel Xeon"
    cpu_version: str = "E5-2620 v4"
    cpus: int = 2
    cores: int = 16
    threads_per_core: int = 2
    clock_hz: int = 2_100_000_000
    memory_bytes: int = 64 * 2**30
    wattmetre_period_ms: int = 1000
    bmc_period_ms: int = 5000

    def node_uids(self) -> list[str]:
        return [f"{self.uid}-{index}" for index in range(1, self.nodes + 1)]

    def metric_periods(self) -> dict[str, int]:
        """The power metrics this cluster has, with their period in milliseconds."""
        periods = {}
        if self.wattmeter:
            periods[_WATTMETRE] = self.wattmetre_period_ms
        if self.bmc:
            periods[_BMC] = self.bmc_period_ms
        return periods


def _clusters(value: Iterable[Cluster]) -> tuple[Cluster, ...]:
    return tuple(value)


@attrs.frozen
class Site:
    """A Grid'5000 site and its clusters; node FQDNs are ``{node}.{site}.grid5000.fr``."""

    uid: str
    clusters: tuple[Cluster, ...] = attrs.field(converter=_clusters)


def _steps(value: Iterable[Step | str]) -> tuple[Step | str, ...]:
    return tuple(value)


def _check_steps(_: object, __: object, steps: tuple[Step | str, ...]) -> None:
    *held, final = steps if steps else ("",)
    if not isinstance(final, str) or final not in OAR_STATES:
        raise ValueError(f"a job script ends with a bare final OAR state, not {final!r}")
    for step in held:
        if isinstance(step, str) or step[0] not in OAR_STATES or step[1] < 1:
            raise ValueError(f"a job script step is (OAR state, GETs >= 1), not {step!r}")


@attrs.frozen
class JobScript:
    """How one submitted job lives.

    ``states``: ``(state, n)`` steps, each shown to ``n`` GETs of the job, then a bare final
    state kept until the job is killed: ``(("waiting", 2), ("launching", 1), "running")``
    shows waiting to two GETs, launching to one, then running. The answer to the POST shows
    the first state without counting. A final ``"error"`` or ``"terminated"`` is a job that
    fails or ends by itself; ``"hold"`` and ``"waiting"`` may be steps or final.

    ``scheduled_at`` (Unix s): OAR's predicted start, shown while the job waits; a job does
    not leave ``waiting`` before it, whatever its GETs (an advance reservation's start does
    the same when this is None). ``could_run_at`` (Unix s): refuse the submission, with or
    without a reservation in it, as OAR refuses an advance reservation it cannot place
    ("This reservation could run at ...").
    ``walltime_max_increase`` (s): walltime changes beyond it are refused (None: OAR's
    "UNLIMITED"). ``finishing_polls``: GETs that show ``finishing`` after a running job
    is killed, before ``error``.
    """

    states: tuple[Step | str, ...] = attrs.field(
        default=(("waiting", 1), ("launching", 1), "running"),
        converter=_steps,
        validator=_check_steps,
    )
    scheduled_at: int | None = None
    could_run_at: int | None = None
    walltime_max_increase: int | None = None
    finishing_polls: int = 0


class RecordedRequest(NamedTuple):
    """A request as the emulator received it; ``path`` is relative to ``emu.url``. The
    Authorization header is never recorded."""

    method: str
    path: str
    query: dict[str, str]
    body: Any


def _constant_power(node: str, unix_time: float) -> float:
    return 100.0


# --- errors and responses ------------------------------------------------------------------


class _ApiError(Exception):
    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


@attrs.frozen
class _Response:
    status: HTTPStatus
    body: bytes = b""
    content_type: str = "application/json"
    headers: Mapping[str, str] = attrs.field(factory=dict)


def _json_response(
    status: HTTPStatus, content: object, headers: Mapping[str, str] | None = None
) -> _Response:
    return _Response(status, json.dumps(content).encode(), headers=headers or {})


def _error_response(status: HTTPStatus, message: str) -> _Response:
    headers = {"WWW-Authenticate": 'Basic realm="Grid5000"'} if status == 401 else {}
    content = {"code": int(status), "title": status.phrase, "message": message}
    return _json_response(status, content, headers)


def _not_enough_resources(site: str, filtered_exotic: Iterable[str]) -> _ApiError:
    exotic = sorted(filtered_exotic)
    lines = [f"# Filtering out exotic resources ({', '.join(exotic)})."] if exotic else []
    lines += [
        "There are not enough resources for your request",
        "OAR_JOB_ID=-5",
        "# Error: please verify your job submission syntax.",
    ]
    return _oarsub_refusal(site, lines)


def _reservation_refusal(site: str, job_uid: int, reason: str) -> _ApiError:
    lines = [
        f"OAR_JOB_ID={job_uid}",
        "# Advance reservation request: waiting for validation...",
        f"# Reservation not valid --> KO ({reason})",
    ]
    return _oarsub_refusal(site, lines)


def _oarsub_refusal(site: str, oarsub_lines: list[str]) -> _ApiError:
    """A failed oarsub, as the OAR API reports it and g5k-api wraps it."""
    oar_error = {"code": 400, "message": "\n".join(oarsub_lines) + "\n", "title": "Bad query"}
    return _ApiError(
        HTTPStatus.BAD_REQUEST,
        f"Request to {_OAR_API.format(site=site)}.json failed with status 400: "
        + json.dumps(oar_error),
    )


# --- OAR request parsing -------------------------------------------------------------------


@attrs.frozen
class _ResourceGroup:
    """One ``{criteria}/nodes=N`` term of an OAR resource request."""

    count: int
    cluster: str | None
    addresses: tuple[str, ...]


_WALLTIME_SUFFIX = re.compile(r",\s*walltime\s*=\s*(?P<walltime>[0-9:]+)\s*$")
_GROUP = re.compile(r"^\s*(?:\{(?P<criteria>.*)\}\s*/)?\s*(?:nodes|host)\s*=\s*(?P<count>\d+)\s*$")
_CLUSTER = re.compile(r"cluster\s*=\s*'(?P<cluster>[^']+)'")
_ADDRESS_LIST = re.compile(r"network_address\s+in\s*\((?P<addresses>[^)]*)\)")
_ADDRESS = re.compile(r"network_address\s*=\s*'(?P<address>[^']+)'")
_RESERVATION = re.compile(
    r"^\s*(\d{4}-\d{1,2}-\d{1,2})\s+(\d{1,2})(?::(\d{1,2})(?::(\d{1,2}))?)?\s*$"
)
_WALLTIME_CHANGE = re.compile(r"^([-+]?)(\d+)(?::(\d+)(?::(\d+))?)?$")


def _parse_oar_resources(request: str) -> tuple[list[_ResourceGroup], int]:
    """The groups and walltime (seconds) of an OAR ``resources`` string, as EnOSlib writes
    it: ``{cluster='nova'}/nodes=2+{network_address in ('nova-4.lyon.grid5000.fr')}/nodes=1,
    walltime=01:00:00``. Raises :class:`ValueError` on anything else."""
    walltime = DEFAULT_WALLTIME_S
    if suffix := _WALLTIME_SUFFIX.search(request):
        walltime = _hms_seconds(suffix["walltime"])
        request = request[: suffix.start()]
    return [_parse_group(term) for term in _split_top_level(request, "+")], walltime


def _parse_group(term: str) -> _ResourceGroup:
    match = _GROUP.match(term)
    if match is None:
        raise ValueError(f"bad resource request {term!r}")
    criteria = match["criteria"] or ""
    cluster = _CLUSTER.search(criteria)
    addresses = [address["address"] for address in _ADDRESS.finditer(criteria)]
    for listed in _ADDRESS_LIST.finditer(criteria):
        addresses += re.findall(r"'([^']+)'", listed["addresses"])
    return _ResourceGroup(
        int(match["count"]), cluster["cluster"] if cluster else None, tuple(addresses)
    )


def _split_top_level(text: str, separator: str) -> list[str]:
    """Split on ``separator`` outside braces and parentheses."""
    parts: list[str] = []
    depth = start = 0
    for index, char in enumerate(text):
        depth += (char in "{(") - (char in "})")
        if char == separator and depth == 0:
            parts.append(text[start:index])
            start = index + 1
    return [*parts, text[start:]]


def _hms_seconds(text: str) -> int:
    """OAR's ``H[:M[:S]]`` as seconds."""
    fields = [int(part) for part in text.split(":")] + [0, 0]
    hours, minutes, seconds = fields[:3]
    return hours * 3600 + minutes * 60 + seconds


def _sql_duration(seconds: int, signed: bool = False) -> str:
    """OAR's ``H:M:S`` without padding (``1:0:0``), ``+``/``-`` in front if ``signed``."""
    sign = ("-" if seconds < 0 else "+") if signed and seconds else ""
    hours, rest = divmod(abs(seconds), 3600)
    return f"{sign}{hours}:{rest // 60}:{rest % 60}"


def _paris_time(unix_time: float) -> str:
    return datetime.fromtimestamp(unix_time, PARIS).strftime("%Y-%m-%d %H:%M:%S")


def _parse_reservation(value: object, now: int) -> int:
    """A reservation start (``YYYY-MM-DD hh[:mm[:ss]]`` in Paris time, or ``now``) as Unix
    seconds; an end after a comma is ignored."""
    invalid = "The job you are trying to submit is not valid: "
    if not isinstance(value, str):
        raise _ApiError(HTTPStatus.BAD_REQUEST, invalid + "`reservation` should be a String.")
    start_text = value.split(",")[0]
    if start_text.strip() == "now":
        return now
    match = _RESERVATION.match(start_text)
    if match is None:
        raise _ApiError(
            HTTPStatus.BAD_REQUEST,
            invalid + "Syntax error in reservation start date, should at least match the "
            "format: 'YYYY-MM-DD hh:mm:ss'. Please see documentation for available date "
            "syntaxes.",
        )
    day, hours, minutes, seconds = match.groups()
    start = datetime.strptime(
        f"{day} {hours}:{minutes or 0}:{seconds or 0}", "%Y-%m-%d %H:%M:%S"
    ).replace(tzinfo=PARIS)
    return int(start.timestamp())


@attrs.frozen
class _Submission:
    """What a job submission asks for, checked as g5k-api and oarsub check it."""

    groups: tuple[_ResourceGroup, ...]
    walltime: int
    reservation: int | None
    types: tuple[str, ...]
    queue: str
    name: str | None
    project: str
    command: str

    @classmethod
    def parse(cls, site: str, body: object, now: int) -> _Submission:
        invalid = "The job you are trying to submit is not valid: "
        if not isinstance(body, dict):
            raise _ApiError(HTTPStatus.BAD_REQUEST, invalid + "a JSON object is expected")
        reservation = (
            _parse_reservation(body["reservation"], now) if "reservation" in body else None
        )
        if reservation is None and not body.get("command"):
            raise _ApiError(
                HTTPStatus.BAD_REQUEST, invalid + "you must give a :command to execute on launch"
            )
        try:
            groups, walltime = _parse_oar_resources(str(body.get("resources", "nodes=1")))
        except ValueError as error:
            raise _oarsub_refusal(site, [f"Bad resource request ({error})"]) from error
        types = body.get("types") or []
        return cls(
            groups=tuple(groups),
            walltime=walltime,
            reservation=reservation,
            types=(types,) if isinstance(types, str) else tuple(types),
            queue=str(body.get("queue") or "default"),
            name=body.get("name"),
            project=str(body.get("project") or ""),
            command=str(body.get("command") or ""),
        )


# --- emulated state ------------------------------------------------------------------------


@attrs.define
class _Job:
    """An OAR job and where its script has got to."""

    uid: int
    site: str
    user: str
    name: str | None
    types: list[str]
    queue: str
    project: str
    command: str
    walltime: int
    submitted_at: int
    nodes: list[str]
    cores: list[str]
    script: JobScript
    scheduled_at: int | None
    event_ids: Iterator[int]
    steps: list[Step | str]
    message: str = ""
    step_index: int = 0
    polls_in_step: int = 0
    started_at: int = 0
    stopped_at: int | None = None
    fragged: bool = False
    walltime_granted: int = 0
    events: list[JsonObject] = attrs.Factory(list)

    @property
    def state(self) -> str:
        step = self.steps[self.step_index]
        return step if isinstance(step, str) else step[0]

    @property
    def holds_nodes(self) -> bool:
        return self.state not in FINAL_STATES

    def settle(self, now: int) -> None:
        """Apply what the clock and the GETs so far have made happen."""
        while self._may_leave_step(now):
            self._enter_step(self.step_index + 1, now)
        if self.state == "running" and now > self.started_at + self.walltime:
            self.add_event(
                "WALLTIME",
                f"Job [{self.uid}] reached its walltime (start: {self.started_at} + "
                f"walltime:{self.walltime} > current time: {now})",
                now,
            )
            self.frag(self.started_at + self.walltime)

    def poll(self, now: int) -> None:
        """Count one GET of the job, after its answer was built."""
        self.polls_in_step += 1
        self.settle(now)

    def frag(self, now: int) -> None:
        """Kill the job as oardel or the walltime does: finishing (if scripted), then error."""
        self.fragged = True
        if self.state in FINAL_STATES:
            return
        finishing = self.script.finishing_polls if self.started_at else 0
        self.steps = [("finishing", finishing), "error"] if finishing else ["error"]
        self._enter_step(0, now)
        self.add_event(
            "SWITCH_INTO_ERROR_STATE", f"[bipbip {self.uid}] Ask to change the job state", now
        )

    def add_event(self, kind: str, description: str, now: int) -> None:
        self.events.append(
            {
                "uid": next(self.event_ids),
                "created_at": now,
                "type": kind,
                "description": description,
            }
        )

    def _may_leave_step(self, now: int) -> bool:
        step = self.steps[self.step_index]
        if isinstance(step, str) or self.polls_in_step < step[1]:
            return False
        return step[0] != "waiting" or self.scheduled_at is None or now >= self.scheduled_at

    def _enter_step(self, index: int, now: int) -> None:
        self.step_index, self.polls_in_step = index, 0
        if self.state in ("launching", "running") and not self.started_at:
            self.started_at = now
        if self.state in FINAL_STATES and self.stopped_at is None:
            self.stopped_at = max(now, self.started_at)

    def to_json(self, links: list[JsonObject], with_resources: bool) -> JsonObject:
        data: JsonObject = {
            "uid": self.uid,
            "user_uid": self.user,
            "user": self.user,
            "walltime": self.walltime,
            "queue": self.queue,
            "state": self.state,
            "project": self.project,
            "name": self.name,
            "types": list(self.types),
            "mode": "PASSIVE",
            "command": self.command,
            "submitted_at": self.submitted_at,
            "scheduled_at": self.started_at or self.scheduled_at,
            "started_at": self.started_at,
            "stopped_at": self.stopped_at,
            "message": self.message,
            "properties": "maintenance = 'NO'",
            "directory": f"/home/{self.user}",
            "events": list(self.events),
            "links": links,
        }
        if with_resources:
            placed = bool(self.started_at or self.scheduled_at)
            data["resources_by_type"] = {"cores": list(self.cores)} if placed else {}
            data["assigned_nodes"] = list(self.nodes) if placed else []
        return {key: value for key, value in data.items() if value is not None}


@attrs.define
class _Deployment:
    uid: str
    site: str
    user: str
    environment: str
    nodes: list[str]
    extra: JsonObject
    created_at: int
    polls_left: int
    ko_nodes: frozenset[str]
    error_output: str | None
    status: str = "processing"
    updated_at: int = 0
    result: dict[str, JsonObject] | None = None

    def poll(self, now: int) -> None:
        """Count one GET; the deployment ends at the GET after its last processing one."""
        if self.status != "processing":
            return
        if self.polls_left > 0:
            self.polls_left -= 1
            return
        self.updated_at = now
        if self.error_output is not None:
            self.status = "error"
            return
        self.status = "terminated"
        self.result = {node: self._node_result(node) for node in self.nodes}

    def _node_result(self, node: str) -> JsonObject:
        if node in self.ko_nodes:
            return {"macro": "BootNewEnvKexec", "micro": "wait_reboot", "state": "KO"}
        return {"macro": None, "micro": None, "state": "OK"}

    def to_json(self, links: list[JsonObject]) -> JsonObject:
        data: JsonObject = {
            "uid": self.uid,
            "site_uid": self.site,
            "user_uid": self.user,
            "environment": self.environment,
            "status": self.status,
            "nodes": list(self.nodes),
            "result": self.result,
            "output": self.error_output if self.status == "error" else None,
            "created_at": self.created_at,
            "updated_at": self.updated_at or self.created_at,
            "disable_disk_partitioning": False,
            "disable_bootloader_install": False,
            "ignore_nodes_deploying": False,
            **self.extra,
            "links": links,
        }
        return {key: value for key, value in data.items() if value is not None}


@attrs.frozen
class _Gap:
    node: str
    start: float
    end: float


@attrs.frozen
class _InjectedFailure:
    method: str
    path: re.Pattern[str]
    status: HTTPStatus


@attrs.frozen
class _HeldAnswer:
    method: str
    path: re.Pattern[str]
    seconds: float


_Queued = TypeVar("_Queued", _InjectedFailure, _HeldAnswer)


def _take(queue: list[_Queued], method: str, path: str) -> _Queued | None:
    """The first of ``queue`` meant for this request (method, path regex), taken out."""
    for item in queue:
        if item.method == method and item.path.search(path):
            queue.remove(item)
            return item
    return None


def _api_path(target: str) -> str | None:
    """A request target's path under the API root (``/sites/lyon/jobs``); None outside it."""
    path = urlsplit(target).path
    prefix = f"/{API_VERSION}"
    if path != prefix and not path.startswith(prefix + "/"):
        return None
    return path[len(prefix) :].rstrip("/") or "/"


@attrs.frozen
class _Request:
    """A routed request: path parameters, query, JSON body, authenticated user, clock."""

    params: dict[str, str]
    query: dict[str, str]
    body: Any
    user: str
    now: float


_Handler = Callable[[_Request], _Response]


# --- the emulator --------------------------------------------------------------------------


class G5kEmulator:
    """The Grid'5000 API for ``sites``, served on 127.0.0.1 while started (a context manager,
    or :meth:`start`/:meth:`stop` from a fixture). Thread-safe: every request and every
    method runs under one lock.

    ``username``/``password``: the only credentials accepted (HTTP basic auth); jobs and
    deployments belong to that user. ``clock``: Unix time, ``time.time`` by default;
    :meth:`advance` moves the emulator's time on from it. ``power``: the Kwollect values
    (an exception in it, as any emulator bug, answers 500: python-grid5000 retries a GET
    for about 9 s, then raises ``requests.exceptions.RetryError``); ``kwollect_delay`` (s):
    samples become visible that long after their timestamp.
    ``job_script``: the script of jobs not given one with :meth:`script_next_job`.
    ``deployment_polls``: GETs that see a deployment ``processing`` before it ends.
    """

    def __init__(
        self,
        sites: Iterable[Site],
        *,
        username: str = "alice",
        password: str = "s3cret",
        clock: Callable[[], float] = time.time,
        power: PowerSource = _constant_power,
        kwollect_delay: float = 0.0,
        job_script: JobScript | None = None,
        deployment_polls: int = 1,
    ) -> None:
        self.sites = {site.uid: site for site in sites}
        self._username, self._password = username, password
        self._clock, self._offset = clock, 0.0
        self._power, self._kwollect_delay = power, kwollect_delay
        self._default_script = job_script or JobScript()
        self._deployment_polls = deployment_polls
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._jobs: dict[int, _Job] = {}
        self._job_ids = itertools.count(1)
        self._event_ids = itertools.count(1)
        self._deployments: dict[str, _Deployment] = {}
        self._deployment_ids = itertools.count(1)
        self._scripts: list[JobScript] = []
        self._failures: list[_InjectedFailure] = []
        self._holds: list[_HeldAnswer] = []
        self._deploy_ko: dict[str, int] = {}
        self._failing_deployments: list[str] = []
        self._gaps: list[_Gap] = []
        self._requests: list[RecordedRequest] = []
        self._node_cluster = {
            node: cluster
            for site in self.sites.values()
            for cluster in site.clusters
            for node in cluster.node_uids()
        }
        self._wattmetre_ports = self._assign_wattmetre_ports()
        self._routes = self._build_routes()

    # --- lifecycle ---

    def start(self) -> G5kEmulator:
        server = _Server(("127.0.0.1", 0), _RequestHandler)
        server.emulator = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="g5k-emulator"
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None or self._thread is None:
            return
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
        self._server = self._thread = None

    def __enter__(self) -> G5kEmulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The API root to give python-grid5000 as ``uri``: ``http://127.0.0.1:PORT/stable``."""
        if self._server is None:
            raise RuntimeError("the emulator is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/{API_VERSION}"

    # --- test controls ---

    def now(self) -> float:
        """The emulator's Unix time: the clock plus what :meth:`advance` added."""
        return self._clock() + self._offset

    def advance(self, seconds: float) -> None:
        """Move the emulator's time on (walltimes, scheduled starts, Kwollect's "now")."""
        with self._lock:
            self._offset += seconds

    def script_next_job(self, script: JobScript) -> None:
        """The next submission that gets a job id lives by ``script`` (first in, first used).
        A submission refused for lack of nodes gets none; OAR numbers refused reservations."""
        with self._lock:
            self._scripts.append(script)

    def fail_next(self, method: str, path_regex: str, status: int = 500, times: int = 1) -> None:
        """Answer the next ``times`` requests whose method is ``method`` and whose path
        (relative to :attr:`url`) matches ``path_regex`` (``re.search``) with ``status``.
        python-grid5000 retries GET/DELETE/PUT on 500, 502 and 504 (5 times), never POST."""
        failure = _InjectedFailure(method.upper(), re.compile(path_regex), HTTPStatus(status))
        with self._lock:
            self._failures.extend([failure] * times)

    def hold_next_answer(self, method: str, path_regex: str, seconds: float) -> None:
        """Carry out the next ``method`` request whose path matches ``path_regex`` at once,
        then hold its answer for ``seconds``: a slow network, or a client cut off (Ctrl-C, a
        dropped connection) after the API acted and before it heard so."""
        hold = _HeldAnswer(method.upper(), re.compile(path_regex), seconds)
        with self._lock:
            self._holds.append(hold)

    def deploy_ko(self, failures: Mapping[str, int]) -> None:
        """Make nodes (FQDN) come out KO from their next ``n`` deployments."""
        with self._lock:
            for node, count in failures.items():
                self._deploy_ko[node] = self._deploy_ko.get(node, 0) + count

    def fail_next_deployment(self, output: str = "Deployment failed: the workflow aborted") -> None:
        """The next deployment ends in ``error`` with ``output`` as its message."""
        with self._lock:
            self._failing_deployments.append(output)

    def add_gap(self, node: str, start: float, end: float) -> None:
        """Kwollect has no sample of ``node`` (short name) in ``[start, end)``."""
        with self._lock:
            self._gaps.append(_Gap(node, start, end))

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, in order (a copy)."""
        with self._lock:
            return list(self._requests)

    def peek_job(self, uid: int) -> JsonObject:
        """A job as GET would show it, without counting as one of its GETs."""
        with self._lock:
            job = self._jobs[uid]
            job.settle(int(self.now()))
            return job.to_json(self._job_links(job), with_resources=True)

    # --- HTTP dispatch (called by the request handler) ---

    def handle(self, method: str, target: str, authorization: str | None, raw: bytes) -> _Response:
        with self._lock:
            held = _take(self._holds, method, _api_path(target) or "")
            try:
                response = self._handle(method, target, authorization, raw)
            except _ApiError as error:
                response = _error_response(error.status, error.message)
            except Exception as error:  # a bug here or in a test's power callable: say so
                response = _error_response(
                    HTTPStatus.INTERNAL_SERVER_ERROR, f"Emulator error: {error!r}"
                )
        if held is not None:
            time.sleep(held.seconds)  # outside the lock: other requests are answered meanwhile
        return response

    def _handle(self, method: str, target: str, authorization: str | None, raw: bytes) -> _Response:
        split = urlsplit(target)
        path = _api_path(target)
        if path is None:
            raise _ApiError(HTTPStatus.NOT_FOUND, f"No API at {split.path}")
        query = dict(parse_qsl(split.query))
        body = _parse_body(raw)
        self._requests.append(RecordedRequest(method, path, query, body))
        if failure := _take(self._failures, method, path):
            return _error_response(failure.status, f"Injected failure ({failure.status.phrase})")
        user = self._authenticate(authorization)
        handler, params = self._route(method, path)
        return handler(_Request(params, query, body, user, self.now()))

    def _authenticate(self, authorization: str | None) -> str:
        scheme, _, encoded = (authorization or "").partition(" ")
        try:
            username, _, password = base64.b64decode(encoded).decode("latin-1").partition(":")
        except (binascii.Error, ValueError):
            username = password = ""
        valid = hmac.compare_digest(username.encode(), self._username.encode()) and (
            hmac.compare_digest(password.encode(), self._password.encode())
        )
        if scheme.lower() != "basic" or not valid:
            raise _ApiError(HTTPStatus.UNAUTHORIZED, "Authorization Required")
        return username

    def _route(self, method: str, path: str) -> tuple[_Handler, dict[str, str]]:
        allowed = []
        for route_method, pattern, handler in self._routes:
            if match := pattern.fullmatch(path):
                if route_method == method:
                    return handler, match.groupdict()
                allowed.append(route_method)
        if allowed:
            raise _ApiError(HTTPStatus.METHOD_NOT_ALLOWED, "Method Not Allowed")
        raise _ApiError(HTTPStatus.NOT_FOUND, f"Cannot find resource {path}")

    def _build_routes(self) -> list[tuple[str, re.Pattern[str], _Handler]]:
        site = r"/sites/(?P<site>[^/]+)"
        cluster = site + r"/clusters/(?P<cluster>[^/]+)"
        job = site + r"/jobs/(?P<job>[^/]+)"
        deployment = site + r"/deployments/(?P<deployment>[^/]+)"
        routes: list[tuple[str, str, _Handler]] = [
            ("GET", "/sites", self._get_sites),
            ("GET", site, self._get_site),
            ("GET", site + "/clusters", self._get_clusters),
            ("GET", cluster, self._get_cluster),
            ("GET", cluster + "/nodes", self._get_nodes),
            ("GET", cluster + r"/nodes/(?P<node>[^/]+)", self._get_node),
            ("GET", site + "/jobs", self._list_jobs),
            ("POST", site + "/jobs", self._submit_job),
            ("GET", job, self._get_job),
            ("DELETE", job, self._delete_job),
            ("GET", job + "/walltime", self._get_walltime),
            ("POST", job + "/walltime", self._change_walltime),
            ("GET", site + "/deployments", self._list_deployments),
            ("POST", site + "/deployments", self._create_deployment),
            ("GET", deployment, self._get_deployment),
            ("GET", site + "/metrics", self._get_metrics),
        ]
        return [(method, re.compile(regex), handler) for method, regex, handler in routes]

    # --- links and lookups ---

    def _links(self, path: str, parent: str, collection: bool = False) -> list[JsonObject]:
        kind = "collection" if collection else "item"
        return [
            {
                "rel": "self",
                "href": f"/{API_VERSION}{path}",
                "type": f"application/vnd.grid5000.{kind}+json",
            },
            {
                "rel": "parent",
                "href": f"/{API_VERSION}{parent}",
                "type": "application/vnd.grid5000.item+json",
            },
        ]

    def _collection(self, items: list[JsonObject], path: str, parent: str) -> JsonObject:
        return {
            "total": len(items),
            "offset": 0,
            "items": items,
            "links": self._links(path, parent, True),
        }

    def _site(self, uid: str) -> Site:
        if uid not in self.sites:
            raise _ApiError(HTTPStatus.NOT_FOUND, f"Cannot find resource /sites/{uid}")
        return self.sites[uid]

    def _cluster(self, site_uid: str, uid: str) -> Cluster:
        for cluster in self._site(site_uid).clusters:
            if cluster.uid == uid:
                return cluster
        raise _ApiError(
            HTTPStatus.NOT_FOUND, f"Cannot find resource /sites/{site_uid}/clusters/{uid}"
        )

    def _assign_wattmetre_ports(self) -> dict[str, int]:
        """Each wattmetre-equipped node of a site on its own port of ``wattmetre1``."""
        ports = {}
        for site in self.sites.values():
            nodes = [n for c in site.clusters if c.wattmeter for n in c.node_uids()]
            ports.update({node: port for port, node in enumerate(nodes, start=1)})
        return ports

    # --- reference API ---

    def _site_json(self, site: Site) -> JsonObject:
        return {
            "uid": site.uid,
            "type": "site",
            "name": site.uid.capitalize(),
            "description": f"Grid'5000 {site.uid.capitalize()} site (emulated)",
            "links": self._links(f"/sites/{site.uid}", "/sites"),
        }

    def _cluster_json(self, site: str, cluster: Cluster) -> JsonObject:
        return {
            "uid": cluster.uid,
            "type": "cluster",
            "model": cluster.model,
            "exotic": cluster.exotic,
            "queues": list(cluster.queues),
            "nodes_count": cluster.nodes,
            "metrics": [
                _metric_description(name, period)
                for name, period in cluster.metric_periods().items()
            ],
            "links": self._links(f"/sites/{site}/clusters/{cluster.uid}", f"/sites/{site}"),
        }

    def _node_json(self, site: str, cluster: Cluster, node: str) -> JsonObject:
        data: JsonObject = {
            "uid": node,
            "type": "node",
            "nodeset": cluster.uid,
            "exotic": cluster.exotic,
            "processor": {
                "vendor": cluster.cpu_model.split()[0],
                "model": cluster.cpu_model,
                "version": cluster.cpu_version,
                "other_description": f"{cluster.cpu_model} {cluster.cpu_version}",
                "clock_speed": cluster.clock_hz,
                "ht_capable": cluster.threads_per_core > 1,
                "instruction_set": "x86-64",
            },
            "architecture": {
                "nb_procs": cluster.cpus,
                "nb_cores": cluster.cores,
                "nb_threads": cluster.cores * cluster.threads_per_core,
                "platform_type": "x86_64",
            },
            "main_memory": {"ram_size": cluster.memory_bytes},
            "network_adapters": [
                {
                    "device": "eth0",
                    "interface": "Ethernet",
                    "mounted": True,
                    "management": False,
                    "network_address": _fqdn(node, site),
                }
            ],
            "supported_job_types": {
                "besteffort": True,
                "deploy": True,
                "max_walltime": 0,
                "queues": list(cluster.queues),
            },
            "links": self._links(
                f"/sites/{site}/clusters/{cluster.uid}/nodes/{node}",
                f"/sites/{site}/clusters/{cluster.uid}",
            ),
        }
        if node in self._wattmetre_ports:
            data["pdu"] = [{"uid": "wattmetre1", "port": self._wattmetre_ports[node]}]
        return data

    def _get_sites(self, request: _Request) -> _Response:
        items = [self._site_json(site) for site in self.sites.values()]
        return _json_response(HTTPStatus.OK, self._collection(items, "/sites", "/"))

    def _get_site(self, request: _Request) -> _Response:
        return _json_response(HTTPStatus.OK, self._site_json(self._site(request.params["site"])))

    def _get_clusters(self, request: _Request) -> _Response:
        site = self._site(request.params["site"])
        items = [self._cluster_json(site.uid, cluster) for cluster in site.clusters]
        path = f"/sites/{site.uid}"
        return _json_response(HTTPStatus.OK, self._collection(items, path + "/clusters", path))

    def _get_cluster(self, request: _Request) -> _Response:
        site, uid = request.params["site"], request.params["cluster"]
        return _json_response(HTTPStatus.OK, self._cluster_json(site, self._cluster(site, uid)))

    def _get_nodes(self, request: _Request) -> _Response:
        site = request.params["site"]
        cluster = self._cluster(site, request.params["cluster"])
        items = [self._node_json(site, cluster, node) for node in cluster.node_uids()]
        path = f"/sites/{site}/clusters/{cluster.uid}"
        return _json_response(HTTPStatus.OK, self._collection(items, path + "/nodes", path))

    def _get_node(self, request: _Request) -> _Response:
        site, node = request.params["site"], request.params["node"]
        cluster = self._cluster(site, request.params["cluster"])
        if node not in cluster.node_uids():
            raise _ApiError(
                HTTPStatus.NOT_FOUND,
                f"Cannot find resource /sites/{site}/clusters/{cluster.uid}/nodes/{node}",
            )
        return _json_response(HTTPStatus.OK, self._node_json(site, cluster, node))

    # --- OAR jobs ---

    def _job_links(self, job: _Job) -> list[JsonObject]:
        return self._links(f"/sites/{job.site}/jobs/{job.uid}", f"/sites/{job.site}")

    def _job(self, request: _Request) -> _Job:
        site, text = self._site(request.params["site"]).uid, request.params["job"]
        job = self._jobs.get(int(text)) if text.isdigit() else None
        if job is None or job.site != site:
            raise _ApiError(HTTPStatus.NOT_FOUND, f"Couldn't find OAR::Job with 'job_id'={text}")
        job.settle(int(request.now))
        return job

    def _get_job(self, request: _Request) -> _Response:
        job = self._job(request)
        response = _json_response(
            HTTPStatus.OK, job.to_json(self._job_links(job), with_resources=True)
        )
        job.poll(int(request.now))
        return response

    def _list_jobs(self, request: _Request) -> _Response:
        site, query = self._site(request.params["site"]).uid, request.query
        jobs = []
        for job in sorted(self._jobs.values(), key=lambda j: -j.uid):  # newest first
            job.settle(int(request.now))
            if job.site == site and _job_matches(job, query):
                jobs.append(job)
        offset, limit = max(int(query.get("offset", 0)), 0), min(int(query.get("limit", 50)), 500)
        with_resources = query.get("resources", "no") != "no"
        items = [
            job.to_json(self._job_links(job), with_resources)
            for job in jobs[offset : offset + limit]
        ]
        path = f"/sites/{site}"
        return _json_response(
            HTTPStatus.OK,
            {
                "total": len(jobs),
                "offset": offset,
                "items": items,
                "links": self._links(path + "/jobs", path, True),
            },
        )

    def _submit_job(self, request: _Request) -> _Response:
        site, now = self._site(request.params["site"]), int(request.now)
        wanted = _Submission.parse(site.uid, request.body, now)
        nodes = self._assign_nodes(site, wanted.groups, wanted.types, wanted.queue, now)
        script = self._scripts.pop(0) if self._scripts else self._default_script
        job = _Job(
            uid=next(self._job_ids),
            site=site.uid,
            user=request.user,
            name=wanted.name,
            types=list(wanted.types),
            queue=wanted.queue,
            project=wanted.project,
            command=wanted.command,
            walltime=wanted.walltime,
            submitted_at=now,
            nodes=[_fqdn(node, site.uid) for node in nodes],
            cores=[
                f"{_fqdn(n, site.uid)}/{core}"
                for n in nodes
                for core in range(self._node_cluster[n].cores)
            ],
            script=script,
            scheduled_at=script.scheduled_at
            or (wanted.reservation and max(wanted.reservation, now)),
            event_ids=self._event_ids,
            steps=list(script.states),
        )
        # A script that starts launching or running starts the job now (started_at).
        job._enter_step(0, now)
        self._jobs[job.uid] = job
        self._refuse_reservation(job, wanted.reservation, now)
        location = {"Location": f"{self.url}/sites/{site.uid}/jobs/{job.uid}"}
        return _json_response(
            HTTPStatus.CREATED, job.to_json(self._job_links(job), with_resources=True), location
        )

    def _refuse_reservation(self, job: _Job, reservation: int | None, now: int) -> None:
        """OAR creates a refused advance reservation, puts it in error and says why."""
        if reservation is not None and now >= reservation + job.walltime:
            job.message = "Reservation too old"
        elif job.script.could_run_at is not None:
            job.message = f"This reservation could run at {_paris_time(job.script.could_run_at)}"
        else:
            return
        job.steps, job.scheduled_at = ["error"], None
        job.stopped_at = now
        raise _reservation_refusal(job.site, job.uid, job.message)

    def _assign_nodes(
        self,
        site: Site,
        groups: tuple[_ResourceGroup, ...],
        types: tuple[str, ...],
        queue: str,
        now: int,
    ) -> list[str]:
        """The free nodes of each group, lowest first; OAR's refusal if a group cannot have them."""
        busy: set[str] = set()
        for job in self._jobs.values():
            job.settle(now)
            if job.site == site.uid and job.holds_nodes:
                busy.update(node.split(".")[0] for node in job.nodes)
        filtered_exotic: set[str] = set()
        chosen: list[str] = []
        for group in groups:
            candidates = []
            for cluster in site.clusters:
                if group.cluster not in (None, cluster.uid) or queue not in cluster.queues:
                    continue
                if cluster.exotic and "exotic" not in types:
                    filtered_exotic.add(cluster.uid)
                    continue
                candidates += [
                    node
                    for node in cluster.node_uids()
                    if node not in busy
                    and node not in chosen
                    and (not group.addresses or _fqdn(node, site.uid) in group.addresses)
                ]
            if len(candidates) < group.count:
                raise _not_enough_resources(site.uid, filtered_exotic)
            chosen += sorted(candidates, key=_node_order)[: group.count]
        return chosen

    def _delete_job(self, request: _Request) -> _Response:
        job, now = self._job(request), int(request.now)
        if job.fragged:
            oardel = f"Deleting the job = {job.uid} ...ERROR.\nCannot frag {job.uid} ; This job was already killed.\n"
            oar_error = {
                "code": 400,
                "message": f"Oardel command exited with status 1536: {oardel}. (Command was: oardel {job.uid}).",
                "title": "Oardel error",
            }
            raise _ApiError(
                HTTPStatus.BAD_REQUEST,
                f"Request to {_OAR_API.format(site=job.site)}/{job.uid}.json failed with status 400: {json.dumps(oar_error)}",
            )
        job.add_event(
            "FRAG_JOB_REQUEST", f"User {request.user} requested to frag the job {job.uid}", now
        )
        job.frag(now)
        info = f"Deleting the job = {job.uid} ...REGISTERED. The job(s) [ {job.uid} ] will be deleted in the near future."
        headers = {"Location": f"{self.url}/sites/{job.site}/jobs/{job.uid}", "X-Oar-Info": info}
        return _Response(HTTPStatus.ACCEPTED, b"", "text/plain", headers)

    def _get_walltime(self, request: _Request) -> _Response:
        job = self._job(request)
        limit = job.script.walltime_max_increase
        data = {
            "walltime": _sql_duration(job.walltime),
            "possible": "UNLIMITED" if limit is None else _sql_duration(limit),
            "pending": "0:0:0",
            "granted": _sql_duration(job.walltime_granted, signed=True),
            "force": "FORBIDDEN",
            "delay_next_jobs": "FORBIDDEN",
            "whole": "NO",
            "timeout": "0:0:0",
            "granted_with_force": "0:0:0",
            "granted_with_delay_next_jobs": "0:0:0",
            "granted_with_whole": "0:0:0",
            "uid": job.uid,
            "links": self._links(
                f"/sites/{job.site}/jobs/{job.uid}/walltime", f"/sites/{job.site}/jobs/{job.uid}"
            ),
        }
        return _json_response(HTTPStatus.OK, data)

    def _change_walltime(self, request: _Request) -> _Response:
        job, now = self._job(request), int(request.now)
        wanted = request.body.get("walltime") if isinstance(request.body, dict) else None
        if not isinstance(wanted, str) or not wanted:
            raise _ApiError(
                HTTPStatus.BAD_REQUEST,
                "The job walltime change you are trying to submit is not valid: you must give a new walltime",
            )
        if job.state != "running":
            raise _ApiError(HTTPStatus.FORBIDDEN, f"Job {job.uid} is not running")
        delta = _walltime_delta(wanted, job.walltime)
        verb = "updated" if job.walltime_granted else "accepted"
        limit = job.script.walltime_max_increase
        if limit is not None and job.walltime_granted + delta > limit:
            raise _ApiError(
                HTTPStatus.FORBIDDEN,
                f"Request cannot be {verb} because the walltime cannot increase by more than {_sql_duration(limit)}",
            )
        job.walltime += delta
        job.walltime_granted += delta
        job.add_event(
            "WALLTIME_REQUEST",
            f"Walltime change request {verb} for job {job.uid} ({_sql_duration(delta, signed=True)})",
            now,
        )
        sentence = f"Walltime change request {verb} for job {job.uid}, it will be handled shortly"
        # g5k-api renders OAR's sentence as is, not as a JSON string (see the module docstring).
        location = {"Location": f"{self.url}/sites/{job.site}/jobs/{job.uid}/walltime"}
        return _Response(HTTPStatus.ACCEPTED, sentence.encode(), headers=location)

    # --- Kadeploy ---

    def _deployment_links(self, deployment: _Deployment) -> list[JsonObject]:
        return self._links(
            f"/sites/{deployment.site}/deployments/{deployment.uid}", f"/sites/{deployment.site}"
        )

    def _create_deployment(self, request: _Request) -> _Response:
        site, now = self._site(request.params["site"]).uid, int(request.now)
        body = request.body if isinstance(request.body, dict) else {}
        environment, nodes = self._deployment_target(site, body)
        deployment = _Deployment(
            uid=f"D-{uuid.UUID(int=next(self._deployment_ids))}",
            site=site,
            user=request.user,
            environment=environment,
            nodes=nodes,
            extra=self._deployment_options(site, request.user, body),
            created_at=now,
            polls_left=self._deployment_polls,
            ko_nodes=frozenset(node for node in nodes if self._take_deploy_ko(node)),
            error_output=self._failing_deployments.pop(0) if self._failing_deployments else None,
        )
        self._deployments[deployment.uid] = deployment
        location = {"Location": f"{self.url}/sites/{site}/deployments/{deployment.uid}"}
        return _json_response(
            HTTPStatus.CREATED, deployment.to_json(self._deployment_links(deployment)), location
        )

    def _deployment_target(self, site: str, body: JsonObject) -> tuple[str, list[str]]:
        """The environment and nodes of a deployment request, refused as g5k-api does."""
        environment, requested = body.get("environment"), body.get("nodes")
        nodes: list[str] = []
        if isinstance(requested, list) and all(isinstance(node, str) for node in requested):
            nodes = requested
        problems = [] if environment else ["Environment can't be blank"]
        if not nodes:
            problems.append("Nodes must be a non-empty list of node FQDN")
        if problems:
            raise _ApiError(
                HTTPStatus.BAD_REQUEST,
                "The deployment you are trying to submit is not valid: " + "; ".join(problems),
            )
        known = {_fqdn(node, site) for node in self._node_cluster}
        if unknown := [node for node in nodes if node not in known]:
            raise _ApiError(
                HTTPStatus.BAD_REQUEST,
                f"Cannot launch deployment: unknown nodes {', '.join(unknown)}",
            )
        return str(environment), list(nodes)

    def _deployment_options(self, site: str, user: str, body: JsonObject) -> JsonObject:
        """The optional fields as g5k-api stores them: a key given as text becomes a URL."""
        options: JsonObject = {
            name: str(body[name]) for name in ("version", "arch") if name in body
        }
        if "vlan" in body:
            options["vlan"] = int(body["vlan"])
        key = body.get("key")
        if isinstance(key, str) and key and urlsplit(key).scheme not in ("http", "https"):
            key = (
                f"{self.url}/sites/{site}/files/{user}-key-{hashlib.sha1(key.encode()).hexdigest()}"
            )
        if key:
            options["key"] = key
        return options

    def _take_deploy_ko(self, node: str) -> bool:
        if self._deploy_ko.get(node, 0) <= 0:
            return False
        self._deploy_ko[node] -= 1
        return True

    def _get_deployment(self, request: _Request) -> _Response:
        site, uid = self._site(request.params["site"]).uid, request.params["deployment"]
        deployment = self._deployments.get(uid)
        if deployment is None or deployment.site != site:
            raise _ApiError(
                HTTPStatus.NOT_FOUND, f"Couldn't find Grid5000::Deployment with uid = {uid}"
            )
        deployment.poll(int(request.now))
        return _json_response(HTTPStatus.OK, deployment.to_json(self._deployment_links(deployment)))

    def _list_deployments(self, request: _Request) -> _Response:
        site = self._site(request.params["site"]).uid
        deployments = sorted(
            (d for d in self._deployments.values() if d.site == site), key=lambda d: -d.created_at
        )
        items = [d.to_json(self._deployment_links(d)) for d in deployments]
        path = f"/sites/{site}"
        return _json_response(HTTPStatus.OK, self._collection(items, path + "/deployments", path))

    # --- Kwollect ---

    def _get_metrics(self, request: _Request) -> _Response:
        site, query = self._site(request.params["site"]).uid, request.query
        nodes, start, end = self._metrics_scope(site, query, request.now)
        wanted = set(query["metrics"].split(",")) if query.get("metrics") else None
        visible_until = min(end, request.now - self._kwollect_delay)
        samples = [
            sample
            for node in nodes
            if node in self._node_cluster
            for metric, period in self._node_cluster[node].metric_periods().items()
            if wanted is None or metric in wanted
            for sample in self._samples(node, metric, period, start, visible_until)
        ]
        samples.sort(key=lambda s: (s[0], s[1]["device_id"], s[1]["metric_id"]))
        return _json_response(HTTPStatus.OK, [sample for _, sample in samples])

    def _metrics_scope(
        self, site: str, query: dict[str, str], now: float
    ) -> tuple[list[str], float, float]:
        """The nodes (short names) and the time window a Kwollect query asks for."""
        nodes = [n.strip() for n in query.get("nodes", "").split(",") if n.strip()]
        job_start: float | None = None
        job_end: float | None = None
        if query.get("job_id"):
            job = self._jobs.get(int(query["job_id"])) if query["job_id"].isdigit() else None
            if job is None or job.site != site:
                raise _ApiError(HTTPStatus.NOT_FOUND, f"Cannot find job {query['job_id']}")
            job.settle(int(now))
            nodes += [node.split(".")[0] for node in job.nodes]
            job_start, job_end = float(job.started_at or now), float(job.stopped_at or now)
        end = _parse_time(query["end_time"]) if query.get("end_time") else job_end or now
        start = (
            _parse_time(query["start_time"]) if query.get("start_time") else job_start or end - 300
        )
        return nodes, start, end

    def _samples(
        self, node: str, metric: str, period_ms: int, start: float, end: float
    ) -> Iterator[tuple[float, JsonObject]]:
        labels = (
            {"_device_orig": [f"wattmetre1-port{self._wattmetre_ports[node]}"]}
            if metric == _WATTMETRE
            else {}
        )
        # Integer milliseconds keep the timestamps exactly on the period's grid.
        first_ms = math.ceil(start * 1000 / period_ms) * period_ms
        for at_ms in range(first_ms, math.floor(end * 1000) + 1, period_ms):
            at = at_ms / 1000
            if any(gap.node == node and gap.start <= at < gap.end for gap in self._gaps):
                continue
            yield (
                at,
                {
                    "timestamp": datetime.fromtimestamp(at, PARIS).isoformat(),
                    "device_id": node,
                    "metric_id": metric,
                    "value": float(self._power(node, at)),
                    "labels": labels,
                },
            )


def _job_matches(job: _Job, query: Mapping[str, str]) -> bool:
    """Whether a job passes a job list's filters (``state`` a comma-separated list)."""
    if "state" in query and job.state not in {s.strip().lower() for s in query["state"].split(",")}:
        return False
    fields = {"user": job.user, "name": job.name, "project": job.project, "queue": job.queue}
    return all(query.get(key) in (None, "", value) for key, value in fields.items())


def _metric_description(name: str, period_ms: int) -> JsonObject:
    """A metric of a cluster as the reference API describes it."""
    if name == _WATTMETRE:
        return {
            "name": name,
            "description": "Power consumption of node reported by wattmetre, in watt",
            "period": period_ms,
            "optional_period": 20,
            "source": {"protocol": "wattmetre"},
        }
    return {
        "name": name,
        "description": "Power consumption of node reported by BMC, in watt",
        "period": period_ms,
        "source": {"protocol": "ipmisensor", "id": 59},
    }


def _walltime_delta(wanted: str, current: int) -> int:
    """OAR's walltime change: ``+H[:M[:S]]`` adds, ``-...`` removes, a bare value replaces."""
    match = _WALLTIME_CHANGE.match(wanted)
    if match is None:
        raise _ApiError(HTTPStatus.BAD_REQUEST, "Syntax error")
    sign, hours, minutes, seconds = match.groups()
    amount = int(hours) * 3600 + int(minutes or 0) * 60 + int(seconds or 0)
    return {"+": amount, "-": -amount}.get(sign, amount - current)


def _parse_time(text: str) -> float:
    """Kwollect's time parameters: Unix seconds or ISO 8601 (Paris time without an offset)."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as error:
        raise _ApiError(HTTPStatus.BAD_REQUEST, f"Invalid time {text!r}") from error
    return (moment if moment.tzinfo else moment.replace(tzinfo=PARIS)).timestamp()


def _parse_body(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError as error:
        raise _ApiError(HTTPStatus.BAD_REQUEST, f"The body is not JSON: {error}") from error


def _fqdn(node: str, site: str) -> str:
    return f"{node}.{site}.grid5000.fr"


def _node_order(node: str) -> tuple[str, int]:
    """``nova-2`` before ``nova-10``: by cluster, then by number."""
    cluster, _, number = node.rpartition("-")
    return cluster, int(number)


# --- HTTP plumbing -------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    emulator: G5kEmulator

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hung up before its (held) answer is what the test made happen.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _RequestHandler(BaseHTTPRequestHandler):
    # HTTP/1.0: one request per connection, so no client connection outlives a test.
    protocol_version = "HTTP/1.0"

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        emulator = cast(_Server, self.server).emulator
        response = emulator.handle(method, self.path, self.headers.get("Authorization"), raw)
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(response.body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: ``emu.requests`` is the log."""
