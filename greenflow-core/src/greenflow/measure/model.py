"""A utilisation-based power model for hosts without RAPL (VMs, containers, laptops).

    P(u) = idle_watts + (max_watts - idle_watts) * u ** exponent

where ``u`` is the host's CPU utilisation over a sampling interval, from
``psutil.cpu_times()`` deltas summed over all logical CPUs: busy = user + nice + system +
irq + softirq, total = busy + idle + iowait, u = busy / total. Steal (time the hypervisor
gave to other guests) is in neither; guest time is already inside user and nice. Power is
taken as constant over each interval and integrated into a cumulative energy counter, so
windows are handled exactly like RAPL counters.

**Defaults, and why.** Without figures from the plan, the model scales with the number of
logical CPUs ``n`` (what the utilisation is measured over):

* ``max_watts = 4 W × n``: the thermal design power of server and laptop CPUs divided by
  their hardware threads — Xeon E5-2630 v3 85 W / 16 = 5.3 W, Xeon Gold 6130
  125 W / 32 = 3.9 W, EPYC 7763 280 W / 128 = 2.2 W, Core i7-1165G7 28 W / 8 = 3.5 W —
  lands between 2 and 5 W; 4 W also leaves room for the DRAM that RAPL's ``dram`` domain
  would add.
* ``idle_watts = 1 W × n``: a quarter of the maximum, in line with the package-plus-DRAM
  idle power RAPL reports on such servers (15–25 W for 16–32 threads). Wall-plug idle
  is higher (PSU, fans, disks), so this model estimates what RAPL would see, not the plug.
* ``exponent = 1``, a linear model: Fan, Weber and Barroso ("Power provisioning for a
  warehouse-sized computer", ISCA 2007) found ``idle + (busy - idle) × u`` within a few
  per cent of measured server power; ``exponent`` lets a plan bend the curve (their
  best fit adds a ``u**1.4`` term).

These are estimates: every sample is labelled ``model:<name>`` (``model:linear`` by
default, ``model:power`` when ``exponent`` is not 1), and a plan should set measured
``idle_watts``/``max_watts`` for its hardware when it can. In a container, ``cpu_times``
covers the whole machine, not the container's share. With ``exponent != 1`` the model is
applied to the mean utilisation of each interval, which is close to the mean of the
power when the interval is short.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import Any

import attrs

from greenflow.plan.validators import non_negative, positive

#: Default idle power per logical CPU (see the module docstring).
IDLE_WATTS_PER_CPU = 1.0
#: Default full-load power per logical CPU (see the module docstring).
MAX_WATTS_PER_CPU = 4.0


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
    ) -> PowerModel:
        """A model with the given parameters, the per-CPU defaults filling in what is None."""
        n = cpus or os.cpu_count() or 1
        idle = IDLE_WATTS_PER_CPU * n if idle_watts is None else idle_watts
        peak = MAX_WATTS_PER_CPU * n if max_watts is None else max_watts
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
