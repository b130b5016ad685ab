"""A utilisation-based power model for hosts without RAPL (VMs, containers, laptops).

    P(u) = idle_watts + (max_watts - idle_watts) * u ** exponent

``u`` is the host's CPU utilisation over a sampling interval, from ``/proc/stat`` (or
``psutil.cpu_times()``) deltas summed over logical CPUs: busy = user + nice + system +
irq + softirq, total = busy + idle + iowait. Steal (time the hypervisor gave to other
guests) is in neither; guest time is already inside user and nice. Power is held over
each interval and integrated into a cumulative energy counter, so windows are handled
exactly like RAPL counters.

Watts a plan leaves unset come per logical CPU from :data:`CPU_TABLE`, the entry for the
CPU this machine reports (:func:`lookup_cpu_power`), else from :data:`GENERIC`. How an
entry is picked, where each figure comes from and what model figures can and cannot say
are in docs/measurement.md ("The model"). Every sample is labelled ``model:<name>``.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable
from typing import Any

import attrs

from greenflow.plan.validators import non_negative, positive

#: Generic idle power per logical CPU, for a CPU that is not in :data:`CPU_TABLE`.
IDLE_WATTS_PER_CPU = 1.0
#: Generic full-load power per logical CPU, for a CPU that is not in :data:`CPU_TABLE`.
MAX_WATTS_PER_CPU = 4.0

# Flags worth recording in provenance: they decide or explain the table entry chosen.
_NOTABLE_FLAGS = ("amx_tile", "avx512f", "hypervisor")


@attrs.frozen
class CpuInfo:
    """What the machine says about its CPU: ``/proc/cpuinfo``'s first processor, psutil's counts."""

    vendor: str = ""
    model_name: str = ""
    family: int | None = None
    model: int | None = None
    stepping: int | None = None
    flags: frozenset[str] = frozenset()
    #: What utilisation is measured over, and what per-CPU watts are multiplied by.
    logical_cpus: int = 1
    physical_cores: int | None = None

    @classmethod
    def read(cls, path: str = "/proc/cpuinfo") -> CpuInfo:
        """This machine's CPU; fields the platform does not give stay empty."""
        import psutil

        logical = psutil.cpu_count(logical=True) or os.cpu_count() or 1
        physical = psutil.cpu_count(logical=False)
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                text = f.read()
        except OSError:
            import platform

            return cls(
                model_name=platform.processor(), logical_cpus=logical, physical_cores=physical
            )
        return cls.parse(text, logical_cpus=logical, physical_cores=physical)

    @classmethod
    def parse(
        cls, text: str, *, logical_cpus: int = 1, physical_cores: int | None = None
    ) -> CpuInfo:
        """From the text of ``/proc/cpuinfo``: the first processor's block."""
        fields: dict[str, str] = {}
        for line in text.split("\n\n", 1)[0].splitlines():
            key, sep, value = line.partition(":")
            if sep:
                fields.setdefault(key.strip(), value.strip())

        def number(key: str) -> int | None:
            try:
                return int(fields[key], 0)  # decimal on x86; "0x41"-style on Arm
            except (KeyError, ValueError):
                return None

        return cls(
            vendor=fields.get("vendor_id", ""),
            model_name=fields.get("model name", ""),
            family=number("cpu family"),
            model=number("model"),
            stepping=number("stepping"),
            flags=frozenset(fields.get("flags", "").split()),
            logical_cpus=logical_cpus,
            physical_cores=physical_cores,
        )

    @property
    def hypervisor(self) -> bool:
        """Whether the CPU says it runs under a hypervisor (a VM)."""
        return "hypervisor" in self.flags

    def describe(self) -> dict[str, Any]:
        """For provenance: what was read, and the flags that bear on the table."""
        return {
            "vendor": self.vendor,
            "model_name": self.model_name,
            "family": self.family,
            "model": self.model,
            "stepping": self.stepping,
            "flags": [f for f in _NOTABLE_FLAGS if f in self.flags],
            "logical_cpus": self.logical_cpus,
            "physical_cores": self.physical_cores,
        }


