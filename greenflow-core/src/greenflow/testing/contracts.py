"""Contract tests every GreenFlow plugin should pass, one class per plugin kind.

Subclass the contract for your plugin's kind in a test module, name the subclass
``Test...`` so that pytest collects it, set the class under test and override the
``config`` fixture (and, where the contract needs them, ``platform`` or ``services``)::

    import pytest
    from greenflow.plan import Duration
    from greenflow.testing import WorkloadContract
    from greenflow_hello.workload import HelloWorkload

    class TestHelloWorkload(WorkloadContract):
        workload_class = HelloWorkload
        entry_point_name = "hello"  # also check the entry point resolves to the class

        @pytest.fixture
        def config(self):
            return HelloWorkload.Config(count=200, duration=Duration(0.2))

        @pytest.fixture
        def cancel_config(self):  # a run the contract can interrupt (Ctrl-C) midway
            return HelloWorkload.Config(count=3000, duration=Duration(30))

Every ``test_*`` method then runs against your plugin. Each checks one guarantee that a
``**REQUIRED**`` method's docstring in :mod:`greenflow.api` makes, through the public
API only, and its failure message says which guarantee and what was seen. Override a
test (e.g. to mark it slow) by redefining it in the subclass and calling ``super()``.

What every contract checks (:class:`_PluginContract`): the class is a concrete subclass
of its ABC; ``Config`` is a frozen attrs class that greenflow's plan converter structures
(round trip) and that rejects unknown keys; constructing the plugin touches nothing —
no network, no process, no thread, no file, no environment change — because
``greenflow validate`` builds plugins without running them.

Knobs are class attributes (``ready_timeout_s``, ``window_s``...) documented on each
contract. Contracts never print secrets: configs appear in messages as types, not values.

The contracts play the runner, deadlines included: a service step that hangs, or a
workload that goes on after Ctrl-C, fails its check with the step named (and the
service's processes stopped) instead of hanging the suite. The deadline is a signal to
the main thread, as in ``greenflow run``; in another thread only the 300 s ``timeout``
mark applies.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import itertools
import json
import math
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import Any, ClassVar

import attrs
import cattrs
import psutil
import pytest

from greenflow.api import (
    Capability,
    Collector,
    CollectorContext,
    DeployContext,
    Host,
    Inventory,
    Phase,
    PhaseRecorder,
    Platform,
    Probe,
    ProcessGroups,
    Protocol,
    RunContext,
    Sample,
    Service,
    Step,
    Window,
    Workload,
    WorkloadResult,
)
from greenflow.errors import CollectorError, GreenFlowError
from greenflow.plan.converter import converter as _plan_converter
from greenflow.plugins import Kind

__all__ = [
    "ENERGY_METHODS",
    "ENERGY_METRICS",
    "CollectorContract",
    "PlatformContract",
    "ServiceContract",
    "StateRecorder",
    "WorkloadContract",
    "assert_energy_metrics",
    "assert_valid_result",
    "assert_valid_samples",
    "assert_window_edges",
    "deploy_services",
    "local_inventory",
    "make_collector_context",
    "make_deploy_context",
    "make_run_context",
]

#: Methods an energy or power sample may carry besides ``model:<name>`` (DESIGN.md §4).
ENERGY_METHODS = frozenset({"rapl", "scaphandre", "kwollect"})

#: The metrics the runner reads a run's energy from (:mod:`greenflow.measure.attribution`):
#: ``energy_joules`` labelled ``domain`` (a RAPL zone, or ``host``; none counts as ``host``),
#: ``host_energy_joules`` and, per pod, ``pod_energy_joules``. Any other ``*_joules`` series
#: is stored but never becomes a run's energy.
ENERGY_METRICS = frozenset({"energy_joules", "host_energy_joules", "pod_energy_joules"})

#: Roles the default inventory's one host carries (those plans use).
DEFAULT_ROLES = frozenset({"control", "broker", "worker"})

_LATENCY_KEYS = frozenset({"avg", "p50", "p95", "p99", "p999", "max"})
_UNKNOWN_KEY = "greenflow_contract_unknown_key"


def _converter() -> cattrs.Converter:
    """The converter plans are structured with: strict scalars, unknown keys rejected."""
    return _plan_converter


# -- helpers plugin tests may use on their own ---------------------------------------------


class StateRecorder:
    """Plays the store behind ``DeployContext.record_state``.

    Every call must pass a JSON-serialisable mapping (checked at once, so the plugin's
    traceback points at the call); like the store, a later call replaces the state.
    """

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def __call__(self, state: Mapping[str, Any]) -> None:
        _assert_json(state, "the state passed to ctx.record_state")
        self.calls.append(json.loads(json.dumps(dict(state))))

    @property
    def state(self) -> dict[str, Any]:
        """The latest recorded state, or ``{}`` when nothing was recorded."""
        return self.calls[-1] if self.calls else {}


def local_inventory(roles: Iterable[str] = DEFAULT_ROLES) -> Inventory:
    """An inventory of this host at 127.0.0.1 carrying ``roles``."""
    host = Host(socket.gethostname(), "127.0.0.1", frozenset(roles))
    return Inventory([host])


def make_deploy_context(
    root: Path,
    *,
    experiment: str = "contract",
    record_state: Callable[[Mapping[str, Any]], None] | None = None,
    cancel: threading.Event | None = None,
) -> DeployContext:
    """A :class:`DeployContext` with ``work/`` and ``logs/`` under ``root`` (created)."""
    work_dir, log_dir = root / "work", root / "logs"
    work_dir.mkdir(parents=True, exist_ok=True)
    log_dir.mkdir(parents=True, exist_ok=True)
    return DeployContext(
        experiment=experiment,
        work_dir=work_dir,
        log_dir=log_dir,
        record_state=record_state if record_state is not None else StateRecorder(),
        cancel=cancel if cancel is not None else threading.Event(),
    )


def make_run_context(
    root: Path,
    *,
    params: Mapping[str, Any] | None = None,
    services: Mapping[str, Service] | None = None,
    inventory: Inventory | None = None,
    experiment: str = "contract",
    run_id: str = "contract-run",
    repetition: int = 0,
    phases: PhaseRecorder | None = None,
    cancel: threading.Event | None = None,
) -> RunContext:
    """A :class:`RunContext` as the runner builds one, for driving a workload by hand.

    ``work/`` and ``logs/`` are created under ``root``; ``inventory`` defaults to
    :func:`local_inventory`; ``phases`` to a fresh recorder (read what the workload
    entered from ``ctx.phases.boundaries``).
    """
    work_dir, log_dir = root / "work", root / "logs"
    work_dir.mkdir(parents=True, exist_ok=True)
    log_dir.mkdir(parents=True, exist_ok=True)
    return RunContext(
        experiment=experiment,
        run_id=run_id,
        params=dict(params or {}),
        repetition=repetition,
        inventory=inventory if inventory is not None else local_inventory(),
        services=dict(services or {}),
        work_dir=work_dir,
        log_dir=log_dir,
        phases=phases if phases is not None else PhaseRecorder(),
        cancel=cancel if cancel is not None else threading.Event(),
    )


def make_collector_context(
    *,
    experiment: str = "contract",
    inventory: Inventory | None = None,
    process_groups: Callable[[], ProcessGroups] | None = None,
) -> CollectorContext:
    """A :class:`CollectorContext`; by default this host, and this test process as the
    one attribution group ``"contract"``."""
    pid = os.getpid()
    return CollectorContext(
        experiment=experiment,
        inventory=inventory if inventory is not None else local_inventory(),
        process_groups=process_groups
        if process_groups is not None
        else (lambda: {"contract": [pid]}),
    )


def assert_valid_result(result: object, measure: Window | None = None) -> None:
    """Check a :class:`WorkloadResult` as the runner will read it.

    ``units`` ≥ 0 and finite; ``unit`` non-empty; ``payload_bytes`` and
    ``achieved_rate`` None or ≥ 0; ``latency_ms`` keys among avg/p50/p95/p99/p999/max
    with values ≥ 0; ``metrics`` finite numbers. With ``measure`` (the MEASURE window the
    workload entered), ``achieved_rate`` must be units per second over that window
    (within 20 %): a rate over the nominal duration is the bug this catches.
    """
    assert isinstance(result, WorkloadResult), (
        f"execute() must return a greenflow.api.WorkloadResult, got {type(result).__name__}"
    )
    assert _finite(result.units) and result.units >= 0, (
        f"WorkloadResult.units must be a finite number ≥ 0, got {result.units!r}"
    )
    assert isinstance(result.unit, str) and result.unit, (
        f"WorkloadResult.unit must name the unit of work, got {result.unit!r}"
    )
    if result.payload_bytes is not None:
        assert _finite(result.payload_bytes) and result.payload_bytes >= 0, (
            f"WorkloadResult.payload_bytes must be None or ≥ 0, got {result.payload_bytes!r}"
        )
    if result.achieved_rate is not None:
        assert _finite(result.achieved_rate) and result.achieved_rate >= 0, (
            f"WorkloadResult.achieved_rate must be None or ≥ 0, got {result.achieved_rate!r}"
        )
    unknown = set(result.latency_ms) - _LATENCY_KEYS
    assert not unknown, (
        f"WorkloadResult.latency_ms keys must be among {sorted(_LATENCY_KEYS)}, got {sorted(unknown)}"
    )
    for key, value in result.latency_ms.items():
        assert _finite(value) and value >= 0, (
            f"WorkloadResult.latency_ms[{key!r}] must be ≥ 0, got {value!r}"
        )
    for key, value in result.metrics.items():
        assert _finite(value), (
            f"WorkloadResult.metrics[{key!r}] must be a finite number, got {value!r}"
        )
    if (
        measure is not None
        and result.achieved_rate is not None
        and result.units > 0
        and measure.duration_s >= 0.05
    ):
        expected = result.units / measure.duration_s
        assert abs(result.achieved_rate - expected) <= 0.2 * expected, (
            f"WorkloadResult.achieved_rate is {result.achieved_rate:g}/s but units/MEASURE is "
            f"{result.units:g}/{measure.duration_s:.3f}s = {expected:g}/s; the rate must be "
            "counted over the MEASURE window the workload entered, not the nominal duration"
        )


def assert_valid_samples(
    samples: object,
    window: Window,
    *,
    energy_methods: frozenset[str] = ENERGY_METHODS,
) -> None:
    """Check what :meth:`Collector.collect` returned for ``window``.

    Every item is a :class:`Sample` with a finite value and non-empty metric, unit,
    method and host. Within each series (metric, host, labels) timestamps never go
    backwards, at most one sample lies before ``window.start`` and at most one after
    ``window.end`` (the boundary samples ``collect`` adds for interpolation), and
    ``*_joules`` counters never decrease. Every energy or power sample (metric ending
    ``_joules`` or ``_watts``) carries a method in ``energy_methods`` or ``model:<name>``,
    so that no estimate passes for a measurement.
    """
    assert isinstance(samples, Sequence) and not isinstance(samples, str | bytes), (
        f"collect() must return a sequence of Sample, got {type(samples).__name__}"
    )
    series: dict[tuple[str, str, tuple[tuple[str, str], ...]], list[Sample]] = {}
    for i, s in enumerate(samples):
        assert isinstance(s, Sample), (
            f"collect()[{i}] is a {type(s).__name__}, not a greenflow.api.Sample"
        )
        where = f"collect()[{i}] ({s.metric!r} on {s.host!r})"
        assert _finite(s.timestamp), (
            f"{where}: timestamp must be finite Unix seconds, got {s.timestamp!r}"
        )
        assert _finite(s.value), f"{where}: value must be a finite number, got {s.value!r}"
        for attr in ("metric", "unit", "method", "host"):
            value = getattr(s, attr)
            assert isinstance(value, str) and value, (
                f"{where}: {attr} must be a non-empty string, got {value!r}"
            )
        if s.metric.endswith(("_joules", "_watts")):
            ok = s.method in energy_methods or (
                s.method.startswith("model:") and len(s.method) > len("model:")
            )
            assert ok, (
                f"{where}: an energy or power sample must say how it was obtained: method "
                f"must be one of {sorted(energy_methods)} or 'model:<name>', got {s.method!r}"
            )
        series.setdefault((s.metric, s.host, tuple(sorted(s.labels.items()))), []).append(s)
    for (metric, host, labels), items in series.items():
        name = f"series {metric!r} on {host!r}" + (f" {dict(labels)}" if labels else "")
        stamps = [s.timestamp for s in items]
        assert stamps == sorted(stamps), (
            f"{name}: samples must come in time order, got timestamps {stamps}"
        )
        before = sum(1 for t in stamps if t < window.start)
        after = sum(1 for t in stamps if t > window.end)
        assert before <= 1, (
            f"{name}: {before} samples before the window start; collect(window) returns what lies "
            "inside plus at most the last sample before and the first after"
        )
        assert after <= 1, (
            f"{name}: {after} samples after the window end; collect(window) returns what lies "
            "inside plus at most the last sample before and the first after"
        )
        if metric.endswith("_joules"):
            values = [s.value for s in items]
            assert all(b >= a for a, b in itertools.pairwise(values)), (
                f"{name}: energy is a cumulative counter that never goes backwards "
                f"(correct wraps and restarts in the collector), got {values}"
            )


def assert_window_edges(samples: Sequence[Sample], window: Window) -> None:
    """Check that every series in ``samples`` has a reading at or before ``window.start``
    and one at or after ``window.end``.

    The runner calls ``collect(window)`` right after the window ends and reads each counter
    *at* both edges; a series that stops short of an edge leaves that run without energy
    (or the baseline without idle power). A collector that samples only in a background
    thread fails this: take a sample in :meth:`~greenflow.api.Collector.mark`, which the
    runner calls at every phase boundary, or in ``collect()`` when the newest sample is
    older than the window's end.
    """
    series: dict[tuple[str, str, tuple[tuple[str, str], ...]], list[float]] = {}
    for s in samples:
        series.setdefault((s.metric, s.host, tuple(sorted(s.labels.items()))), []).append(
            s.timestamp
        )
    for (metric, host, labels), stamps in series.items():
        name = f"series {metric!r} on {host!r}" + (f" {dict(labels)}" if labels else "")
        assert min(stamps) <= window.start, (
            f"{name}: no reading at or before the window's start (first at "
            f"{min(stamps) - window.start:+.3f} s); the runner calls mark() at every phase "
            "boundary: take a reading there, or keep sampling from start()"
        )
        assert max(stamps) >= window.end, (
            f"{name}: no reading at or after the window's end (last at "
            f"{max(stamps) - window.end:+.3f} s) although collect() was called right after it, "
            "as the runner does; take a reading in mark() (called at every phase boundary) or "
            "in collect() when the newest is older than window.end — a sampling thread alone "
            "leaves the end uncovered and the run without energy"
        )


def assert_energy_metrics(
    samples: Sequence[Sample], *, other_energy_metrics: frozenset[str] = frozenset()
) -> None:
    """Check that energy in ``samples`` uses a name the runner reads (:data:`ENERGY_METRICS`).

    Every ``*_joules`` series must be ``energy_joules`` (with a ``domain`` label, or none
    for ``host``), ``host_energy_joules`` or ``pod_energy_joules``, unless named in
    ``other_energy_metrics`` (a query collector's own series that are not meant as a run's
    energy); and a collector that reports power (``*_watts``) must also report one of these
    energy counters, since the runner never integrates power. Samples without energy or
    power pass.
    """
    names = {s.metric for s in samples}
    unread = sorted(
        n for n in names if n.endswith("_joules") and n not in ENERGY_METRICS | other_energy_metrics
    )
    assert not unread, (
        f"energy series {unread} have names the runner does not read: a run's energy is only "
        f"integrated from {sorted(ENERGY_METRICS)} (energy_joules labelled domain=<RAPL zone> "
        "or domain=host); rename them, or list them in other_energy_metrics if they are not "
        "meant as a run's energy"
    )
    power = sorted(n for n in names if n.endswith("_watts"))
    assert not power or names & ENERGY_METRICS, (
        f"power series {power} but no energy counter: the runner integrates counters, never "
        f"power; also report a cumulative energy_joules{{domain=...}} (joules since start)"
    )


@contextlib.contextmanager
def deploy_services(
    services: Mapping[str, Service],
    root: Path,
    *,
    platform: Platform | None = None,
    ready_timeout_s: float = 120.0,
    deploy_timeout_s: float = 120.0,
    remove_timeout_s: float = 60.0,
    ready_grace_s: float = 10.0,
) -> Iterator[Mapping[str, Service]]:
    """Deploy ``services`` (plan name → a service not yet deployed) and yield them, ready.

    For a workload's tests: ``platform`` defaults to greenflow's built-in ``local``
    platform (the test skips when it cannot load), acquired here with ``root/platform`` as
    its directory; each service deploys with ``root/<name>`` as its work and log
    directories, then ``wait_ready(ready_timeout_s)``. Afterwards, whatever happened, every
    service is removed (last first) and the platform released. Each step has a deadline
    (``deploy_timeout_s``; ``ready_timeout_s`` + ``ready_grace_s``; ``remove_timeout_s``): a step that
    overruns it fails the test naming the service and the step, after the service was
    stopped by force (``remove``, ``remove_recorded`` with what it recorded, then any
    process it left). Use it in a ``services`` fixture, module-scoped when deploying is
    slow::

        @pytest.fixture(scope="module")
        def foo(tmp_path_factory):
            with deploy_services({"foo": FooService("foo", FooConfig())},
                                 tmp_path_factory.mktemp("foo")) as services:
                yield services

    or return the services from :class:`WorkloadContract`'s ``services_to_deploy``.
    """
    if platform is None:
        platform = _local_platform("deploy_services (greenflow.testing)")
    inventory = platform.acquire(make_deploy_context(root / "platform"))
    deployed: list[_Deployment] = []
    problems: list[str] = []
    try:
        for name, service in services.items():
            state = StateRecorder()
            d = _Deployment(
                service, state, make_deploy_context(root / name, record_state=state), time.time()
            )
            deployed.append(d)
            d.step(
                "deploy",
                functools.partial(service.deploy, platform, inventory, d.ctx),
                deploy_timeout_s,
                "deploy_timeout_s",
                remove_timeout_s,
            )
            d.step(
                "wait_ready",
                functools.partial(service.wait_ready, ready_timeout_s),
                ready_timeout_s + ready_grace_s,
                "ready_timeout_s + ready_grace_s",
                remove_timeout_s,
            )
        yield dict(services)
    finally:
        for d in reversed(deployed):
            if d.removed:
                continue
            try:
                d.step(
                    "remove",
                    d.service.remove,
                    remove_timeout_s,
                    "remove_timeout_s",
                    remove_timeout_s,
                )
            except BaseException as exc:  # the others are still removed, then it is reported
                problems.append(str(exc))
        platform.release()
    if problems:
        pytest.fail("; ".join(problems))


# -- internals ---------------------------------------------------------------------------


class _Overdue(BaseException):  # like KeyboardInterrupt: a plugin's `except Exception` lets it by
    """Raised in the main thread when a plugin step runs past the contract's deadline."""


