"""Jobs on Grid'5000 through python-grid5000: find a job by name or submit one, wait for it
to run, deploy an environment on its nodes, extend and delete it — with OAR's refusals
turned into one-line errors that say what to change.

The behaviours follow EnOSlib's Grid'5000 provider (../shared/notes/platforms-research.md
§1.2), which users of the original GreenFlow relied on: reuse of a job by name (two jobs of
one name are an error), polls with a growing pause, "already killed" tolerated on delete,
kadeploy retried on the failed nodes only. Added: an overall deadline on the wait, and a
cancel event (Ctrl-C) that ends it at once.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import structlog
import yaml

from greenflow.errors import PlatformError
from greenflow_g5k.config import (
    RESERVATION_FORMAT,
    G5kConfig,
    RoleNodes,
    oar_walltime,
)
from greenflow_k3s import ROLES

log = structlog.get_logger("greenflow.g5k")

#: States of a job that holds (or will hold) nodes: the ones a re-run may reuse.
ACTIVE_STATES = ("waiting", "launching", "running", "hold")
#: The command of a job whose nodes GreenFlow drives over SSH (the job lives for its
#: walltime, not for a script).
SLEEP_COMMAND = "sleep infinity"
#: Pauses between polls of a job's state, s: growing, then the last one repeats (EnOSlib
#: waits 5 … 45 s then 150 s; a deadline bounds the whole wait here).
POLL_PAUSES_S: tuple[float, ...] = (5, 10, 15, 20, 30, 45, 60)
#: Pause between polls of a deployment, s (kadeploy takes minutes).
DEPLOY_POLL_S = 10.0
#: Deadline of one deployment round, s.
DEPLOY_TIMEOUT_S = 1800.0
#: Deadline of each HTTP request to the API, s.
API_TIMEOUT_S = 60.0
_COULD_RUN_AT = re.compile(r"could run at (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)")


class JobError(PlatformError):
    """A job could not be had: the message says what to change."""


class Cancelled(PlatformError):
    """The wait was interrupted (Ctrl-C, SIGTERM)."""


@attrs.frozen
class Credentials:
    """What python-grid5000 needs to reach the API; ``password`` never leaves this object
    (repr hides it)."""

    username: str | None = None
    password: str | None = attrs.field(default=None, repr=False)
    sslcert: str | None = None
    sslkey: str | None = attrs.field(default=None, repr=False)
    verify_ssl: bool | str | None = None


def load_credentials(path: str | Path) -> Credentials:
    """python-grid5000's YAML file (``username``, ``password`` or ``sslcert``/``sslkey``,
    ``verify_ssl``); a missing file means anonymous (on a frontend the API trusts the
    user). Unlike ``Grid5000.from_yaml``, a broken file is an error, not an anonymous
    client for the real API."""
    file = Path(path).expanduser()
    if not file.exists():
        return Credentials()
    try:
        data = yaml.safe_load(file.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise JobError(f"{file}: cannot read the Grid'5000 credentials: {exc}") from None
    if not isinstance(data, Mapping):
        raise JobError(f"{file}: expected a mapping with username and password")
    known = {"username", "password", "sslcert", "sslkey", "verify_ssl", "uri"}
    if unknown := sorted(set(data) - known):
        raise JobError(
            f"{file}: unknown key(s) {', '.join(map(str, unknown))}; "
            f"valid: {', '.join(sorted(known))}"
        )
    mode = file.stat().st_mode & 0o777
    if data.get("password") is not None and mode & 0o077:
        # As ssh does for a private key: a password others can read is worth a word.
        log.warning(
            "g5k.credentials_readable_by_others",
            file=str(file),
            mode=f"{mode:o}",
            hint=f"chmod 600 {file}",
        )
    return Credentials(
        username=_str(data.get("username")),
        password=_str(data.get("password")),
        sslcert=_str(data.get("sslcert")),
        sslkey=_str(data.get("sslkey")),
        verify_ssl=data.get("verify_ssl"),
    )


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


def connect(api_url: str, credentials: Credentials) -> Any:
    """A python-grid5000 client of ``api_url`` (always given: the library's default would
    be the real API whatever the plan says)."""
    from grid5000 import Grid5000

    kwargs: dict[str, Any] = {"uri": api_url, "timeout": API_TIMEOUT_S}
    if credentials.username is not None:
        kwargs.update(username=credentials.username, password=credentials.password)
    if credentials.sslcert is not None:
        kwargs.update(sslcert=credentials.sslcert, sslkey=credentials.sslkey)
    if credentials.verify_ssl is not None:
        kwargs["verify_ssl"] = credentials.verify_ssl
    return Grid5000(**kwargs)


def api_error(what: str, exc: Exception, secrets: Iterable[str | None] = ()) -> JobError:
    """One line for a failed API call: what GreenFlow was doing, the API's status and
    message; any secret in it is masked."""
    from grid5000.exceptions import Grid5000AuthenticationError

    text = " ".join(str(exc).split())
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    if isinstance(exc, Grid5000AuthenticationError) or getattr(exc, "response_code", 0) == 401:
        return JobError(
            f"{what}: the Grid'5000 API refused the credentials (401); check username and "
            "password in the credentials file (docs/g5k.md, Credentials)"
        )
    return JobError(f"{what}: {text}")


# -- the job's request ---------------------------------------------------------------------


def resources(cfg: G5kConfig) -> str:
    """OAR's resource request: one group per role, named nodes first (EnOSlib's order, so
    a named node is not taken by another group), walltime last."""
    groups: list[str] = []
    for named in (True, False):
        for role in ROLES:
            group = cfg.roles.get(role)
            if group is None or bool(group.servers) != named:
                continue
            groups.append(_criterion(cfg, group))
    return "+".join(groups) + f",walltime={oar_walltime(cfg.walltime_s)}"


def _criterion(cfg: G5kConfig, group: RoleNodes) -> str:
    if group.servers:
        fqdns = ", ".join(f"'{fqdn(s, cfg.site)}'" for s in group.servers)
        return f"{{network_address in ({fqdns})}}/nodes={group.count}"
    return f"{{cluster='{group.cluster or cfg.cluster}'}}/nodes={group.count}"


def fqdn(node: str, site: str) -> str:
    return node if "." in node else f"{node}.{site}.grid5000.fr"


def short(node: str) -> str:
    return node.split(".")[0]


def cluster_of(node: str) -> str:
    return short(node).rsplit("-", 1)[0]


def job_request(cfg: G5kConfig, name: str, exotic: bool) -> dict[str, Any]:
    """The body of ``POST /sites/<site>/jobs``."""
    types = list(cfg.job_types)
    if cfg.env is not None:
        types.append("deploy")
    if exotic and "exotic" not in types:
        types.append("exotic")
    body: dict[str, Any] = {
        "name": name,
        "resources": resources(cfg),
        "command": SLEEP_COMMAND,
        "types": types,
        "queue": cfg.queue,
    }
    if cfg.project is not None:
        body["project"] = cfg.project
    if cfg.reservation is not None:
        body["reservation"] = cfg.reservation
    return body


# -- finding, submitting, waiting ----------------------------------------------------------


def find_jobs(site: Any, name: str, user: str | None) -> list[Any]:
    """This user's jobs of this name that hold or will hold nodes."""
    found = site.jobs.list(name=name, state=",".join(ACTIVE_STATES), user=user)
    # Filtered again here: the list is what decides reuse, whatever the API filtered.
    return [
        j
        for j in found
        if getattr(j, "name", name) == name
        and getattr(j, "state", None) in ACTIVE_STATES
        and (user is None or getattr(j, "user", user) == user)
    ]


