"""The sampling collectors: ``rapl``, ``model`` and ``process``.

```toml
[[collectors]]
type = "rapl"            # or "model" where there is no RAPL (VMs, containers)
interval_s = 1.0

[[collectors]]
type = "process"         # CPU seconds per attribution group, for energy shares
```

Each samples in a daemon thread from :meth:`start` to :meth:`stop`, every ``interval_s``
seconds, and keeps ``retention_s`` seconds of samples (older ones are dropped).
:meth:`collect` returns the samples of a window plus the last one at or before its start
and the first one at or after its end; when the newest sample is older than the window's
end it takes one more at once, so a window that has ended is always covered. Samples
carry the host name from ``host``, else the inventory host that is this machine (its
name is this hostname or its address is local), else this machine's hostname.

What each produces (host-level, cumulative unless marked gauge):

* ``rapl`` — ``energy_joules{domain}`` per powercap zone, method ``rapl``
  (see :mod:`greenflow.measure.rapl` for domains, wraps and the host energy rule).
* ``model`` — ``energy_joules{domain="host"}``, method ``model:<name>``
  (see :mod:`greenflow.measure.model` for the model and its defaults).
* ``process`` — ``cpu_seconds{group}`` for ``group="host"`` (busy CPU time of the
  host) and for each attribution group; per group also ``rss_bytes`` (gauge) and
  ``io_read_bytes``/``io_write_bytes`` where readable. Method ``procfs`` or ``psutil``
  (see :mod:`greenflow.measure.processes`).
"""

from __future__ import annotations

import math
import socket
import threading
import time
from abc import abstractmethod
from bisect import bisect_left, bisect_right
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import attrs
import structlog

from greenflow.api import Collector, CollectorContext, ProcessGroups, Sample, Window
from greenflow.errors import CollectorError
from greenflow.measure.attribution import HOST_GROUP
from greenflow.measure.model import (
    CpuInfo,
    CpuMatch,
    HostCpuReader,
    ModelEnergyMeter,
    PowerModel,
    lookup_cpu_power,
)
from greenflow.measure.processes import BACKENDS, ProcessTracker
from greenflow.measure.rapl import ASSUMED_MAX_POWER_WATTS, DEFAULT_ROOT, RaplReader
from greenflow.plan.validators import non_negative, one_of, positive

log = structlog.get_logger("greenflow.collectors")

_LOCAL_ADDRESSES = {"127.0.0.1", "::1", "localhost"}


@attrs.frozen
class SamplingConfig:
    """Settings every sampling collector shares."""

    #: Seconds between samples.
    interval_s: float = attrs.field(default=1.0, validator=positive)
    #: Seconds of samples kept in memory; collect each window before this much time passes.
    retention_s: float = attrs.field(default=6 * 3600.0, validator=positive)
    #: Host name on the samples; empty: worked out from the inventory (module docstring).
    host: str = ""


@attrs.frozen
class _Series:
    """What a sample is, less its time and value: shared by every tick, to keep memory low."""

    metric: str
    unit: str
    method: str
    labels: tuple[tuple[str, str], ...] = ()


_Reading = tuple[tuple[_Series, ...], tuple[float, ...]]
# (time, series, values). Consecutive ticks share one series tuple, and a tuple of floats
# is left alone by the garbage collector: hours of ticks cost little memory and no GC time.
_Tick = tuple[float, tuple[_Series, ...], tuple[float, ...]]


def _host_name(ctx: CollectorContext, configured: str) -> str:
    if configured:
        return configured
    # Samples are read on this machine: they belong to the inventory host that is this
    # machine, never to another one (a cluster node, a remote SSH host) just because it is
    # the only host.
    me = socket.gethostname()
    for h in ctx.inventory.hosts:
        if h.name == me or h.address in _LOCAL_ADDRESSES or h.address == me:
            return h.name
    return me


