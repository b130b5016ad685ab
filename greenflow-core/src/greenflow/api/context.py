"""Values the four plugin kinds exchange: hosts, phases, windows, samples, results, run context.

All values are frozen attrs classes so that they can be hashed, compared, stored and
passed across threads without copies going stale.
"""

from __future__ import annotations

import enum
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:
    from greenflow.api.service import Service


class Capability(str, enum.Enum):
    """What a platform can run; services and workloads declare which one they need."""

    LOCAL_PROCESSES = "local-processes"
    KUBERNETES = "kubernetes"
    SSH = "ssh"


class Phase(str, enum.Enum):
    """Phases of the lifecycle (DESIGN.md §5). Each boundary is a timestamp in the store."""

    ACQUIRE = "acquire"
    DEPLOY = "deploy"
    BASELINE = "baseline"
    PREPARE = "prepare"
    WARMUP = "warmup"
    MEASURE = "measure"
    COOLDOWN = "cooldown"
    CLEAN = "clean"
    REMOVE = "remove"
    RELEASE = "release"
    #: Marks the end of the last phase (a run's clean-up, or the experiment's release).
    END = "end"


#: Phases that belong to one run, in order.
RUN_PHASES = (Phase.PREPARE, Phase.WARMUP, Phase.MEASURE, Phase.COOLDOWN, Phase.CLEAN)


def _sorted_labels(labels: Mapping[str, str]) -> dict[str, str]:
    return dict(sorted(labels.items()))


def _frozenset_of_str(roles: Iterable[str]) -> frozenset[str]:
    return frozenset(roles)


def _tuple_of_hosts(hosts: Iterable[Host]) -> tuple[Host, ...]:
    return tuple(hosts)


@attrs.frozen
class Host:
    """A machine the platform acquired. ``roles`` say what may be placed on it."""

    name: str
    address: str
    roles: frozenset[str] = attrs.field(converter=_frozenset_of_str)


@attrs.frozen
class Inventory:
    """The hosts a platform acquired, by role."""

    hosts: tuple[Host, ...] = attrs.field(converter=_tuple_of_hosts)

    def with_role(self, role: str) -> tuple[Host, ...]:
        """Hosts carrying ``role``, in acquisition order."""
        return tuple(h for h in self.hosts if role in h.roles)

    @property
    def roles(self) -> frozenset[str]:
        """Every role some host carries."""
        return frozenset(r for h in self.hosts for r in h.roles)


@attrs.frozen
class Window:
    """A closed time interval in Unix seconds (``time.time()``)."""

    start: float
    end: float

    @property
    def duration_s(self) -> float:
        return self.end - self.start

    def contains(self, t: float) -> bool:
        return self.start <= t <= self.end


@attrs.frozen
class Sample:
    """One timestamped value.

    ``metric`` carries its unit in the name (``host_energy_joules``, ``cpu_seconds``,
    ``power_watts``); ``unit`` repeats it for tools that read the store. ``method`` says
    how the value was obtained: ``rapl``, ``scaphandre``, ``kwollect``, ``model:<name>``
    for energy and power, ``psutil`` or ``prometheus`` for the rest. Energy metrics are
    cumulative counters that never go backwards (collectors correct wraps and restarts),
    so the energy over any window is the difference of the counter at its ends.

    The runner reads a run's energy from these names only: ``energy_joules`` labelled
    ``domain`` (a RAPL zone such as ``package-0``, ``dram-0``, ``psys``, or ``host`` for a
    whole-host figure; no label counts as ``host``), ``host_energy_joules`` (a whole host)
    and ``pod_energy_joules`` (a pod, labels ``pod`` and ``namespace``); and it splits a
    host's energy between process groups by ``cpu_seconds`` labelled ``group`` (``host``
    for the host's busy time). Other names are stored, never integrated: a power-only
    collector (``*_watts``) gives no energy. docs/writing-a-plugin.md, *Writing an energy
    collector*, says more.
    """

    timestamp: float
    metric: str
    value: float
    unit: str
    method: str
    host: str
    labels: Mapping[str, str] = attrs.field(factory=dict, converter=_sorted_labels)


@attrs.frozen
class Metric:
    """One per-run figure, e.g. ``energy_joules`` of ``service:kafka`` over MEASURE.

    ``name`` carries its unit (``_joules``, ``_watts``, ``_bytes``, ``_per_s``, ``_ms``);
    ``method`` says how it was obtained (``rapl``, ``model:linear``, ``workload``...);
    ``labels`` say what it is about (``host``, ``scope``: host/service/loadgen/idle/other).
    """

    name: str
    value: float
    unit: str
    method: str
    labels: Mapping[str, str] = attrs.field(factory=dict, converter=_sorted_labels)


@attrs.frozen
class WorkloadResult:
    """What one run's workload achieved during MEASURE.

    ``units`` is the work done inside the MEASURE window, counted at its boundaries
    (never rate × nominal duration). ``achieved_rate`` is units per second over MEASURE.
    ``latency_ms`` keys are ``avg``, ``p50``, ``p95``, ``p99``, ``p999``, ``max`` (any subset).
    ``metrics`` holds anything else, with the unit in the name (``asked_rate_per_s``).

    ``payload_bytes`` is the application payload those units carried, each unit counted
    once (the runner divides energy by it for J/MiB), without headers or protocol framing:
    for one-way messages, their bodies as sent (Kafka: messages × ``message_size``, not
    counted again when consumed); for request/response, the request body plus the response
    body of each unit, both directions summed. Report each direction apart in ``metrics``
    (``request_bytes``, ``response_bytes``) when it matters. None when it means nothing.
    """

    units: float
    unit: str = "unit"
    payload_bytes: float | None = None
    achieved_rate: float | None = None
    latency_ms: Mapping[str, float] = attrs.field(factory=dict)
    metrics: Mapping[str, float] = attrs.field(factory=dict)