def refusal(message: str, cfg: G5kConfig) -> str:
    """OAR's refusal of a submission as what to change (EnOSlib parses the same texts)."""
    if m := _COULD_RUN_AT.search(message):
        return (
            f"OAR cannot start the job when asked; it could run at {m.group(1)} (site time): "
            f'set reservation = "{m.group(1)}", or ask for fewer nodes or a shorter walltime'
        )
    if "too old" in message.lower():
        return (
            f"the reservation {cfg.reservation!r} is in the past; set a future "
            f'"{RESERVATION_FORMAT}" (site time) or remove reservation'
        )
    lowered = message.lower()
    if "no resource" in lowered or "there are not enough" in lowered or "not enough" in lowered:
        clusters = sorted({g.cluster or cfg.cluster or "?" for g in cfg.roles.values()})
        return (
            f"{cfg.site} has not that many nodes matching the request ({', '.join(clusters)}): "
            f"ask for fewer nodes, or check the cluster names ({message.strip()})"
        )
    return f"OAR refused the job: {message.strip()}"


def submit(site: Any, cfg: G5kConfig, body: Mapping[str, Any]) -> Any:
    """Submit the job; an OAR refusal becomes a :class:`JobError` saying what to change."""
    from grid5000.exceptions import Grid5000CreateError

    try:
        return site.jobs.create(dict(body))
    except Grid5000CreateError as exc:
        if getattr(exc, "response_code", None) == 401:
            raise api_error("submitting the job", exc) from None
        raise JobError(refusal(str(getattr(exc, "error_message", exc)), cfg)) from None


