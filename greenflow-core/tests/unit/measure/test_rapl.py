"""RAPL through a powercap-shaped tree whose counters the tests advance (DESIGN.md §9)."""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from greenflow.api import CollectorContext, Inventory, Sample, Window
from greenflow.builtin.collectors import RaplCollector
from greenflow.errors import CollectorError
from greenflow.measure.integrate import counter_delta, power_series, split_series
from greenflow.measure.rapl import RaplReader, discover_zones, host_energy_domains
from greenflow.testing.powercap import Powercap

MJ = 1_000_000  # microjoules per joule


def _ctx() -> CollectorContext:
    return CollectorContext("test", Inventory([]))


def _server(root: Path) -> Powercap:
    tree = Powercap(root)
    tree.add("intel-rapl:0", "package-0", 1000 * MJ)
    tree.add("intel-rapl:0:0", "core", 1000 * MJ)
    tree.add("intel-rapl:0:1", "dram", 10**12)
    tree.add("intel-rapl:1", "package-1", 1000 * MJ)
    tree.add("intel-rapl:1:0", "core", 1000 * MJ)
    return tree


def test_discovers_zones_and_names_domains_by_package(tmp_path: Path) -> None:
    """Zones and nested subzones are found, subzones named after their package's number."""
    _server(tmp_path)
    zones = discover_zones(tmp_path)
    assert [(z.zone, z.domain) for z in zones] == [
        ("intel-rapl:0", "package-0"),
        ("intel-rapl:1", "package-1"),
        ("intel-rapl:0:0", "core-0"),
        ("intel-rapl:0:1", "dram-0"),
        ("intel-rapl:1:0", "core-1"),
    ]
    assert zones[2].parent == "intel-rapl:0"
    assert RaplReader(tmp_path).host_domains == ["dram-0", "package-0", "package-1"]


def test_reads_the_flat_sysfs_class_layout_once_per_zone(tmp_path: Path) -> None:
    """/sys/class/powercap lists every zone as a symlink and also nests them; each counts once."""
    devices = tmp_path / "devices" / "intel-rapl"
    _server(devices)
    cls = tmp_path / "class"
    cls.mkdir()
    for top in devices.iterdir():
        (cls / top.name).symlink_to(top)
        for sub in top.glob("intel-rapl:*"):
            (cls / sub.name).symlink_to(sub)
    assert sorted(z.domain for z in discover_zones(cls)) == [
        "core-0",
        "core-1",
        "dram-0",
        "package-0",
        "package-1",
    ]


def test_subzone_takes_the_number_of_its_package_not_of_its_directory(tmp_path: Path) -> None:
    """With psys as intel-rapl:0, package-0 lives in intel-rapl:1 and its core is core-0."""
    tree = Powercap(tmp_path)
    tree.add("intel-rapl:0", "psys", 1000 * MJ)
    tree.add("intel-rapl:1", "package-0", 1000 * MJ)
    tree.add("intel-rapl:1:0", "core", 1000 * MJ)
    tree.add("intel-rapl:1:1", "uncore", 1000 * MJ)
    assert [z.domain for z in discover_zones(tmp_path)] == [
        "psys",
        "package-0",
        "core-0",
        "uncore-0",
    ]


def test_host_energy_rule() -> None:
    """psys alone when present; else packages plus DRAM; never core or uncore."""
    assert host_energy_domains(["psys", "package-0", "dram-0", "core-0"]) == ["psys"]
    assert host_energy_domains(["package-0", "core-0", "uncore-0", "dram-0", "package-1"]) == [
        "dram-0",
        "package-0",
        "package-1",
    ]
    assert host_energy_domains(["core-0"]) == []


def _profile(t: float) -> float:
    """Energy in joules of package-0 after ``t`` s: 50 W, then 120 W from 10 s, 50 W from 20 s."""
    return 50 * min(t, 10) + 120 * min(max(t - 10, 0), 10) + 50 * max(t - 20, 0)