class Deadline:
    """A point in monotonic time to wait until; used by every readiness poll."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._end = time.monotonic() + seconds

    @property
    def remaining_s(self) -> float:
        return max(0.0, self._end - time.monotonic())

    @property
    def expired(self) -> bool:
        return time.monotonic() >= self._end


def wait_until(
    check: Callable[[], tuple[bool, str]],
    *,
    what: str,
    timeout_s: float,
    interval_s: float = 0.2,
    cancel: threading.Event | None = None,
) -> None:
    """Poll ``check`` until it returns ``(True, _)``, or raise ``ReadinessTimeout``.

    ``check`` returns ``(done, last_seen)``; on timeout the error says what it was
    waiting for and the last thing it saw. Exceptions from ``check`` count as not
    done, their text becomes what was last seen.
    """
    from greenflow.errors import ReadinessTimeout

    deadline = Deadline(timeout_s)
    last = "nothing yet"
    while True:
        try:
            done, last = check()
        except Exception as exc:  # the thing we wait for may not answer yet
            done, last = False, f"{type(exc).__name__}: {exc}"
        if done:
            return
        if deadline.expired:
            msg = f"timed out after {timeout_s:g}s waiting for {what}; last seen: {last}"
            raise ReadinessTimeout(msg)
        if cancel is not None and cancel.wait(min(interval_s, deadline.remaining_s)):
            raise KeyboardInterrupt
        elif cancel is None:
            time.sleep(min(interval_s, deadline.remaining_s))


class PhaseRecorder:
    """Records phase boundaries of one run; a workload calls :meth:`enter` as it goes.

    The runner records ``prepare`` and ``clean``; the workload's ``execute`` enters
    ``warmup`` (optional), ``measure`` (exactly once) and ``cooldown`` (when MEASURE
    ends). Each call stores a timestamp at once, so a crash keeps what was reached.
    """

    def __init__(self, on_enter: Callable[[Phase, float], None] | None = None) -> None:
        self._on_enter = on_enter
        self.boundaries: list[tuple[Phase, float]] = []

    def enter(self, phase: Phase, at: float | None = None) -> float:
        t = time.time() if at is None else at
        self.boundaries.append((phase, t))
        if self._on_enter is not None:
            self._on_enter(phase, t)
        return t

    def window(self, phase: Phase) -> Window | None:
        """The window of ``phase``: from entering it to entering the next phase."""
        for i, (p, t) in enumerate(self.boundaries):
            if p == phase:
                if i + 1 < len(self.boundaries):
                    return Window(t, self.boundaries[i + 1][1])
                return None
        return None

    @property
    def current(self) -> Phase | None:
        return self.boundaries[-1][0] if self.boundaries else None

    def __iter__(self) -> Iterator[tuple[Phase, float]]:
        return iter(self.boundaries)


@attrs.define
class RunContext:
    """Everything a workload sees during one run.

    ``params`` are the run's resolved parameters (the sweep point), ``services`` the
    deployed services by plan name, ``work_dir`` a directory private to this run,
    ``log_dir`` where to put log files a user may want to read, ``cancel`` is set when
    the user interrupts (long waits should use ``cancel.wait(...)`` instead of sleep).
    """

    experiment: str
    run_id: str
    params: Mapping[str, Any]
    repetition: int
    inventory: Inventory
    services: Mapping[str, Service]
    work_dir: Path
    log_dir: Path
    phases: PhaseRecorder
    cancel: threading.Event = attrs.field(factory=threading.Event)

    def sleep(self, seconds: float) -> None:
        """Sleep, but wake up (raising KeyboardInterrupt) when the run is cancelled."""
        if self.cancel.wait(seconds):
            raise KeyboardInterrupt


@attrs.define
class DeployContext:
    """What platforms, services and collectors see when they start.

    ``state`` is a callback: call it with a JSON-serialisable mapping whenever you
    create something that must be cleaned up after a crash (pids, object names); the
    runner stores it at once so that ``greenflow down`` can release it later.
    """

    experiment: str
    work_dir: Path
    log_dir: Path
    record_state: Callable[[Mapping[str, Any]], None] = lambda _s: None
    cancel: threading.Event = attrs.field(factory=threading.Event)
    #: The plan file (absolute): a plugin resolves the relative file names a plan gives it
    #: (an inventory, a key, a script) against its directory, as a user reads them — not
    #: against the current directory — and names it in errors. None where no plan file
    #: exists (the contract kit).
    plan_path: Path | None = None
    #: Shows one line of what a long step is doing on the progress line (a job waiting in
    #: a queue: its state and scheduled start); the latest replaces the one before.
    progress: Callable[[str], None] = lambda _text: None


ProcessGroups = Mapping[str, Sequence[int]]
"""Process groups for attribution: group name → root pids (children are included)."""