def wait_running(
    job: Any,
    *,
    deadline_s: float,
    cancel: threading.Event,
    progress: Callable[[str], None] = lambda _m: None,
    pauses: Sequence[float] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Poll ``job`` until it runs; raise :class:`JobError` if it ends first (error,
    terminated) or the deadline passes, :class:`Cancelled` when ``cancel`` is set."""
    pauses = pauses or POLL_PAUSES_S
    end = clock() + deadline_s
    for i in range(1_000_000):
        job.refresh()
        state = getattr(job, "state", None)
        if state == "running":
            return
        if state in ("error", "terminated"):
            raise JobError(
                f"job {job.uid} on {job.site} ended ({state}) before it ran; OAR's events: "
                f"{_events(job) or 'none'}"
            )
        progress(_describe_wait(job))
        left = end - clock()
        if left <= 0:
            raise JobError(
                f"job {job.uid} on {job.site} still {state} after {deadline_s:.0f} s "
                f"(wait_timeout); {_scheduled(job)}raise wait_timeout, or set reservation "
                "to a date when the nodes are free"
            )
        if cancel.wait(min(pauses[min(i, len(pauses) - 1)], left)):
            raise Cancelled(f"interrupted while job {job.uid} was {state}")


def _scheduled(job: Any) -> str:
    at = getattr(job, "scheduled_at", None)
    if not at:
        return ""
    return f"OAR schedules it at {time.strftime('%Y-%m-%d %H:%M:%S %Z', time.localtime(at))}; "


def _describe_wait(job: Any) -> str:
    return f"job {job.uid} {job.state}" + (
        f", {_scheduled(job).removesuffix('; ')}" if _scheduled(job) else ""
    )


def _events(job: Any) -> str:
    events = getattr(job, "events", None) or []
    return "; ".join(str(e.get("description", e)) for e in events[-3:] if isinstance(e, Mapping))


def delete(site: Any, job_id: int) -> bool:
    """Delete the job; True when this call ended it, False when it was already over
    ("already killed", or gone). Other errors propagate."""
    from grid5000.exceptions import Grid5000DeleteError, Grid5000GetError

    try:
        site.jobs[job_id].delete()
    except Grid5000GetError as exc:
        if getattr(exc, "response_code", None) == 404:
            return False
        raise
    except Grid5000DeleteError as exc:
        if "already killed" in str(exc).lower():
            return False
        raise
    return True


def extend(job: Any, seconds: float) -> None:
    """Ask OAR for ``seconds`` more walltime (``+H:MM:SS``)."""
    job.walltime_change.create({"walltime": "+" + oar_walltime(seconds)})


# -- nodes and roles -----------------------------------------------------------------------


def assign_roles(cfg: G5kConfig, nodes: Sequence[str]) -> dict[str, list[str]]:
    """Role → the job's nodes (FQDNs): named nodes to their roles, then, per cluster in
    sorted order, the next free nodes to each role in the order control, broker, worker —
    the same mapping on every reload of the job. Raises :class:`JobError` when the job
    does not hold what the plan asks (e.g. a reused job of another plan)."""
    free = sorted(fqdn(n, cfg.site) for n in nodes)
    taken: dict[str, list[str]] = {}
    for role in ROLES:
        group = cfg.roles.get(role)
        if group is not None and group.servers:
            wanted = [fqdn(s, cfg.site) for s in group.servers]
            if missing := [w for w in wanted if w not in free]:
                raise JobError(_mismatch(cfg, nodes, f"{role} names {', '.join(missing)}"))
            taken[role] = wanted
            free = [n for n in free if n not in wanted]
    for role in ROLES:
        group = cfg.roles.get(role)
        if group is None or group.servers:
            continue
        cluster = group.cluster or cfg.cluster
        mine = [n for n in free if cluster_of(n) == cluster][: group.count]
        if len(mine) < group.count:
            raise JobError(
                _mismatch(cfg, nodes, f"{role} needs {group.count} node(s) of {cluster}")
            )
        taken[role] = mine
        free = [n for n in free if n not in mine]
    return {role: taken[role] for role in ROLES if role in taken}


def _mismatch(cfg: G5kConfig, nodes: Sequence[str], what: str) -> str:
    return (
        f"the job's nodes ({', '.join(sorted(short(n) for n in nodes)) or 'none'}) do not "
        f"match the plan: {what}; a job of the same name from another plan? "
        f"run greenflow down, or set job_name"
    )


# -- kadeploy --------------------------------------------------------------------------------


def deploy(
    site: Any,
    nodes: Sequence[str],
    env: str,
    key: str,
    *,
    attempts: int,
    cancel: threading.Event,
    poll_s: float | None = None,
    timeout_s: float = DEPLOY_TIMEOUT_S,
    clock: Callable[[], float] = time.monotonic,
) -> list[str]:
    """Deploy ``env`` on ``nodes`` with kadeploy, each round on the nodes the previous ones
    failed; the rounds' deployment ids. Raises :class:`JobError` naming the nodes still
    failed after ``attempts``."""
    rounds: list[str] = []
    todo = list(nodes)
    for attempt in range(1, attempts + 1):
        if not todo:
            break
        dep = site.deployments.create({"nodes": todo, "environment": env, "key": key})
        end = clock() + timeout_s
        dep.refresh()
        while getattr(dep, "status", "processing") not in ("terminated", "error", "canceled"):
            if clock() > end:
                raise JobError(f"kadeploy {dep.uid}: not finished after {timeout_s:.0f} s")
            if cancel.wait(DEPLOY_POLL_S if poll_s is None else poll_s):
                raise Cancelled(f"interrupted during kadeploy {dep.uid}")
            dep.refresh()
        result = getattr(dep, "result", None) or {}
        done = [n for n in todo if (result.get(n) or {}).get("state") == "OK"]
        rounds.append(str(dep.uid))
        todo = [n for n in todo if n not in done]
        log.info("g5k.deployed", attempt=attempt, ok=len(done), failed=[short(n) for n in todo])
    if todo:
        raise JobError(
            f"kadeploy of {env} failed on {', '.join(short(n) for n in todo)} after "
            f"{attempts} attempt(s); try another env, or name other nodes (servers)"
        )
    return rounds