class _SamplingCollector(Collector):
    """Samples in a daemon thread; keeps ticks (one timestamp, many series) in a deque."""

    config: SamplingConfig

    def __init__(self, name: str, config: SamplingConfig) -> None:
        super().__init__(name, config)
        self.host = ""
        self._lock = threading.Lock()
        self._ticks: deque[_Tick] = deque(
            maxlen=math.ceil(config.retention_s / config.interval_s) + 2
        )
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_error: str | None = None
        self._last_series: tuple[_Series, ...] = ()

    @abstractmethod
    def _open(self, ctx: CollectorContext) -> None:
        """Prepare the source; raise CollectorError when it cannot be read."""

    @abstractmethod
    def _read(self, now: float) -> _Reading:
        """One reading of every series, as of ``now``: the series and their values."""

    def _close(self) -> None:
        """Release the source."""

    def start(self, ctx: CollectorContext) -> None:
        if self._thread is not None:
            raise CollectorError(f"collector {self.name!r} is already started")
        self.host = _host_name(ctx, self.config.host)
        self._open(ctx)
        try:
            with self._lock:  # the first reading tells at once whether the source is readable
                self._sample()
        except BaseException:
            self._close()
            raise
        self._stopping.clear()
        self._thread = threading.Thread(
            target=self._run, name=f"greenflow-collector-{self.name}", daemon=True
        )
        self._thread.start()

    def _sample(self) -> None:
        """Read every series and keep the tick; the caller holds the lock."""
        now = time.time()
        try:
            series, values = self._read(now)
        except CollectorError:
            raise
        except Exception as exc:
            msg = f"collector {self.name!r}: reading failed: {type(exc).__name__}: {exc}"
            raise CollectorError(msg) from exc
        last = self._last_series
        if series is not last:
            if len(series) == len(last) and all(a is b for a, b in zip(series, last, strict=True)):
                series = last
            else:
                self._last_series = series
        self._ticks.append((now, series, values))

    def _run(self) -> None:
        interval = self.config.interval_s
        due = time.monotonic() + interval
        while not self._stopping.wait(max(0.0, due - time.monotonic())):
            try:
                with self._lock:
                    self._sample()
            except CollectorError as exc:  # keep sampling: the next read may work again
                error = str(exc)
                if error != self._last_error:
                    log.warning("collector.read_failed", collector=self.name, error=error)
                self._last_error = error
            else:
                self._last_error = None
            due += interval
            if due < time.monotonic():  # fell behind (suspend, overload): skip, don't burst
                due = time.monotonic() + interval

    def health(self) -> str | None:
        """Unhealthy when the sampling thread is gone while the collector should sample."""
        thread = self._thread
        if thread is None or self._stopping.is_set() or thread.is_alive():
            return None
        last = f" (last error: {self._last_error})" if self._last_error else ""
        return f"its sampling thread stopped{last}"

    def mark(self) -> None:
        """Take a sample now: the phase boundary the runner just crossed is on a reading."""
        with self._lock:
            if self._thread is None or self._stopping.is_set():
                return
            try:
                self._sample()
            except CollectorError as exc:  # the next tick may read again; never raise here
                self._last_error = str(exc)
                log.warning("collector.read_failed", collector=self.name, error=str(exc))

    def collect(self, window: Window) -> Sequence[Sample]:
        with self._lock:
            running = self._thread is not None and not self._stopping.is_set()
            if running and (not self._ticks or self._ticks[-1][0] < window.end):
                try:
                    self._sample()  # so that the window's end is covered
                except CollectorError as exc:
                    # What is there is still worth having; integration says if the end is missing.
                    self._last_error = str(exc)
                    log.warning("collector.read_failed", collector=self.name, error=str(exc))
            ticks = list(self._ticks)
        times = [t for t, _, _ in ticks]
        first = max(0, bisect_right(times, window.start) - 1)
        last = min(len(ticks) - 1, bisect_left(times, window.end))
        host = self.host
        return [
            Sample(t, s.metric, value, s.unit, s.method, host, dict(s.labels))
            for t, series, values in ticks[first : last + 1]
            for s, value in zip(series, values, strict=True)
        ]

    def stop(self) -> None:
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stopping.set()
        thread.join(timeout=30)
        with self._lock:
            self._close()

    def describe(self) -> Mapping[str, Any]:
        facts: dict[str, Any] = {"interval_s": self.config.interval_s, "host": self.host}
        if self._last_error:
            facts["last_error"] = self._last_error
        return facts


# --------------------------------------------------------------------------------- rapl


@attrs.frozen
class RaplConfig(SamplingConfig):
    """``[[collectors]] type = "rapl"``: RAPL counters through powercap."""

    #: Where powercap zones are; a copy of that tree works too.
    root: str = DEFAULT_ROOT
    #: Highest power a zone may draw, only to compute wrap times (interval_s must stay
    #: below half the shortest).
    max_power_watts: float = attrs.field(default=ASSUMED_MAX_POWER_WATTS, validator=positive)