@attrs.frozen
class CpuId:
    """A microarchitecture as CPUID reports it: vendor, family, model and steppings."""

    vendor: str
    family: int
    model: int
    steppings: range = range(256)

    def matches(self, cpu: CpuInfo) -> bool:
        same = (cpu.vendor, cpu.family, cpu.model) == (self.vendor, self.family, self.model)
        return same and (cpu.stepping is None or cpu.stepping in self.steppings)


@attrs.frozen
class CpuPower:
    """A row of :data:`CPU_TABLE`: one processor, standing for its microarchitecture.

    Figures are per socket, for the CPU package (what RAPL's ``package`` domain covers,
    without ``dram``); the model uses them per hardware thread.
    """

    key: str
    label: str
    #: Thermal design power of one socket, watts: the model's full-load figure.
    tdp_watts: float
    #: Hardware threads of one socket.
    threads: int
    #: Package power of one idle socket, watts.
    idle_watts: float
    #: Where the figures come from.
    source: str
    #: Regular expressions matched against the model name: this very processor.
    names: tuple[str, ...] = ()
    #: CPU flags that, all present, mark this entry's class (they outrank ``cpuids``).
    flags: tuple[str, ...] = ()
    #: CPUID family/model of this entry's microarchitecture.
    cpuids: tuple[CpuId, ...] = ()

    @property
    def idle_watts_per_cpu(self) -> float:
        return self.idle_watts / self.threads

    @property
    def max_watts_per_cpu(self) -> float:
        return self.tdp_watts / self.threads

    def describe(self) -> dict[str, Any]:
        return {
            "entry": self.key,
            "label": self.label,
            "tdp_watts": self.tdp_watts,
            "threads": self.threads,
            "idle_package_watts": self.idle_watts,
            "idle_watts_per_cpu": round(self.idle_watts_per_cpu, 6),
            "max_watts_per_cpu": round(self.max_watts_per_cpu, 6),
            "source": self.source,
        }


_ANANDTECH_ICX = (
    "idle: AnandTech, Ice Lake-SP review (Frumusanu, 2021-04-06): ~27 W package idle per "
    "socket for Cascade Lake-SP and Ice Lake-SP"
)
_ANANDTECH_MILAN = "AnandTech, EPYC Milan review (Cutress & Frumusanu, 2021-03-15)"
_QUARTER_TDP = "idle: estimate, 1/4 of TDP (no published package idle figure found)"