class _Watchdog:
    """One deadline for the main thread: a timer sends SIGUSR1, whose handler raises
    :class:`_Overdue` there, unwinding the plugin's code (its ``finally`` blocks run) the
    way the runner's deadline does. The handler stays installed until any signal in
    flight has arrived, so that a late one never meets the default action (which would
    end the process)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.lock = threading.Lock()
        self.armed = False
        self.fired = False
        self.seen = False

    def handler(self, _signum: int, _frame: FrameType | None) -> None:
        self.seen = True
        if self.armed:
            self.armed = False
            raise _Overdue(self.seconds)

    def fire(self, main: threading.Thread) -> None:
        with self.lock:
            if not self.armed or main.ident is None:
                return
            self.fired = True
            signal.pthread_kill(main.ident, signal.SIGUSR1)


@contextlib.contextmanager
def _deadline(seconds: float) -> Iterator[None]:
    """Raise :class:`_Overdue` in the block if it still runs after ``seconds``. Only in the
    main thread (where pytest runs tests); elsewhere there is no deadline and the 300 s
    ``timeout`` mark is what stops a hung plugin."""
    main = threading.main_thread()
    if threading.current_thread() is not main or not hasattr(signal, "pthread_kill"):
        yield
        return
    watch = _Watchdog(seconds)
    previous = signal.signal(signal.SIGUSR1, watch.handler)
    timer = threading.Timer(seconds, watch.fire, args=(main,))
    timer.daemon = True
    watch.armed = True
    timer.start()
    try:
        yield
    finally:
        with watch.lock:
            watch.armed = False
        timer.cancel()
        until = time.monotonic() + 1.0
        while watch.fired and not watch.seen and time.monotonic() < until:
            time.sleep(0.001)  # lets a signal already sent arrive while the handler is ours
        signal.signal(signal.SIGUSR1, previous)


def _local_platform(where: str) -> Platform:
    """greenflow's built-in ``local`` platform, not acquired; the test skips without it."""
    from greenflow.plugins import load

    try:
        cls = load(Kind.PLATFORM, "local", where=where)
        platform: Platform = cls(cls.Config())
    except GreenFlowError as exc:
        pytest.skip(f"greenflow's local platform is not usable: {exc}")
    return platform