def test_integrates_a_known_profile_through_wraps_within_a_tenth_of_a_percent(
    tmp_path: Path,
) -> None:
    """Counters advanced by a 50 W / 120 W profile on simulated time, wrapping thrice."""
    tree = _server(tmp_path)
    start_uj = 900 * MJ  # starts near the top of its 1000 J range: wraps early
    reader = RaplReader(tmp_path)
    samples = []
    for step in range(61):
        t = step * 0.5
        tree.set("intel-rapl:0", start_uj + round(_profile(t) * MJ))
        tree.set("intel-rapl:0:0", round(0.6 * _profile(t) * MJ))  # core: part of package
        tree.set("intel-rapl:0:1", round(8.0 * t * MJ))  # DRAM: a steady 8 W
        for domain, joules in reader.read().items():
            samples.append(
                Sample(t, "energy_joules", joules, "joules", "rapl", "n1", {"domain": domain})
            )
    assert reader.wraps["package-0"] == 3  # 900 J + 2200 J in a 1000 J range
    series = {s[0].labels["domain"]: s for s in split_series(samples).values()}
    for window in (Window(2.25, 27.75), Window(9.9, 10.1), Window(0, 30), Window(12, 12.2)):
        expected = _profile(window.end) - _profile(window.start)
        measured = counter_delta(series["package-0"], window)
        assert measured == pytest.approx(expected, rel=1e-3)
        host = sum(counter_delta(series[d], window) for d in reader.host_domains)
        assert host == pytest.approx(expected + 8.0 * window.duration_s, rel=1e-3)
    # Each wrap loses one counter unit (1 µJ here), as documented: a few µW.
    watts = {round(w, 3) for _t, w in power_series(series["package-0"])}
    assert watts == {50.0, 120.0}


def test_reports_wrap_time_from_range_and_assumed_power(tmp_path: Path) -> None:
    """Wrap time is the counter's range over the highest plausible power."""
    _server(tmp_path)
    reader = RaplReader(tmp_path, max_power_watts=250.0)
    assert reader.wrap_times_s["package-0"] == pytest.approx(4.0)
    assert reader.min_wrap_time_s == pytest.approx(4.0)


@pytest.mark.parametrize("missing", [True, False])
def test_no_zones_says_where_it_looked_and_suggests_the_model(
    tmp_path: Path, missing: bool
) -> None:
    """Without zones (a VM) the error names the path, says why, and points to the model."""
    root = tmp_path / "nothing" if missing else tmp_path
    with pytest.raises(CollectorError) as info:
        RaplReader(root)
    message = str(info.value)
    assert str(root) in message
    assert "virtual machines" in message
    assert 'type = "model"' in message


@pytest.fixture
def shared_tree() -> Iterator[Path]:
    """A tree that an unprivileged user can traverse (pytest's tmp_path is root-only)."""
    root = Path(tempfile.mkdtemp(prefix="greenflow-powercap-"))
    root.chmod(0o755)
    try:
        yield root
    finally:
        shutil.rmtree(root)


def _as_nobody(action: Callable[[], object]) -> str:
    """Run ``action`` in a child process that dropped root; return what it raised."""
    r, w = os.pipe()
    with warnings.catch_warnings():
        # Python 3.12+ warns when forking with threads; the child only reads a file and exits.
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        try:
            os.close(r)
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            try:
                action()
                result = "no error"
            except BaseException as exc:
                result = f"{type(exc).__name__}: {exc}"
            os.write(w, result.encode())
        finally:
            os._exit(0)
    os.close(w)
    chunks = []
    while chunk := os.read(r, 65536):
        chunks.append(chunk)
    os.close(r)
    os.waitpid(pid, 0)
    return b"".join(chunks).decode()


def test_unreadable_energy_says_root_only_and_what_to_do(shared_tree: Path) -> None:
    """energy_uj mode 0400 as the kernel sets it, read by a non-root user: a clear error.

    Root ignores file modes, so as root the read happens in a forked child that switched
    to ``nobody``: the kernel itself refuses the read, as it does on a real machine.
    """
    tree = _server(shared_tree)
    for zone in tree.ranges:
        for p in tree.path(zone).iterdir():
            p.chmod(0o400 if p.name == "energy_uj" else 0o644)
        tree.path(zone).chmod(0o755)

    def start() -> None:
        RaplCollector("rapl", RaplCollector.Config(root=str(shared_tree))).start(_ctx())

    if os.geteuid() == 0:
        message = _as_nobody(start)
    else:
        with pytest.raises(CollectorError) as info:
            start()
        message = f"CollectorError: {info.value}"
    assert message.startswith("CollectorError: cannot read ")
    assert "energy_uj: permission denied" in message
    assert "root only" in message
    assert "chmod" in message and "udev" in message
    assert 'type = "model"' in message


def test_energy_file_that_cannot_be_read_stops_start_at_once(tmp_path: Path) -> None:
    """An energy_uj that is a directory (EISDIR on read) fails start() with the path."""
    tree = _server(tmp_path)
    energy = tree.path("intel-rapl:0:1") / "energy_uj"
    energy.unlink()
    energy.mkdir()
    collector = RaplCollector("rapl", RaplCollector.Config(root=str(tmp_path)))
    with pytest.raises(CollectorError, match=f"cannot read {energy}"):
        collector.start(_ctx())
    collector.stop()  # nothing started: still fine to call