class RaplCollector(_SamplingCollector):
    """Per-zone energy from RAPL (``energy_joules{domain}``, method ``rapl``).

    :meth:`start` raises :class:`~greenflow.errors.CollectorError` when there are no
    zones (typical in VMs: use ``model``), when ``energy_uj`` is not readable (root-only
    on current kernels), or when ``interval_s`` is too long to see every wrap.
    """

    Config: ClassVar[type] = RaplConfig
    config: RaplConfig

    def __init__(self, name: str, config: RaplConfig) -> None:
        super().__init__(name, config)
        self._reader: RaplReader | None = None
        self._series: tuple[_Series, ...] = ()

    def _open(self, ctx: CollectorContext) -> None:
        reader = RaplReader(self.config.root, max_power_watts=self.config.max_power_watts)
        wrap = reader.min_wrap_time_s
        if self.config.interval_s > wrap / 2:
            msg = (
                f"collector {self.name!r}: interval_s = {self.config.interval_s:g} is too "
                f"long; a RAPL counter under {reader.root} can wrap in {wrap:.3g} s at "
                f"{reader.max_power_watts:g} W, and two wraps between samples look like "
                f"one. Use interval_s ≤ {wrap / 2:.3g}."
            )
            raise CollectorError(msg)
        self._reader = reader
        self._series = tuple(
            _Series("energy_joules", "joules", "rapl", (("domain", z.domain),))
            for z in reader.zones
        )

    def _read(self, now: float) -> _Reading:
        assert self._reader is not None
        reader = self._reader
        seen = len(reader.unsafe_gaps)
        values = tuple(reader.read(now).values())  # in zone order
        if len(reader.unsafe_gaps) > seen:
            gap, domains = reader.unsafe_gaps[-1]
            log.warning(
                "rapl.unsafe_gap",
                collector=self.name,
                gap_s=round(gap, 1),
                domains=domains,
                reason="a counter may have wrapped more than once between these reads: the "
                "energy across the gap is a lower bound",
            )
        return self._series, values

    def describe(self) -> Mapping[str, Any]:
        facts = dict(super().describe())
        reader = self._reader
        if reader is not None:
            wraps = reader.wrap_times_s
            facts.update(
                root=str(reader.root),
                zones=[
                    {
                        "zone": z.zone,
                        "name": z.name,
                        "domain": z.domain,
                        "max_energy_range_uj": z.max_energy_range_uj,
                        "wrap_time_s": round(wraps[z.domain], 3),
                    }
                    for z in reader.zones
                ],
                host_domains=reader.host_domains,
                wraps_seen=dict(reader.wraps),
                unsafe_gaps=[{"gap_s": round(g, 3), "domains": d} for g, d in reader.unsafe_gaps],
            )
        return facts


# -------------------------------------------------------------------------------- model


@attrs.frozen
class ModelConfig(SamplingConfig):
    """``[[collectors]] type = "model"``: power estimated from CPU utilisation.

    Unset watts default per logical CPU from the table entry for the CPU this machine
    reports, else a generic 1 W idle, 4 W at full load (:mod:`greenflow.measure.model`,
    docs/measurement.md). Set both from a measurement of your hardware when you can.
    """

    #: Power of the idle host, in watts.
    idle_watts: float | None = attrs.field(default=None, validator=non_negative)
    #: Power with every CPU busy, in watts.
    max_watts: float | None = attrs.field(default=None, validator=non_negative)
    #: Curvature: 1 is linear.
    exponent: float = attrs.field(default=1.0, validator=positive)
    #: The method is ``model:<model>``; default ``linear`` (exponent 1) or ``power``. Not
    #: ``name``: in a plan, ``name`` names the collector itself.
    model: str | None = None


class ModelCollector(_SamplingCollector):
    """Host energy from a utilisation model (``energy_joules{domain="host"}``, ``model:<name>``)."""

    Config: ClassVar[type] = ModelConfig
    config: ModelConfig

    def __init__(self, name: str, config: ModelConfig) -> None:
        super().__init__(name, config)
        self._meter: ModelEnergyMeter | None = None
        self._series: tuple[_Series, ...] = ()
        self._cpu: CpuInfo | None = None
        self._cpu_match: CpuMatch | None = None

    def _open(self, ctx: CollectorContext) -> None:
        c = self.config
        cpu = CpuInfo.read()
        match = lookup_cpu_power(cpu)
        try:
            model = PowerModel.for_host(
                idle_watts=c.idle_watts,
                max_watts=c.max_watts,
                exponent=c.exponent,
                name=c.model,
                cpus=cpu.logical_cpus,
                cpu_power=match.entry,
            )
        except ValueError as exc:
            raise CollectorError(f"collector {self.name!r}: {exc}") from None
        self._cpu, self._cpu_match = cpu, match
        self._meter = ModelEnergyMeter(model)
        self._series = (_Series("energy_joules", "joules", model.method, (("domain", "host"),)),)

    def _read(self, now: float) -> _Reading:
        assert self._meter is not None
        return self._series, (self._meter.read(now),)

    def describe(self) -> Mapping[str, Any]:
        facts = dict(super().describe())
        meter, cpu, match = self._meter, self._cpu, self._cpu_match
        if meter is not None and cpu is not None and match is not None:
            m = meter.model
            default = "generic" if match.rule == "generic" else f"cpu table: {match.entry.key}"
            facts.update(
                method=m.method,
                idle_watts=m.idle_watts,
                max_watts=m.max_watts,
                exponent=m.exponent,
                formula="idle_watts + (max_watts - idle_watts) * u ** exponent",
                # Idle power is an input here, not a measurement: say whose figure it is.
                watts_from={
                    "idle_watts": default if self.config.idle_watts is None else "plan",
                    "max_watts": default if self.config.max_watts is None else "plan",
                },
                cpu=cpu.describe(),
                cpu_table=match.describe(),
                utilisation="busy / (busy + idle + iowait); steal in neither",
                steal_excluded_s=round(meter.steal_seconds, 3),
                cpu_seconds_counted=round(meter.total_seconds, 3),
            )
        return facts