def _leftover_processes(since: float) -> list[psutil.Process]:
    """Descendants of this process started at or after ``since`` (a ``time.time()`` value)."""
    out = []
    for p in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if p.create_time() >= since - 0.05 and p.status() != psutil.STATUS_ZOMBIE:
                out.append(p)
    return out


@attrs.define
class _Deployment:
    """A service the contract deploys, with what it needs to stop it by force."""

    service: Service
    state: StateRecorder
    ctx: DeployContext
    since: float
    removed: bool = False

    def step(
        self,
        step: str,
        call: Callable[[], object],
        timeout_s: float,
        knob: str,
        remove_timeout_s: float,
    ) -> None:
        """``call()`` under a deadline; past it, stop the service by force and fail."""
        if step == "remove":
            self.removed = True
        try:
            with _deadline(timeout_s):
                call()
        except _Overdue:
            pass
        else:
            return
        done = self.stop_by_force(remove_timeout_s, call_remove=step != "remove")
        cls = type(self.service).__name__
        pytest.fail(
            f"{cls}.{step}() of service {self.service.name!r} did not return within "
            f"{timeout_s:g} s ({knob}): greenflow run would stop it there and fail. Poll with "
            "greenflow.api.wait_until (or a Deadline), honour timeout_s and ctx.cancel, and "
            f"never wait without a bound. The contract then stopped the service: {'; '.join(done)}",
            pytrace=False,
        )

    def stop_by_force(self, timeout_s: float, *, call_remove: bool) -> list[str]:
        """Set the deploy context's cancel, then remove(), remove_recorded(state) and SIGKILL
        whatever process started since the deploy is still there; say what each did."""
        self.removed = True
        self.ctx.cancel.set()
        service = self.service
        attempts: list[tuple[str, Callable[[], object]]] = [
            (
                "remove_recorded(config, recorded state)",
                lambda: type(service).remove_recorded(service.config, self.state.state),
            )
        ]
        if call_remove:
            attempts.insert(0, ("remove()", service.remove))
        done = []
        for what, call in attempts:
            try:
                with _deadline(timeout_s):
                    call()
                done.append(f"{what} returned")
            except _Overdue:
                done.append(f"{what} did not return within {timeout_s:g} s either")
            except Exception as exc:
                done.append(f"{what} raised {type(exc).__name__}: {exc}")
        left = _leftover_processes(self.since)
        names = []
        for p in left:
            with contextlib.suppress(psutil.Error):
                names.append(f"{p.name()} (pid {p.pid})")
                p.kill()
        psutil.wait_procs(left, timeout=5)
        done.append(f"killed what was left: {', '.join(names)}" if names else "nothing was left")
        return done


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _assert_json(value: object, what: str) -> None:
    assert isinstance(value, Mapping), f"{what} must be a mapping, got {type(value).__name__}"
    try:
        json.dumps(dict(value), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise AssertionError(
            f"{what} must be JSON-serialisable (plain dicts, lists, str, numbers, bool, None): {exc}"
        ) from None


class _Touched(Exception):
    """Raised inside a plugin constructor by a guarded call (network, process)."""


def _construct_touching_nothing(
    factory: Callable[[], object], what: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> object:
    """Run ``factory`` with network and process creation forbidden; fail on any side effect."""
    touched: list[str] = []

    def forbid(action: str) -> Callable[..., Any]:
        def guard(*_args: Any, **_kwargs: Any) -> Any:
            touched.append(action)
            raise _Touched(f"{action} is not allowed while constructing a plugin")

        return guard

    cwd = tmp_path / "construct-cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    env_before = dict(os.environ)
    threads_before = set(threading.enumerate())
    children_before = {p.pid for p in psutil.Process().children(recursive=True)}
    error: BaseException | None = None
    obj: object = None
    with monkeypatch.context() as m:
        for name in ("connect", "connect_ex", "bind"):
            m.setattr(socket.socket, name, forbid(f"socket.{name} (network)"))
        m.setattr(socket, "getaddrinfo", forbid("socket.getaddrinfo (name resolution)"))
        m.setattr(subprocess.Popen, "__init__", forbid("subprocess.Popen (starting a process)"))
        for name in ("system", "fork", "posix_spawn", "posix_spawnp"):
            if hasattr(os, name):
                m.setattr(os, name, forbid(f"os.{name} (starting a process)"))
        try:
            obj = factory()
        except Exception as exc:  # reported below, after what was touched
            error = exc
    problems = list(dict.fromkeys(touched))
    problems += [
        f"started thread {t.name!r}" for t in threading.enumerate() if t not in threads_before
    ]
    children = [
        p for p in psutil.Process().children(recursive=True) if p.pid not in children_before
    ]
    problems += [f"started process {p.pid}" for p in children]
    problems += [f"created {p.name!r} in the working directory" for p in sorted(cwd.iterdir())]
    changed = sorted(
        k for k in set(env_before) | set(os.environ) if env_before.get(k) != os.environ.get(k)
    )
    problems += [f"changed environment variable {k}" for k in changed]
    assert not problems, (
        f"{what} must only store its config (greenflow validate builds plugins without running "
        f"them; do the work in acquire/deploy/prepare/start), but it: {'; '.join(problems)}"
    )
    if error is not None:
        raise error
    return obj


def _process_tree(pids: Iterable[int]) -> list[tuple[int, float, str]]:
    """(pid, create time, name) of ``pids`` and all their descendants that exist now."""
    seen: dict[int, tuple[int, float, str]] = {}
    for pid in pids:
        try:
            root = psutil.Process(pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            continue
        for p in procs:
            try:
                seen[p.pid] = (p.pid, float(p.create_time()), str(p.name()))
            except psutil.NoSuchProcess:
                continue
    return list(seen.values())


def _alive(tree: Iterable[tuple[int, float, str]]) -> list[str]:
    """Which of ``tree`` still run (same pid and start time, not a zombie)."""
    alive = []
    for pid, created, name in tree:
        try:
            p = psutil.Process(pid)
            if float(p.create_time()) != created or p.status() == psutil.STATUS_ZOMBIE:
                continue
        except psutil.NoSuchProcess:
            continue
        alive.append(f"{name} (pid {pid})")
    return alive


def _wait_gone(tree: list[tuple[int, float, str]], grace_s: float) -> list[str]:
    deadline = time.monotonic() + grace_s
    while True:
        alive = _alive(tree)
        if not alive or time.monotonic() >= deadline:
            return alive
        time.sleep(0.05)


def _check_process_groups(groups: object, what: str) -> list[int]:
    assert isinstance(groups, Mapping), (
        f"{what} must return a mapping of name → pids, got {type(groups).__name__}"
    )
    pids: list[int] = []
    for name, members in groups.items():
        assert isinstance(name, str) and name, (
            f"{what}: group names must be non-empty strings, got {name!r}"
        )
        assert isinstance(members, Sequence) and not isinstance(members, str), (
            f"{what}[{name!r}] must be a sequence of pids, got {type(members).__name__}"
        )
        for pid in members:
            assert isinstance(pid, int) and not isinstance(pid, bool) and pid > 0, (
                f"{what}[{name!r}] holds {pid!r}, not a pid"
            )
            pids.append(pid)
    return pids


# -- the contracts -------------------------------------------------------------------------


class _PluginContract:
    """What every plugin kind guarantees: its class, its Config, a side-effect-free constructor.

    Class attributes a subclass may set:

    ``entry_point_name``
        The name the plugin is registered under in its entry-point group. When set,
        ``test_entry_point_resolves_to_the_class`` checks that
        ``greenflow.plugins.load(kind, name)`` returns the class under test (the package
        must be installed, e.g. ``pip install -e .``). None skips that test.

    ``pytestmark``
        Marks on every check; by default a 300 s ``timeout`` (pytest-timeout, in the
        ``testing`` extra), so that a plugin that hangs fails its check instead of hanging
        the suite. Set ``pytestmark = [pytest.mark.timeout(N)]`` for a slower plugin.
    """

    kind: ClassVar[Kind]
    entry_point_name: ClassVar[str | None] = None
    pytestmark: ClassVar[list[pytest.MarkDecorator]] = [pytest.mark.timeout(300)]

    # Fixtures undo at teardown what the test started (acquire, deploy, prepare, start)
    # but did not try to undo itself, so that a bug in release/remove/clean/stop fails the
    # test that checks it rather than every test's teardown. Class fixtures run on the
    # test's own instance, so this set is per test.
    _called: set[str]

    def _mark(self, method: str) -> None:
        if not hasattr(self, "_called"):
            self._called = set()
        self._called.add(method)

    def _needs_undo(self, started: str, undo: str) -> bool:
        called: set[str] = getattr(self, "_called", set())
        return started in called and undo not in called

    # -- for subclasses of the contract -----------------------------------------------

    def plugin_class(self) -> type[Any]:
        """The class under test (``platform_class``, ``service_class``...)."""
        attr = f"{self.kind.value}_class"
        cls = getattr(self, attr, None)
        if cls is None:
            pytest.fail(
                f"{type(self).__name__} must set `{attr} = YourPlugin` (the class under test)"
            )
        return cls  # type: ignore[no-any-return]  # getattr on a name built at run time

    def make_plugin(self, config: Any) -> Any:
        """Build the plugin from ``config`` the way the runner does."""
        return self.plugin_class()(config)

    @pytest.fixture
    def config(self) -> Any:
        """Override: return an instance of the plugin's ``Config`` to test with.

        The default builds ``Config()`` and fails when it has required fields.
        """
        cls = self.plugin_class()
        try:
            return cls.Config()
        except TypeError as exc:
            pytest.fail(
                f"{type(self).__name__}: {cls.__name__}.Config() needs arguments ({exc}); "
                "override the `config` fixture to return a Config instance"
            )

    # -- tests -------------------------------------------------------------------------

    def test_is_a_concrete_subclass_of_the_kind(self) -> None:
        """The class subclasses its greenflow.api ABC and implements every abstract method."""
        cls = self.plugin_class()
        abc = self.kind.abc
        assert inspect.isclass(cls) and issubclass(cls, abc), (
            f"{cls!r} must subclass greenflow.api.{abc.__name__}"
        )
        missing = sorted(getattr(cls, "__abstractmethods__", ()))
        assert not missing, (
            f"{cls.__name__} does not implement the abstract method(s) {', '.join(missing)}"
        )

    def test_config_is_a_frozen_attrs_class(self, config: Any) -> None:
        """``Config`` is a frozen attrs class and the ``config`` fixture is an instance of it."""
        cls = self.plugin_class()
        config_cls = getattr(cls, "Config", None)
        assert inspect.isclass(config_cls) and attrs.has(config_cls), (
            f"{cls.__name__}.Config must be an attrs class (@attrs.frozen), got {config_cls!r}"
        )
        assert isinstance(config, config_cls), (
            f"the `config` fixture must return a {config_cls.__name__}, got {type(config).__name__}"
        )
        fields = attrs.fields(config_cls)
        name = fields[0].name if fields else "greenflow_contract_probe"
        try:
            setattr(config, name, getattr(config, name, None))
        except attrs.exceptions.FrozenInstanceError:
            return
        except AttributeError:
            pass
        pytest.fail(
            f"{cls.__name__}.Config must be frozen (@attrs.frozen): configs are hashed, shared and stored"
        )

    def test_config_rejects_unknown_keys(self, config: Any) -> None:
        """Structuring a plan table with a key the Config lacks fails and names the key."""
        conv = _converter()
        data = dict(conv.unstructure(config))
        data[_UNKNOWN_KEY] = 1
        with pytest.raises(cattrs.errors.CattrsError) as info:
            conv.structure(data, type(config))
        exc = info.value
        text = (
            "\n".join(cattrs.transform_error(exc))
            if isinstance(exc, cattrs.BaseValidationError)
            else str(exc)
        )
        assert _UNKNOWN_KEY in text, f"the error for an unknown key must name it; got: {text}"

    def test_config_round_trips_through_the_plan_converter(self, config: Any) -> None:
        """A Config unstructured to plan values structures back to an equal Config."""
        conv = _converter()
        data = conv.unstructure(config)
        try:
            again = conv.structure(data, type(config))
        except cattrs.errors.CattrsError as exc:
            problems = (
                cattrs.transform_error(exc)
                if isinstance(exc, cattrs.BaseValidationError)
                else [str(exc)]
            )
            pytest.fail(
                f"{type(config).__name__} cannot be written in a plan: structuring its own "
                f"unstructured form fails: {'; '.join(problems)}"
            )
        assert again == config, (
            f"{type(config).__name__} does not survive unstructure → structure; use plain "
            "TOML-like field types (str, int, float, bool, lists, dicts, Duration)"
        )

    def test_construction_touches_nothing(
        self, config: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        """Constructing the plugin opens no connection, starts no process or thread, writes no file."""
        _construct_touching_nothing(
            lambda: self.make_plugin(config),
            f"{self.plugin_class().__name__}(config)",
            monkeypatch,
            tmp_path,
        )

    def test_entry_point_resolves_to_the_class(self) -> None:
        """The plugin's entry point (``entry_point_name``) loads exactly the class under test."""
        from greenflow.plugins import load

        if self.entry_point_name is None:
            pytest.skip(
                f"{type(self).__name__}.entry_point_name is not set; set it to check the registration"
            )
        loaded = load(
            self.kind, self.entry_point_name, where=f"{type(self).__name__}.entry_point_name"
        )
        assert loaded is self.plugin_class(), (
            f"{self.kind.group} entry point {self.entry_point_name!r} loads {loaded!r}, "
            f"not {self.plugin_class()!r}"
        )


class PlatformContract(_PluginContract):
    """Contract for :class:`greenflow.api.Platform`.

    Set ``platform_class``; override ``config``. Acquires real resources: for a remote
    platform, run these tests where it can reserve (and mark them as such).

    Checks: ``acquire`` returns an :class:`Inventory` of at least one host and is safe
    to retry (a second acquire gives the same hosts); state passed to
    ``ctx.record_state`` is JSON; ``release`` is safe without ``acquire`` and
    idempotent; ``release_recorded`` with the recorded state is safe after a release;
    ``describe()`` is JSON-serialisable before and after acquiring; ``check_roles``
    accepts the roles the platform itself acquired; ``capabilities`` is a frozenset of
    :class:`Capability`.
    """

    kind = Kind.PLATFORM
    platform_class: ClassVar[type[Platform]]

    @pytest.fixture
    def state(self) -> StateRecorder:
        """What the platform recorded through ``ctx.record_state``."""
        return StateRecorder()

    @pytest.fixture
    def deploy_context(self, tmp_path: Path, state: StateRecorder) -> DeployContext:
        return make_deploy_context(tmp_path / "platform", record_state=state)

    @pytest.fixture
    def platform(self, config: Any) -> Iterator[Platform]:
        """A fresh platform, released after the test whatever happened."""
        platform: Platform = self.make_plugin(config)
        try:
            yield platform
        finally:
            if self._needs_undo("acquire", "release"):
                platform.release()

    def _release(self, platform: Platform) -> None:
        self._mark("release")
        platform.release()

    def _acquire(self, platform: Platform, ctx: DeployContext) -> Inventory:
        self._mark("acquire")
        inventory = platform.acquire(ctx)
        assert isinstance(inventory, Inventory), (
            f"acquire() must return a greenflow.api.Inventory, got {type(inventory).__name__}"
        )
        assert inventory.hosts, "acquire() returned an inventory without hosts"
        for host in inventory.hosts:
            assert isinstance(host, Host) and host.name and host.address, (
                f"acquire() returned a malformed host {host!r}"
            )
        return inventory

    def test_capabilities_are_capabilities(self) -> None:
        """``capabilities`` is a frozenset of greenflow.api.Capability."""
        caps = self.platform_class.capabilities
        assert isinstance(caps, frozenset) and all(isinstance(c, Capability) for c in caps), (
            f"{self.platform_class.__name__}.capabilities must be a frozenset of Capability, got {caps!r}"
        )

    def test_acquire_returns_an_inventory(
        self, platform: Platform, deploy_context: DeployContext
    ) -> None:
        """acquire() returns an Inventory of named, addressed hosts."""
        self._acquire(platform, deploy_context)

    def test_acquire_is_safe_to_retry(
        self, platform: Platform, deploy_context: DeployContext
    ) -> None:
        """A second acquire() (a retry) returns the same hosts rather than reserving more."""
        first = self._acquire(platform, deploy_context)
        second = self._acquire(platform, deploy_context)
        assert [h.name for h in second.hosts] == [h.name for h in first.hosts], (
            f"acquire() retried returned other hosts ({[h.name for h in second.hosts]} after "
            f"{[h.name for h in first.hosts]}); a retry must reuse what the first call took"
        )

    def test_release_without_acquire_is_safe(self, platform: Platform) -> None:
        """release() before any acquire() does nothing and does not raise."""
        self._release(platform)

    def test_release_is_idempotent(self, platform: Platform, deploy_context: DeployContext) -> None:
        """release() twice after acquire() does not raise."""
        self._acquire(platform, deploy_context)
        self._release(platform)
        platform.release()

    def test_release_recorded_after_release_is_safe(
        self, platform: Platform, deploy_context: DeployContext, state: StateRecorder
    ) -> None:
        """release_recorded(config, recorded state) after a release does not raise (greenflow down twice)."""
        self._acquire(platform, deploy_context)
        self._release(platform)
        type(platform).release_recorded(platform.config, state.state)

    def test_describe_is_json_serialisable(
        self, platform: Platform, deploy_context: DeployContext
    ) -> None:
        """describe() returns a JSON-serialisable mapping before and after acquire()."""
        _assert_json(platform.describe(), "describe() before acquire()")
        self._acquire(platform, deploy_context)
        _assert_json(platform.describe(), "describe() after acquire()")

    def test_check_roles_accepts_acquired_roles(
        self, platform: Platform, deploy_context: DeployContext
    ) -> None:
        """check_roles() returns None for the roles the platform's own inventory carries."""
        inventory = self._acquire(platform, deploy_context)
        reason = platform.check_roles(inventory.roles)
        assert reason is None, (
            f"check_roles({sorted(inventory.roles)}) refused roles acquire() provides: {reason}"
        )


class ServiceContract(_PluginContract):
    """Contract for :class:`greenflow.api.Service`.

    Set ``service_class``; override ``config``. The ``platform`` fixture gives the
    (not yet acquired) platform to deploy onto: by default greenflow's built-in
    ``local`` platform, or a skip saying why when it does not load; override it for a
    service that needs Kubernetes or SSH. ``inventory`` acquires it and releases it
    after the test. Each lifecycle test deploys once, so a slow service costs two
    deploys in all.

    Class attributes: ``service_name`` (the plan name, default ``"contract"``),
    ``ready_timeout_s`` (passed to ``wait_ready``, default 120), ``remove_grace_s``
    (how long processes may take to vanish after ``remove`` returns, default 5),
    ``expects_processes`` (default True: on a platform with local processes,
    ``processes()`` must name at least one pid after ``wait_ready``), and the deadlines
    ``deploy_timeout_s`` (default 120) and ``remove_timeout_s`` (default 60);
    ``wait_ready`` must give up within ``ready_timeout_s`` + ``ready_grace_s`` (default 10).

    Checks: deploy → wait_ready → ``endpoints()`` non-empty ``str → str`` → ``health()``
    None → ``processes()`` pids exist → ``describe()`` JSON → ``remove()`` leaves no
    process of the service (or their children) alive → ``remove()`` again is a no-op;
    deploy recorded JSON state if it started processes; ``remove_recorded`` with that
    state alone stops everything (the ``greenflow down`` path after a crash);
    ``remove()`` without deploy is safe. Every step has its deadline: a hung ``deploy``,
    a ``wait_ready`` that ignores its timeout or a hung ``remove`` fails the check naming
    the step, after the contract stopped the service by force (``remove``,
    ``remove_recorded``, then SIGKILL of any process it started), instead of hanging.
    """

    kind = Kind.SERVICE
    service_class: ClassVar[type[Service]]
    service_name: ClassVar[str] = "contract"
    ready_timeout_s: ClassVar[float] = 120.0
    remove_grace_s: ClassVar[float] = 5.0
    expects_processes: ClassVar[bool] = True
    deploy_timeout_s: ClassVar[float] = 120.0
    remove_timeout_s: ClassVar[float] = 60.0
    ready_grace_s: ClassVar[float] = 10.0
    _deployment: _Deployment | None = None

    def make_plugin(self, config: Any) -> Any:
        return self.plugin_class()(self.service_name, config)

    @pytest.fixture
    def platform(self) -> Platform:
        """Override to deploy onto another platform (return it un-acquired)."""
        return _local_platform(f"{type(self).__name__}.platform (greenflow.testing)")

    @pytest.fixture
    def inventory(self, platform: Platform, tmp_path: Path) -> Iterator[Inventory]:
        """The platform acquired; released after the test."""
        requires = self.service_class.requires
        if requires and not requires & platform.capabilities:
            pytest.skip(
                f"{self.service_class.__name__} requires one of {sorted(c.value for c in requires)}; "
                f"the platform offers {sorted(c.value for c in platform.capabilities)}"
            )
        try:
            yield platform.acquire(make_deploy_context(tmp_path / "platform"))
        finally:
            platform.release()

    @pytest.fixture
    def service(self, config: Any) -> Iterator[Service]:
        """A fresh service, removed after the test whatever happened (under its deadline)."""
        service: Service = self.make_plugin(config)
        try:
            yield service
        finally:
            d = self._deployment
            if self._needs_undo("deploy", "remove") and d is not None and not d.removed:
                self._step(d, "remove", service.remove)

    def _step(self, d: _Deployment, step: str, call: Callable[[], object]) -> None:
        if step == "remove":
            self._mark("remove")
        timeout, knob = {
            "deploy": (self.deploy_timeout_s, "deploy_timeout_s"),
            "wait_ready": (
                self.ready_timeout_s + self.ready_grace_s,
                "ready_timeout_s + ready_grace_s",
            ),
            "remove": (self.remove_timeout_s, "remove_timeout_s"),
        }[step]
        d.step(step, call, timeout, knob, self.remove_timeout_s)

    def _deploy_ready(
        self, platform: Platform, inventory: Inventory, service: Service, tmp_path: Path
    ) -> tuple[StateRecorder, list[int]]:
        state = StateRecorder()
        ctx = make_deploy_context(tmp_path / "service", record_state=state)
        d = self._deployment = _Deployment(service, state, ctx, time.time())
        self._mark("deploy")
        self._step(d, "deploy", lambda: service.deploy(platform, inventory, ctx))
        self._step(d, "wait_ready", lambda: service.wait_ready(self.ready_timeout_s))
        pids = _check_process_groups(service.processes(), "processes()")
        if self.expects_processes and Capability.LOCAL_PROCESSES in platform.capabilities:
            assert pids, (
                "processes() named no pid on a platform with local processes: energy cannot be "
                f"attributed to the service (set expects_processes = False on {type(self).__name__} "
                "if it really starts none)"
            )
        dead = [pid for pid in pids if not psutil.pid_exists(pid)]
        assert not dead, f"processes() names pids that do not exist: {dead}"
        if pids:
            assert state.calls, (
                "deploy() started processes but never called ctx.record_state: after a crash "
                "greenflow down could not stop them"
            )
        return state, pids

    def test_remove_without_deploy_is_safe(self, service: Service) -> None:
        """remove() on a service never deployed does nothing and does not raise."""
        service.remove()

    def test_deploy_ready_endpoints_processes_remove(
        self, platform: Platform, inventory: Inventory, service: Service, tmp_path: Path
    ) -> None:
        """The whole lifecycle: deploy, wait_ready, endpoints, processes, remove (twice) leaves nothing."""
        state, pids = self._deploy_ready(platform, inventory, service, tmp_path)
        endpoints = service.endpoints()
        assert isinstance(endpoints, Mapping) and endpoints, (
            f"endpoints() must be a non-empty mapping once ready, got {endpoints!r}"
        )
        for key, value in endpoints.items():
            assert isinstance(key, str) and key and isinstance(value, str) and value, (
                f"endpoints() must map names to addresses (non-empty strings), got {key!r}: {value!r}"
            )
        health = service.health()
        assert health is None, f"health() reports a problem right after wait_ready(): {health}"
        _assert_json(service.describe(), "describe()")
        tree = _process_tree(pids)
        assert self._deployment is not None
        self._step(self._deployment, "remove", service.remove)
        alive = _wait_gone(tree, self.remove_grace_s)
        assert not alive, (
            f"remove() returned but these processes of the service are still alive: {', '.join(alive)}"
        )
        service.remove()
        type(service).remove_recorded(service.config, state.state)

    def test_remove_recorded_stops_a_deployment_left_behind(
        self, platform: Platform, inventory: Inventory, service: Service, tmp_path: Path
    ) -> None:
        """remove_recorded(config, recorded state), with the service object forgotten, stops every process."""
        state, pids = self._deploy_ready(platform, inventory, service, tmp_path)
        tree = _process_tree(pids)
        type(service).remove_recorded(service.config, state.state)
        alive = _wait_gone(tree, self.remove_grace_s)
        assert not alive, (
            f"remove_recorded() with the state deploy() recorded (keys {sorted(state.state)}) left "
            f"processes alive: {', '.join(alive)}; greenflow down after a crash relies on it"
        )


class WorkloadContract(_PluginContract):
    """Contract for :class:`greenflow.api.Workload`.

    Set ``workload_class``; override ``config``. Fixtures to override when needed:
    ``services_to_deploy`` (services by plan name, not yet deployed: the contract deploys
    them on the local platform for each test with :func:`deploy_services` and removes them
    after), or ``services`` itself (deployed, ready services by plan name, default none:
    override it to share one deployment across the module, or to deploy elsewhere),
    ``params`` (the run's sweep point, default ``{}``), ``run_context`` (built with
    :func:`make_run_context`) and ``cancel_config`` (the config the cancel check runs,
    default ``config``: give it a run of a few seconds). The contract plays the runner: it
    records PREPARE before ``prepare`` and CLEAN before ``clean``, as the runner does.

    Class attributes: ``remove_grace_s`` (how long load-generator processes may take to
    vanish after ``clean``, default 5), ``cancel_after_s`` (when, after ``execute`` starts,
    the cancel check sets ``ctx.cancel``, default 0.5) and ``cancel_grace_s`` (how soon
    after that ``execute`` must return or raise, default 5).

    Checks: ``validate`` accepts the fixture's services; prepare → execute → clean where
    execute enters MEASURE exactly once and COOLDOWN after it (WARMUP, if any, before
    MEASURE; nothing else) and returns a valid :class:`WorkloadResult` with units ≥ 0 and
    a rate over MEASURE; load-generator pids from ``processes()`` are gone after
    ``clean``; ``clean`` is idempotent, and safe after ``prepare`` alone or without it (a run that
    failed or was interrupted: the runner always calls ``clean``); ``execute`` stops within
    ``cancel_grace_s`` once ``ctx.cancel`` is set (Ctrl-C, SIGTERM), and ``clean`` then
    stops its load generator.
    """

    kind = Kind.WORKLOAD
    workload_class: ClassVar[type[Workload]]
    remove_grace_s: ClassVar[float] = 5.0
    cancel_after_s: ClassVar[float] = 0.5
    cancel_grace_s: ClassVar[float] = 5.0

    @pytest.fixture
    def services_to_deploy(self) -> Mapping[str, Service]:
        """Services by plan name, not deployed yet (``{"foo": FooService("foo", FooConfig())}``),
        that the default ``services`` fixture deploys on the local platform; none by default."""
        return {}

    @pytest.fixture
    def services(
        self, services_to_deploy: Mapping[str, Service], tmp_path: Path
    ) -> Iterator[Mapping[str, Service]]:
        """Deployed, ready services by plan name: ``services_to_deploy``, deployed with
        :func:`deploy_services` for this test and removed after it."""
        if not services_to_deploy:
            yield {}
            return
        with deploy_services(services_to_deploy, tmp_path / "services") as deployed:
            yield deployed

    @pytest.fixture
    def cancel_config(self, config: Any) -> Any:
        """The config the cancel check runs: ``config`` by default. Override it with one whose
        ``execute`` lasts well beyond ``cancel_after_s`` (a few seconds), so that there is
        something to cancel."""
        return config

    @pytest.fixture
    def params(self) -> Mapping[str, Any]:
        """The run's sweep point (axis name → value); ``{}``, as for a plan without sweeps.

        The workload's own settings come from its config, never from here."""
        return {}

    @pytest.fixture
    def run_context(
        self, tmp_path: Path, params: Mapping[str, Any], services: Mapping[str, Service]
    ) -> RunContext:
        return make_run_context(tmp_path / "run", params=params, services=services)

    @pytest.fixture
    def workload(self, config: Any, run_context: RunContext) -> Iterator[Workload]:
        """A fresh workload; ``clean`` runs after the test whatever happened, as in the runner."""
        workload: Workload = self.make_plugin(config)
        try:
            yield workload
        finally:
            if self._needs_undo("prepare", "clean"):
                workload.clean(run_context)

    def _prepare(self, workload: Workload, ctx: RunContext) -> None:
        ctx.phases.enter(Phase.PREPARE)
        self._mark("prepare")
        workload.prepare(ctx)

    def _execute(self, workload: Workload, ctx: RunContext) -> tuple[WorkloadResult, Window]:
        mark = len(ctx.phases.boundaries)
        result = workload.execute(ctx)
        entered = list(ctx.phases.boundaries[mark:])
        phases = [p for p, _ in entered]
        allowed = (Phase.WARMUP, Phase.MEASURE, Phase.COOLDOWN)
        others = [p.value for p in phases if p not in allowed]
        assert not others, (
            f"execute() may enter only warmup, measure and cooldown; it entered {others}"
        )
        assert phases.count(Phase.MEASURE) == 1, (
            f"execute() must enter Phase.MEASURE exactly once; it entered {[p.value for p in phases]}"
        )
        assert phases.count(Phase.COOLDOWN) == 1, (
            f"execute() must enter Phase.COOLDOWN once, when MEASURE ends; it entered {[p.value for p in phases]}"
        )
        i_measure, i_cooldown = phases.index(Phase.MEASURE), phases.index(Phase.COOLDOWN)
        assert i_cooldown > i_measure, "execute() entered COOLDOWN before MEASURE"
        assert all(phases.index(Phase.WARMUP) < i_measure for p in phases if p == Phase.WARMUP), (
            "execute() entered WARMUP after MEASURE"
        )
        stamps = [t for _, t in entered]
        assert stamps == sorted(stamps), f"phase timestamps go backwards: {entered}"
        measure = Window(entered[i_measure][1], entered[i_cooldown][1])
        assert_valid_result(result, measure)
        return result, measure

    def _clean(self, workload: Workload, ctx: RunContext) -> None:
        ctx.phases.enter(Phase.CLEAN)
        self._mark("clean")
        workload.clean(ctx)

    def test_validate_accepts_the_services(
        self, workload: Workload, services: Mapping[str, Service]
    ) -> None:
        """validate() returns None for the fixture's services (it is called for every run)."""
        reason = workload.validate({name: s.config for name, s in services.items()})
        assert reason is None, f"validate() refused the test's own setup: {reason}"

    def test_prepare_execute_clean(self, workload: Workload, run_context: RunContext) -> None:
        """prepare, execute (MEASURE once, then COOLDOWN, valid result), clean stops the load generator."""
        self._prepare(workload, run_context)
        self._execute(workload, run_context)
        tree = _process_tree(_check_process_groups(workload.processes(), "processes()"))
        self._clean(workload, run_context)
        alive = _wait_gone(tree, self.remove_grace_s)
        assert not alive, (
            f"clean() returned but load-generator processes are still alive: {', '.join(alive)}"
        )

    def test_clean_is_idempotent(self, workload: Workload, run_context: RunContext) -> None:
        """clean() twice after a run does not raise."""
        self._prepare(workload, run_context)
        self._execute(workload, run_context)
        self._clean(workload, run_context)
        workload.clean(run_context)

    def test_clean_without_prepare_is_safe(
        self, workload: Workload, run_context: RunContext
    ) -> None:
        """clean() on a workload never prepared (prepare failed at once) does not raise."""
        self._clean(workload, run_context)

    def test_clean_after_prepare_alone_is_safe(
        self, workload: Workload, run_context: RunContext
    ) -> None:
        """clean() right after prepare() (a run that failed or was interrupted) does not raise."""
        self._prepare(workload, run_context)
        self._clean(workload, run_context)

    @pytest.fixture
    def cancel_workload(self, cancel_config: Any, run_context: RunContext) -> Iterator[Workload]:
        """A fresh workload built from ``cancel_config``; cleaned after the test as in the runner."""
        workload: Workload = self.make_plugin(cancel_config)
        try:
            yield workload
        finally:
            if self._needs_undo("prepare", "clean"):
                workload.clean(run_context)

    def test_execute_stops_promptly_when_cancelled(
        self, cancel_workload: Workload, run_context: RunContext
    ) -> None:
        """Once ctx.cancel is set (Ctrl-C), execute() returns or raises within cancel_grace_s and clean() stops its load generator."""
        workload, ctx = cancel_workload, run_context
        self._prepare(workload, ctx)
        timer = threading.Timer(self.cancel_after_s, ctx.cancel.set)
        timer.daemon = True
        tree: list[tuple[int, float, str]] = []

        def note_processes(_phase: Phase, _at: float) -> None:
            tree.extend(_process_tree(_check_process_groups(workload.processes(), "processes()")))

        ctx.phases = PhaseRecorder(note_processes)  # the load generator as MEASURE starts
        ended = "returned"
        timer.start()
        try:
            with _deadline(self.cancel_after_s + self.cancel_grace_s):
                workload.execute(ctx)
        except _Overdue:
            ended = "overdue"
        except KeyboardInterrupt:  # what ctx.sleep raises on cancel, as the runner expects
            ended = "interrupted"
        except GreenFlowError:  # a WorkloadError saying it was interrupted is fine too
            ended = "failed"
        finally:
            timer.cancel()
        cancelled = ctx.cancel.is_set()
        tree.extend(_process_tree(_check_process_groups(workload.processes(), "processes()")))
        self._clean(workload, ctx)
        alive = _wait_gone(tree, self.remove_grace_s)
        assert cancelled, (
            f"execute() {ended} before the contract set ctx.cancel ({self.cancel_after_s:g} s "
            "after it started), so nothing was checked: override the `cancel_config` fixture "
            f"on {type(self).__name__} with a config that runs for a few seconds"
        )
        assert ended != "overdue", (
            f"execute() was still running {self.cancel_grace_s:g} s after ctx.cancel was set "
            "(Ctrl-C, SIGTERM): wait with ctx.sleep or ctx.cancel.wait, check ctx.cancel "
            "between steps, and stop the load generator when it is set (cancel_grace_s)"
        )
        assert not alive, (
            f"after a cancelled execute(), clean() left load-generator processes alive: {', '.join(alive)}"
        )


class CollectorContract(_PluginContract):
    """Contract for :class:`greenflow.api.Collector`.

    Set ``collector_class``; override ``config`` and, if needed, ``collector_context``
    (default: this host, this test process as attribution group ``"contract"``). When
    ``start`` raises ``CollectorError`` (its source is unreadable here, e.g. RAPL
    without root) the sampling tests skip with that message, after checking ``stop``
    is still safe.

    The contract plays the runner: after ``start``, a lead-in of a quarter window (the
    runner starts collectors well before any window), then ``mark()`` at the window's start
    and at its end, and ``collect(window)`` right after the end — no grace.

    Class attributes: ``collector_name`` (default ``"contract"``), ``window_s`` (length
    of the collected window, default 1 s), ``expects_samples`` (default True: the window
    yields at least one sample), ``energy_methods`` (accepted methods of energy and power
    samples besides ``model:<name>``), ``other_energy_metrics`` (``*_joules`` names the
    collector emits that are not meant as a run's energy, default none).

    Checks: start → collect(window) → stop where the samples pass
    :func:`assert_valid_samples` (Sample values, per-series time order, boundary
    samples only, energy/power samples carry a real method, joule counters never
    decrease); every series is read at or before the window's start and at or after its
    end (:func:`assert_window_edges`: a collector sampling only in a background thread
    fails it); energy uses the names the runner reads (:func:`assert_energy_metrics`);
    ``stop`` is idempotent and safe without ``start``; ``describe()`` is JSON.
    """

    kind = Kind.COLLECTOR
    collector_class: ClassVar[type[Collector]]
    collector_name: ClassVar[str] = "contract"
    window_s: ClassVar[float] = 1.0
    expects_samples: ClassVar[bool] = True
    energy_methods: ClassVar[frozenset[str]] = ENERGY_METHODS
    other_energy_metrics: ClassVar[frozenset[str]] = frozenset()

    def make_plugin(self, config: Any) -> Any:
        return self.plugin_class()(self.collector_name, config)

    @pytest.fixture
    def collector_context(self) -> CollectorContext:
        return make_collector_context()

    @pytest.fixture
    def collector(self, config: Any) -> Iterator[Collector]:
        """A fresh collector, stopped after the test whatever happened."""
        collector: Collector = self.make_plugin(config)
        try:
            yield collector
        finally:
            if self._needs_undo("start", "stop"):
                collector.stop()

    def _stop(self, collector: Collector) -> None:
        self._mark("stop")
        collector.stop()

    def _start(self, collector: Collector, ctx: CollectorContext) -> None:
        self._mark("start")
        try:
            collector.start(ctx)
        except CollectorError as exc:
            self._stop(
                collector
            )  # must be safe after a failed start: the runner calls it in finally
            pytest.skip(
                f"{type(collector).__name__} cannot read its source here (CollectorError from start): {exc}"
            )

    def test_stop_without_start_is_safe(self, collector: Collector) -> None:
        """stop() on a collector never started does not raise."""
        self._stop(collector)

    def _collect_a_window(
        self, collector: Collector, ctx: CollectorContext
    ) -> tuple[Sequence[Sample], Window]:
        """start, a lead-in, mark() at the window's start and end, collect() at once, stop."""
        self._start(collector, ctx)
        time.sleep(self.window_s / 4)
        start = time.time()  # the runner takes the boundary's time, then marks
        collector.mark()
        time.sleep(self.window_s)
        end = time.time()
        collector.mark()
        window = Window(start, end)
        samples = collector.collect(window)
        self._stop(collector)
        return samples, window

    def test_start_collect_stop(
        self, collector: Collector, collector_context: CollectorContext
    ) -> None:
        """Samples collected over a window are valid, ordered, bounded and honest about their method."""
        samples, window = self._collect_a_window(collector, collector_context)
        assert_valid_samples(samples, window, energy_methods=self.energy_methods)
        if self.expects_samples:
            assert samples, (
                f"collect() returned no sample for a {self.window_s:g}s window (set "
                f"expects_samples = False on {type(self).__name__} if that is right)"
            )

    def test_collect_right_at_the_window_end_covers_both_edges(
        self, collector: Collector, collector_context: CollectorContext
    ) -> None:
        """Called right as a window ends, as the runner does, collect() has every series read at or before its start and at or after its end."""
        samples, window = self._collect_a_window(collector, collector_context)
        assert_window_edges(samples, window)

    def test_energy_uses_names_the_runner_reads(
        self, collector: Collector, collector_context: CollectorContext
    ) -> None:
        """Energy comes as energy_joules{domain}, host_energy_joules or pod_energy_joules, never as power alone."""
        samples, _window = self._collect_a_window(collector, collector_context)
        assert_energy_metrics(samples, other_energy_metrics=self.other_energy_metrics)

    def test_stop_is_idempotent(
        self, collector: Collector, collector_context: CollectorContext
    ) -> None:
        """stop() twice after start() does not raise."""
        self._start(collector, collector_context)
        self._stop(collector)
        collector.stop()

    def test_describe_is_json_serialisable(
        self, collector: Collector, collector_context: CollectorContext
    ) -> None:
        """describe() returns a JSON-serialisable mapping before and after start()."""
        _assert_json(collector.describe(), "describe() before start()")
        self._start(collector, collector_context)
        _assert_json(collector.describe(), "describe() after start()")


class ProtocolContract(_PluginContract):
    """Contract for :class:`greenflow.api.Protocol`.

    Set ``protocol_class``; override ``config``. The protocol is driven against a
    simulated system that achieves ``min(asked, capacity)`` (class attribute
    ``capacity``, default 5000) for ``repetitions`` (default 2).

    Checks: ``axis`` is a string or None; ``next_steps`` terminates within ``max_steps``
    (default 200) probes, is deterministic (the runner replays stored probes on resume),
    returns :class:`~greenflow.api.Step` values; ``conclusion`` is JSON-serialisable.
    """

    kind = Kind.PROTOCOL
    protocol_class: ClassVar[type[Protocol]]
    capacity: ClassVar[float] = 5000.0
    repetitions: ClassVar[int] = 2
    max_steps: ClassVar[int] = 200

    def _drive(self, protocol: Protocol) -> list[Probe]:
        probes: list[Probe] = []
        while steps := protocol.next_steps(probes, self.repetitions):
            for step in steps:
                assert isinstance(step, Step), f"next_steps returned {step!r}, not a Step"
                achieved = (
                    0.0
                    if step.idle or step.value is None
                    else min(float(step.value), self.capacity)
                )
                probes.append(
                    Probe(
                        step.value,
                        step.repetition,
                        "finished",
                        WorkloadResult(units=achieved, achieved_rate=achieved),
                    )
                )
            assert len(probes) <= self.max_steps, (
                f"{type(protocol).__name__} asked for more than {self.max_steps} runs "
                f"against a system of capacity {self.capacity:g}: does it terminate?"
            )
        return probes

    def test_axis_is_a_name_or_none(self, config: Any) -> None:
        """axis names a workload parameter (a string) or is None."""
        axis = self.make_plugin(config).axis
        assert axis is None or (isinstance(axis, str) and axis)

    def test_terminates_and_concludes(self, config: Any) -> None:
        """Driven against a simulated system, it stops and its conclusion is JSON."""
        protocol = self.make_plugin(config)
        probes = self._drive(protocol)
        assert probes, "next_steps([]) returned nothing: a protocol must run something"
        _assert_json(protocol.conclusion(probes), "conclusion()")

    def test_next_steps_is_deterministic(self, config: Any) -> None:
        """The same probes give the same steps: resume replays stored probes."""
        protocol = self.make_plugin(config)
        probes = self._drive(protocol)
        for i in range(len(probes) + 1):
            assert protocol.next_steps(probes[:i], self.repetitions) == self.make_plugin(
                config
            ).next_steps(list(probes[:i]), self.repetitions)