#: Known processors, each standing for its server microarchitecture. Per socket: TDP
#: (Intel ARK / AMD product pages), hardware threads, and package idle power (a
#: published measurement where one was found, else 1/4 of TDP, said so in ``source``).
#: The model uses TDP ÷ threads and idle ÷ threads per logical CPU. Order matters only
#: within a rule (see :func:`lookup_cpu_power`).
CPU_TABLE: tuple[CpuPower, ...] = (
    CpuPower(
        "xeon-e5-2630-v3",
        "Intel Xeon E5-2630 v3 (Haswell-EP)",
        tdp_watts=85.0,  # TDP, 8 cores / 16 threads (Intel ARK)
        threads=16,
        idle_watts=85.0 / 4,
        source=f"TDP and threads: Intel ARK; {_QUARTER_TDP}",
        names=(r"\bE5-2630 v3\b",),
        cpuids=(CpuId("GenuineIntel", 6, 63),),
    ),
    CpuPower(
        "xeon-gold-6130",
        "Intel Xeon Gold 6130 (Skylake-SP)",
        tdp_watts=125.0,  # TDP, 16 cores / 32 threads (Intel ARK)
        threads=32,
        # Cascade Lake-SP is Skylake-SP's die again; measured on 28-core parts, so a
        # smaller die's idle is likely lower.
        idle_watts=27.0,
        source=f"TDP and threads: Intel ARK; {_ANANDTECH_ICX} (Cascade Lake is the same die)",
        names=(r"\bGold 6130\b",),
        cpuids=(CpuId("GenuineIntel", 6, 85, range(5)),),  # steppings 0-4: Skylake-SP
    ),
    CpuPower(
        "xeon-gold-5220",
        "Intel Xeon Gold 5220 (Cascade Lake)",
        tdp_watts=125.0,  # TDP, 18 cores / 36 threads (Intel ARK)
        threads=36,
        idle_watts=27.0,
        source=f"TDP and threads: Intel ARK; {_ANANDTECH_ICX}",
        names=(r"\bGold 5220\b",),
        cpuids=(CpuId("GenuineIntel", 6, 85, range(5, 8)),),  # steppings 5-7: Cascade Lake
    ),
    CpuPower(
        "xeon-platinum-8380",
        "Intel Xeon Platinum 8380 (Ice Lake-SP)",
        tdp_watts=270.0,  # TDP, 40 cores / 80 threads (Intel ARK)
        threads=80,
        idle_watts=27.0,
        source=f"TDP and threads: Intel ARK; {_ANANDTECH_ICX}",
        names=(r"\bPlatinum 8380\b",),
        cpuids=(CpuId("GenuineIntel", 6, 106), CpuId("GenuineIntel", 6, 108)),
    ),
    CpuPower(
        "xeon-platinum-8480+",
        "Intel Xeon Platinum 8480+ (Sapphire Rapids or later server)",
        tdp_watts=350.0,  # TDP, 56 cores / 112 threads (Intel ARK)
        threads=112,
        idle_watts=350.0 / 4,
        source=f"TDP and threads: Intel ARK; {_QUARTER_TDP}",
        names=(r"\bPlatinum 8480\+",),
        # AMX exists only in Xeon servers from Sapphire Rapids on, and a hypervisor cannot
        # offer an instruction the host lacks; VMs often report a generic model name.
        flags=("amx_tile",),
        # 143: Sapphire Rapids; 207: Emerald Rapids, the same platform.
        cpuids=(CpuId("GenuineIntel", 6, 143), CpuId("GenuineIntel", 6, 207)),
    ),
    CpuPower(
        "epyc-7742",
        "AMD EPYC 7742 (Zen 2, Rome)",
        tdp_watts=225.0,  # TDP, 64 cores / 128 threads (AMD product page)
        threads=128,
        idle_watts=65.0,
        source=f"TDP and threads: AMD; idle: {_ANANDTECH_MILAN}: ~65 W package idle on Rome",
        names=(r"\bEPYC 7742\b",),
        cpuids=(CpuId("AuthenticAMD", 23, 49),),
    ),
    CpuPower(
        "epyc-7763",
        "AMD EPYC 7763 (Zen 3, Milan)",
        tdp_watts=280.0,  # TDP, 64 cores / 128 threads (AMD product page)
        threads=128,
        idle_watts=100.0,
        source=(
            f"TDP and threads: AMD; idle: {_ANANDTECH_MILAN}: ~100 W package idle on Milan "
            "(AMD's reference system)"
        ),
        names=(r"\bEPYC 7763\b",),
        cpuids=(CpuId("AuthenticAMD", 25, 1),),
    ),
)

#: For a CPU that is not in :data:`CPU_TABLE`: per logical CPU, not a processor's figures.
#: 4 W is within the TDP ÷ threads of the table (1.8-5.3 W), idle a quarter of it.
GENERIC = CpuPower(
    "generic",
    "generic (CPU not in the table)",
    tdp_watts=MAX_WATTS_PER_CPU,
    threads=1,
    idle_watts=IDLE_WATTS_PER_CPU,
    source="GreenFlow's generic default per logical CPU, not the figures of a known CPU",
)


@attrs.frozen
class CpuMatch:
    """The entry :func:`lookup_cpu_power` chose and the rule that chose it."""

    entry: CpuPower
    #: ``model name``, ``flags``, ``family/model`` or ``generic``.
    rule: str
    #: What the rule matched on, for a reader: the name, the flags, the CPUID.
    matched: str = ""

    def describe(self) -> dict[str, Any]:
        return {**self.entry.describe(), "rule": self.rule, "matched": self.matched}