def test_refuses_an_interval_that_could_miss_wraps(tmp_path: Path) -> None:
    """A counter that can wrap within two intervals is refused, with the interval to use."""
    tree = Powercap(tmp_path)
    tree.add("intel-rapl:0", "package-0", 100 * MJ)  # 100 J: 0.2 s at 500 W
    collector = RaplCollector("rapl", RaplCollector.Config(root=str(tmp_path), interval_s=1.0))
    with pytest.raises(CollectorError, match=r"interval_s ≤ 0\.1"):
        collector.start(_ctx())


class RampWriter(threading.Thread):
    """Publishes counters from the wall clock: flat until :meth:`begin`, then each zone at
    its power for ``seconds``, then flat again. The energy over any window that starts
    before the ramp and ends after it is therefore known exactly, whenever the collector
    happens to read; only the wraps in between depend on it sampling often enough."""

    def __init__(self, tree: Powercap, watts: dict[str, float], seconds: float) -> None:
        super().__init__(daemon=True)
        self.tree, self.watts, self.seconds = tree, watts, seconds
        self.began: float | None = None
        self.finished_at = 0.0
        self.done = threading.Event()
        self._stop_event = threading.Event()
        self._start_uj = {zone: tree.ranges[zone] - 5 * MJ for zone in watts}  # near a wrap
        self.publish(0.0)

    def publish(self, elapsed: float) -> None:
        for zone, w in self.watts.items():
            self.tree.set(zone, self._start_uj[zone] + round(w * elapsed * MJ))

    def begin(self) -> None:
        self.began = time.time()

    def run(self) -> None:
        while not self._stop_event.wait(0.001):
            began = self.began
            if began is None:
                continue
            elapsed = time.time() - began
            self.publish(min(elapsed, self.seconds))
            if elapsed >= self.seconds:
                self.finished_at = time.time()
                self.done.set()
                return

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


def test_collector_integrates_counters_advancing_in_real_time(tmp_path: Path) -> None:
    """RaplCollector on a tree advanced at known watts, wrapping as it goes: the energy
    over a window around the ramp is within 0.1 % of watts × ramp duration."""
    tree = Powercap(tmp_path)
    tree.add("intel-rapl:0", "package-0", 60 * MJ)  # wraps every 0.6 s at 100 W
    tree.add("intel-rapl:0:0", "core", 60 * MJ)
    tree.add("intel-rapl:0:1", "dram", 10**12)
    watts = {"intel-rapl:0": 100.0, "intel-rapl:0:0": 70.0, "intel-rapl:0:1": 12.0}
    writer = RampWriter(tree, watts, seconds=1.5)
    writer.start()
    collector = RaplCollector("rapl", RaplCollector.Config(root=str(tmp_path), interval_s=0.01))
    collector.start(_ctx())
    try:
        start = time.time()
        collector.collect(Window(start, start))  # a sample after `start`, before the ramp
        writer.begin()
        assert writer.done.wait(timeout=120)
        # The first sample taken after the last write marks the window's end exactly.
        after = collector.collect(Window(writer.finished_at, writer.finished_at))
        end = min(s.timestamp for s in after if s.timestamp >= writer.finished_at)
        samples = collector.collect(Window(start, end))
    finally:
        collector.stop()
        writer.stop()

    window = Window(start, end)
    series = {s[0].labels["domain"]: s for s in split_series(samples).values()}
    assert set(series) == {"package-0", "core-0", "dram-0"}
    assert all(s.method == "rapl" for s in samples)
    for zone, domain in (
        ("intel-rapl:0", "package-0"),
        ("intel-rapl:0:0", "core-0"),
        ("intel-rapl:0:1", "dram-0"),
    ):
        assert counter_delta(series[domain], window) == pytest.approx(
            watts[zone] * writer.seconds, rel=1e-3
        )
    host = sum(counter_delta(series[d], window) for d in host_energy_domains(series))
    assert host == pytest.approx((100.0 + 12.0) * writer.seconds, rel=1e-3)
    assert collector.describe()["wraps_seen"]["package-0"] >= 2


def test_an_actual_read_gap_longer_than_a_wrap_is_recorded(tmp_path: Path) -> None:
    """The wrap guard checks the real time between reads, not the configured interval: a
    read 5 s after the previous one, on a zone that can wrap in 2 s at the assumed maximum
    power, is recorded as unsafe (a second wrap there would go unseen)."""
    tree = _server(tmp_path)
    reader = RaplReader(tmp_path, max_power_watts=500.0)  # 1000 J range: wraps in 2 s
    tree.set("intel-rapl:0", 10 * MJ)
    reader.read(at=100.0)
    tree.set("intel-rapl:0", 20 * MJ)
    reader.read(at=101.0)
    assert reader.unsafe_gaps == []
    tree.set("intel-rapl:0", 30 * MJ)
    reader.read(at=106.0)
    ((gap, domains),) = reader.unsafe_gaps
    assert gap == pytest.approx(5.0) and "package-0" in domains
