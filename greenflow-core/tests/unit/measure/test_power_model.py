"""The utilisation power model and its integration into an energy counter."""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

import pytest

from greenflow.measure.model import (
    GENERIC,
    HostCpuReader,
    ModelEnergyMeter,
    PowerModel,
    host_cpu_seconds,
)


class Times(NamedTuple):
    """The fields of psutil.cpu_times() that the model reads."""

    user: float
    system: float
    idle: float
    iowait: float


class LinuxTimes(NamedTuple):
    """psutil.cpu_times() on Linux, in its field order."""

    user: float
    nice: float
    system: float
    idle: float
    iowait: float
    irq: float = 0.0
    softirq: float = 0.0
    steal: float = 0.0
    guest: float = 0.0
    guest_nice: float = 0.0


def test_power_follows_the_formula() -> None:
    """P(u) = idle + (max - idle) * u^exponent, with u clamped to 0..1."""
    linear = PowerModel(10, 50)
    assert [linear.power_watts(u) for u in (0, 0.5, 1, 1.5, -1)] == [10, 30, 50, 50, 10]
    curved = PowerModel(10, 50, exponent=2)
    assert curved.power_watts(0.5) == pytest.approx(20)


def test_method_names_the_model() -> None:
    """Linear is model:linear, any other exponent model:power, unless a name is given."""
    assert PowerModel(1, 2).method == "model:linear"
    assert PowerModel(1, 2, exponent=1.4).method == "model:power"
    assert PowerModel(1, 2, name="vm-small").method == "model:vm-small"


def test_defaults_scale_with_logical_cpus() -> None:
    """Unset watts are the entry's per-CPU figures times the logical CPUs (generic: 1 W and 4 W)."""
    model = PowerModel.for_host(cpus=8, cpu_power=GENERIC)
    assert (model.idle_watts, model.max_watts, model.method) == (8.0, 32.0, "model:linear")
    assert PowerModel.for_host(idle_watts=20, cpus=8, cpu_power=GENERIC).max_watts == 32.0


def test_defaults_come_from_this_machines_cpu() -> None:
    """Without an entry, for_host looks up the CPU this machine reports."""
    from greenflow.measure.model import CpuInfo, lookup_cpu_power

    cpu = CpuInfo.read()
    entry = lookup_cpu_power(cpu).entry
    model = PowerModel.for_host()
    assert model.max_watts == pytest.approx(entry.max_watts_per_cpu * cpu.logical_cpus)
    assert model.idle_watts == pytest.approx(entry.idle_watts_per_cpu * cpu.logical_cpus)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"idle_watts": 50, "max_watts": 10}, "below idle_watts"),
        ({"idle_watts": -1, "max_watts": 10}, "idle_watts"),
        ({"idle_watts": 1, "max_watts": 10, "exponent": 0}, "exponent"),
        ({"idle_watts": 1, "max_watts": 10, "name": "a:b"}, "name"),
    ],
)
def test_rejects_impossible_parameters(kwargs: dict[str, Any], message: str) -> None:
    """Parameters that cannot describe a machine are refused with the one at fault."""
    with pytest.raises(ValueError, match=message):
        PowerModel(**kwargs)


def test_busy_time_leaves_out_idle_iowait_and_guest() -> None:
    """busy = total - idle - iowait; guest time is already inside user and nice."""
    busy, total = host_cpu_seconds(
        LinuxTimes(user=10, nice=2, system=3, idle=80, iowait=5, guest=4, guest_nice=1)
    )
    assert (busy, total) == (15, 100)


def test_steal_is_neither_busy_nor_total() -> None:
    """Steal (other guests' time on our CPUs) is left out of busy and of the total; irq and
    softirq are busy."""
    times = LinuxTimes(10, 2, 3, 70, 5, irq=1, softirq=2, steal=40, guest=4, guest_nice=1)
    assert host_cpu_seconds(times) == (18, 93)  # busy 10+2+3+1+2, total 18+70+5


def test_procfs_reader_leaves_out_steal_and_guest(tmp_path: Path) -> None:
    """The /proc/stat reader gives what host_cpu_seconds gives for the same ticks."""
    import os

    tick = os.sysconf("SC_CLK_TCK")
    ticks = LinuxTimes(1000, 200, 300, 7000, 500, 100, 200, 4000, 400, 100)
    lines = ["cpu  " + " ".join(str(int(t)) for t in ticks), "cpu0 1 2 3 4 5 6 7 8 9 10"]
    (tmp_path / "stat").write_text("\n".join(lines) + "\n")
    reader = HostCpuReader(str(tmp_path))
    try:
        assert reader.method == "procfs"
        busy, total = reader.read()
    finally:
        reader.close()
    expected = host_cpu_seconds(ticks)
    assert (busy * tick, total * tick) == pytest.approx(expected)
    assert expected == (1800, 9300)


def test_procfs_reader_takes_old_kernels_without_steal(tmp_path: Path) -> None:
    """A /proc/stat line with only user..iowait (pre-2.6.11 layout) still reads."""
    import os

    (tmp_path / "stat").write_text("cpu  10 0 10 70 10\n")
    reader = HostCpuReader(str(tmp_path))
    try:
        busy, total = reader.read()
    finally:
        reader.close()
    tick = os.sysconf("SC_CLK_TCK")
    assert (busy * tick, total * tick) == pytest.approx((20, 100))


def test_meter_utilisation_leaves_out_steal() -> None:
    """Over 10 s of 1 CPU: 3 s busy, 3 s idle, 4 s stolen gives u = 0.5, not 0.7 or 0.3;
    the steal left out is counted."""
    times = iter([LinuxTimes(0, 0, 0, 0, 0), LinuxTimes(2, 0, 1, 3, 0, steal=4)])
    meter = ModelEnergyMeter(PowerModel(10, 50), cpu_times=lambda: next(times))
    meter.read(0.0)
    assert meter.read(10.0) == pytest.approx(30 * 10)  # 10 + 40 * 0.5 W for 10 s
    assert meter.utilisation == pytest.approx(0.5)
    assert (meter.steal_seconds, meter.total_seconds) == (4, 6)


def test_meter_integrates_power_over_each_interval() -> None:
    """Half-busy for 10 s at 10..50 W is 300 J; an interval with no tick keeps the last u."""
    times = iter([Times(0, 0, 0, 0), Times(4, 1, 4, 1), Times(4, 1, 4, 1), Times(4, 1, 14, 1)])
    meter = ModelEnergyMeter(PowerModel(10, 50), cpu_times=lambda: next(times))
    assert meter.read(100.0) == 0.0
    assert meter.read(110.0) == pytest.approx(300.0)  # u = 5 / 10
    assert meter.read(110.005) == pytest.approx(300.0 + 30 * 0.005)  # same u, 5 ms
    assert meter.read(120.0) == pytest.approx(300.15 + 10 * 9.995, rel=1e-9)  # idle


def test_host_cpu_reader_agrees_with_psutil() -> None:
    """The kept-open /proc/stat reader gives what psutil.cpu_times() gives, read between two
    psutil reads (so it lies between them), and falls back to psutil once closed."""
    reader = HostCpuReader()
    before = host_cpu_seconds()
    ours = reader.read()
    after = host_cpu_seconds()
    for low, mid, high in zip(before, ours, after, strict=True):
        assert low - 1e-6 <= mid <= high + 1e-6
    assert ours[0] <= ours[1]
    reader.close()
    assert reader.method == "psutil"
    assert reader.read()[1] >= after[1]