# ------------------------------------------------------------------------------ process


@attrs.frozen
class ProcessConfig(SamplingConfig):
    """``[[collectors]] type = "process"``: CPU time, memory and I/O per group."""

    #: ``procfs`` (Linux, fastest), ``psutil`` (portable) or ``auto``.
    backend: str = attrs.field(default="auto", validator=one_of(*BACKENDS))


class ProcessCollector(_SamplingCollector):
    """CPU seconds of the host and of each attribution group, with their descendants.

    Groups come from :attr:`CollectorContext.process_groups`, called every tick (it should
    be cheap: the runner's returns the pids services and workloads already know). Group
    ``host`` is reserved for the host's busy CPU time.
    """

    Config: ClassVar[type] = ProcessConfig
    config: ProcessConfig

    def __init__(self, name: str, config: ProcessConfig) -> None:
        super().__init__(name, config)
        self._tracker: ProcessTracker | None = None
        self._groups: Callable[[], ProcessGroups] = dict
        self._cache: dict[str, tuple[_Series, _Series, _Series, _Series]] = {}
        self._method = ""
        self._host_cpu: HostCpuReader | None = None
        self._host_series = _Series("cpu_seconds", "seconds", "psutil", (("group", HOST_GROUP),))

    def _open(self, ctx: CollectorContext) -> None:
        if HOST_GROUP in ctx.process_groups():
            msg = (
                f"collector {self.name!r}: process group {HOST_GROUP!r} is reserved for the "
                "host's own CPU time; name the group differently"
            )
            raise CollectorError(msg)
        self._tracker = ProcessTracker(self.config.backend)
        self._method = self._tracker.backend
        self._groups = ctx.process_groups
        # The host's CPU time comes from /proc/stat where the tracker reads /proc.
        self._host_cpu = HostCpuReader("/proc" if self._method == "procfs" else None)
        self._host_series = _Series(
            "cpu_seconds", "seconds", self._host_cpu.method, (("group", HOST_GROUP),)
        )

    def _close(self) -> None:
        if self._tracker is not None:
            self._tracker.close()
        if self._host_cpu is not None:
            self._host_cpu.close()

    def _series_of(self, group: str) -> tuple[_Series, _Series, _Series, _Series]:
        """cpu_seconds, rss_bytes, io_read_bytes, io_write_bytes of ``group``."""
        found = self._cache.get(group)
        if found is None:
            labels = (("group", group),)
            found = self._cache[group] = (
                _Series("cpu_seconds", "seconds", self._method, labels),
                _Series("rss_bytes", "bytes", self._method, labels),
                _Series("io_read_bytes", "bytes", self._method, labels),
                _Series("io_write_bytes", "bytes", self._method, labels),
            )
        return found

    def _read(self, now: float) -> _Reading:
        assert self._tracker is not None
        groups = self._groups()
        if HOST_GROUP in groups:  # refused at start; a group added later is left out
            groups = {g: p for g, p in groups.items() if g != HOST_GROUP}
        assert self._host_cpu is not None
        busy, _total = self._host_cpu.read()
        series: list[_Series] = [self._host_series]
        values: list[float] = [busy]
        for group, usage in self._tracker.read(groups).items():
            cpu, rss, io_read, io_write = self._series_of(group)
            if usage.io_read_bytes is None or usage.io_write_bytes is None:
                series += (cpu, rss)
                values += (usage.cpu_seconds, usage.rss_bytes)
            else:
                series += (cpu, rss, io_read, io_write)
                values += (
                    usage.cpu_seconds,
                    usage.rss_bytes,
                    usage.io_read_bytes,
                    usage.io_write_bytes,
                )
        return tuple(series), tuple(values)

    def describe(self) -> Mapping[str, Any]:
        return {
            **super().describe(),
            "backend": self._method or self.config.backend,
            "groups": sorted(self._cache),
        }