def lookup_cpu_power(cpu: CpuInfo, table: tuple[CpuPower, ...] = CPU_TABLE) -> CpuMatch:
    """The table entry for ``cpu``: by model name, else flags, else CPUID, else generic.

    Flags outrank family/model: a hypervisor may report any family/model (and a generic
    name), but cannot offer an instruction set the host lacks.
    """
    for entry in table:
        for pattern in entry.names:
            if re.search(pattern, cpu.model_name, re.IGNORECASE):
                return CpuMatch(entry, "model name", cpu.model_name)
    for entry in table:
        if entry.flags and all(f in cpu.flags for f in entry.flags):
            return CpuMatch(entry, "flags", " ".join(entry.flags))
    for entry in table:
        if any(cpuid.matches(cpu) for cpuid in entry.cpuids):
            matched = f"{cpu.vendor} family {cpu.family} model {cpu.model} stepping {cpu.stepping}"
            return CpuMatch(entry, "family/model", matched)
    return CpuMatch(GENERIC, "generic")


def _busy_total_steal(times: Any) -> tuple[float, float, float]:
    # Linux counts guest time in user and nice already (psutil's cpu_percent leaves it out
    # of the total too); steal is the hypervisor running other guests: neither our busy
    # time nor our idle time.
    steal = getattr(times, "steal", 0.0)
    total = sum(times) - getattr(times, "guest", 0.0) - getattr(times, "guest_nice", 0.0) - steal
    busy = total - times.idle - getattr(times, "iowait", 0.0)
    return busy, total, steal


def host_cpu_seconds(times: Any = None) -> tuple[float, float]:
    """``(busy, total)`` CPU seconds of the host since boot, summed over logical CPUs.

    ``times`` is a ``psutil.cpu_times()`` result (read now when None). busy = user + nice
    + system + irq + softirq; total = busy + idle + iowait. ``steal`` is in neither (the
    hypervisor gave that time to other guests); ``guest`` and ``guest_nice`` are left out
    because Linux already counts them in ``user`` and ``nice``.
    """
    if times is None:
        import psutil

        times = psutil.cpu_times()
    busy, total, _steal = _busy_total_steal(times)
    return busy, total


class HostCpuReader:
    """:func:`host_cpu_seconds` for a sampler that reads it often.

    On Linux it keeps ``/proc/stat`` open and re-reads its first line with ``pread``
    (~7 µs), where ``psutil.cpu_times()`` opens the file each time (~20 µs, and ~80 µs
    when the sampler wakes with cold caches at 10 Hz). Elsewhere it calls psutil. Not
    thread-safe: one reader per sampling thread.
    """

    def __init__(self, proc: str | None = "/proc") -> None:
        """``proc``: where procfs is; None to always ask psutil."""
        self._tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        self._fd: int | None = None
        if proc is None:
            return
        try:
            self._fd = os.open(f"{proc}/stat", os.O_RDONLY | os.O_CLOEXEC)
        except (OSError, AttributeError):
            self._fd = None

    @property
    def method(self) -> str:
        """Where the figures come from: ``procfs`` or ``psutil``."""
        return "psutil" if self._fd is None else "procfs"

    def read(self) -> tuple[float, float]:
        """``(busy, total)`` CPU seconds of the host since boot (see host_cpu_seconds)."""
        if self._fd is None:
            return host_cpu_seconds()
        # "cpu  user nice system idle iowait irq softirq steal guest guest_nice", in ticks.
        # Steal is neither busy nor idle; guest is already counted in user and nice (see
        # host_cpu_seconds). Old kernels give fewer fields.
        fields = os.pread(self._fd, 512, 0).split(b"\n", 1)[0].split()[1:]
        ticks = [int(f) for f in fields]
        total = sum(ticks[:7])
        busy = total - ticks[3] - (ticks[4] if len(ticks) > 4 else 0)
        return busy / self._tick, total / self._tick

    def close(self) -> None:
        """Release the descriptor; later reads go through psutil."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _default_name(model: PowerModel) -> str:
    return "linear" if model.exponent == 1 else "power"


@attrs.frozen
class PowerModel:
    """``P(u) = idle_watts + (max_watts - idle_watts) * u ** exponent`` (see module docstring)."""

    idle_watts: float = attrs.field(validator=non_negative)
    max_watts: float = attrs.field(validator=non_negative)
    exponent: float = attrs.field(default=1.0, validator=positive)
    #: Goes into the method, ``model:<name>``.
    name: str = attrs.field(default=attrs.Factory(_default_name, takes_self=True))

    def __attrs_post_init__(self) -> None:
        if self.max_watts < self.idle_watts:
            msg = f"max_watts ({self.max_watts} W) is below idle_watts ({self.idle_watts} W)"
            raise ValueError(msg)
        if not self.name or ":" in self.name:
            raise ValueError(f"name: expected a short word like 'linear', got {self.name!r}")

    @classmethod
    def for_host(
        cls,
        *,
        idle_watts: float | None = None,
        max_watts: float | None = None,
        exponent: float = 1.0,
        name: str | None = None,
        cpus: int | None = None,
        cpu_power: CpuPower | None = None,
    ) -> PowerModel:
        """A model with the given parameters; watts left None are ``cpu_power``'s per-CPU
        figures × ``cpus``. Both default to this machine: the entry
        :func:`lookup_cpu_power` picks for its CPU, and its logical CPUs."""
        if (idle_watts is None or max_watts is None) and (cpu_power is None or cpus is None):
            cpu = CpuInfo.read()
            cpus = cpus or cpu.logical_cpus
            cpu_power = cpu_power or lookup_cpu_power(cpu).entry
        n = cpus or 1
        per_cpu = cpu_power or GENERIC
        idle = per_cpu.idle_watts_per_cpu * n if idle_watts is None else idle_watts
        peak = per_cpu.max_watts_per_cpu * n if max_watts is None else max_watts
        if name is None:
            return cls(idle, peak, exponent)
        return cls(idle, peak, exponent, name)

    @property
    def method(self) -> str:
        """``model:<name>``, the method of every figure this model produces."""
        return f"model:{self.name}"

    def power_watts(self, utilisation: float) -> float:
        """Power at ``utilisation`` (clamped to 0..1)."""
        u = min(1.0, max(0.0, utilisation))
        return self.idle_watts + (self.max_watts - self.idle_watts) * math.pow(u, self.exponent)


class ModelEnergyMeter:
    """Integrates a :class:`PowerModel` over the host's CPU utilisation into joules.

    Each :meth:`read` takes the utilisation since the previous read, holds the model's
    power over that interval and adds it to a counter that starts at 0 on the first read.
    Not thread-safe: one meter per sampling thread.
    """

    def __init__(self, model: PowerModel, cpu_times: Callable[[], Any] | None = None) -> None:
        self.model = model
        self._cpu_times = cpu_times
        self._t: float | None = None
        self._busy = self._total = 0.0
        self._first: tuple[float, float] | None = None  # (total, steal) at the first read
        #: Utilisation over the last interval, 0..1.
        self.utilisation = 0.0
        #: CPU seconds of steal left out since the first read, and the total they were left
        #: out of (busy + idle + iowait) over the same time.
        self.steal_seconds = self.total_seconds = 0.0
        self._joules = 0.0

    def read(self, t: float) -> float:
        """Cumulative energy in joules at time ``t`` (Unix seconds, increasing)."""
        if self._cpu_times is None:
            import psutil

            times = psutil.cpu_times()
        else:
            times = self._cpu_times()
        busy, total, steal = _busy_total_steal(times)
        if self._first is None:
            self._first = (total, steal)
        self.total_seconds = total - self._first[0]
        self.steal_seconds = steal - self._first[1]
        if self._t is not None:
            d_total = total - self._total
            if d_total > 0:
                self.utilisation = min(1.0, max(0.0, (busy - self._busy) / d_total))
            # else: reads closer than one kernel tick (10 ms) see no change; keep the last
            # utilisation for this sliver rather than calling it idle.
            self._joules += self.model.power_watts(self.utilisation) * max(0.0, t - self._t)
        if self._t is None or total > self._total:
            self._busy, self._total = busy, total
        self._t = t
        return self._joules
