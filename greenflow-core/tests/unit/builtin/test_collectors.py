"""The sampling collectors on this machine: model and process, and what collect() returns."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from greenflow.api import CollectorContext, Host, Inventory, Sample, Window
from greenflow.builtin.collectors import ModelCollector, ProcessCollector, RaplCollector
from greenflow.errors import CollectorError
from greenflow.measure.integrate import counter_delta, split_series
from greenflow.testing import CollectorContract

# Burns one second of its own CPU time, says how much it used in all, then waits for its
# stdin to close: the test takes a sample while it is still alive, so nothing depends on
# how soon the sampler runs after the busy loop ends.
BUSY = (
    "import sys, time\nt = time.process_time()\n"
    "while time.process_time() - t < 1.0:\n    pass\n"
    "print(time.process_time(), flush=True)\nsys.stdin.read()"
)


def _ctx(
    groups: dict[str, list[int]] | None = None, hosts: tuple[Host, ...] = ()
) -> CollectorContext:
    return CollectorContext("test", Inventory(hosts), lambda: dict(groups or {}))


def _series(samples: list[Sample], metric: str, **labels: str) -> list[Sample]:
    return [
        s
        for s in samples
        if s.metric == metric and all(s.labels.get(k) == v for k, v in labels.items())
    ]


@pytest.fixture
def model() -> Iterator[ModelCollector]:
    collector = ModelCollector("model", ModelCollector.Config(interval_s=0.01))
    collector.start(_ctx())
    yield collector
    collector.stop()


@pytest.mark.parametrize(
    ("config", "method"),
    [
        ({}, "model:linear"),
        ({"exponent": 1.4}, "model:power"),
        ({"model": "vm", "idle_watts": 5.0, "max_watts": 20.0}, "model:vm"),
    ],
)
def test_model_labels_every_sample_with_its_method(config: dict[str, Any], method: str) -> None:
    """Every sample of the model collector says model:<name>, and its counter only grows."""
    collector = ModelCollector("model", ModelCollector.Config(interval_s=0.01, **config))
    collector.start(_ctx())
    try:
        start = time.time()
        for _ in range(5):
            samples = list(collector.collect(Window(start, time.time())))
    finally:
        collector.stop()
    assert len(samples) >= 5
    assert {(s.metric, s.method, s.unit, s.labels["domain"]) for s in samples} == {
        ("energy_joules", method, "joules", "host")
    }
    values = [s.value for s in samples]
    assert values == sorted(values)
    assert collector.describe()["method"] == method


def test_collect_returns_the_window_and_one_sample_either_side(model: ModelCollector) -> None:
    """Samples inside the window, plus the last before its start and the first after its end."""
    for _ in range(10):  # each collect() ending now adds a sample
        everything = list(model.collect(Window(0, time.time())))
    ts = sorted({s.timestamp for s in everything})
    window = Window((ts[2] + ts[3]) / 2, (ts[-4] + ts[-3]) / 2)
    got = sorted({s.timestamp for s in model.collect(window)})
    assert got == ts[2:-2]


def test_collect_samples_once_more_when_the_window_ended_after_the_last_sample() -> None:
    """With a long interval, collect() reads at once so that the window's end is covered."""
    collector = ModelCollector("model", ModelCollector.Config(interval_s=3600))
    collector.start(_ctx())
    try:
        start = time.time()
        end = time.time()
        samples = collector.collect(Window(start, end))
    finally:
        collector.stop()
    assert max(s.timestamp for s in samples) >= end
    assert min(s.timestamp for s in samples) <= start


def test_stop_is_idempotent_and_keeps_what_was_sampled() -> None:
    """stop() ends the thread even mid-wait, twice is fine, and samples stay collectable."""
    collector = ModelCollector("model", ModelCollector.Config(interval_s=3600))
    collector.start(_ctx())
    thread = collector._thread
    assert thread is not None
    collector.stop()
    collector.stop()
    assert not thread.is_alive()
    assert len(collector.collect(Window(0, time.time()))) == 1  # no reading after stop


def test_retention_bounds_the_buffer() -> None:
    """Only retention_s worth of ticks are kept."""
    collector = ModelCollector("model", ModelCollector.Config(interval_s=0.01, retention_s=0.05))
    collector.start(_ctx())
    try:
        for _ in range(30):
            kept = collector.collect(Window(0, time.time()))
    finally:
        collector.stop()
    assert len(kept) <= 7  # 0.05 / 0.01 + 2


def test_samples_carry_this_machines_inventory_host_or_the_configured_name() -> None:
    """The inventory host that is this machine names the samples; a host that is not (a
    cluster node, a remote host) never does, even as the only one, since the samples are
    read here; ``host`` in the config overrides both."""
    me = socket.gethostname()
    local = (Host("this-one", "127.0.0.1", ["broker"]),)
    remote = (Host("node-1", "10.0.0.1", ["broker"]),)
    for config, hosts, expected in (
        (ModelCollector.Config(), local, "this-one"),
        (ModelCollector.Config(), remote, me),
        (ModelCollector.Config(host="custom"), remote, "custom"),
    ):
        collector = ModelCollector("model", config)
        collector.start(_ctx(hosts=hosts))
        collector.stop()
        assert {s.host for s in collector.collect(Window(0, time.time()))} == {expected}


def test_process_refuses_a_group_named_host() -> None:
    """``host`` is the host's own CPU time; a group of that name is refused at start."""
    collector = ProcessCollector("process", ProcessCollector.Config())
    with pytest.raises(CollectorError, match="reserved"):
        collector.start(_ctx({"host": [1]}))


def _run_busy(
    tmp_path: Path, backend: str, command: list[str]
) -> tuple[list[Sample], float, Window]:
    groups: dict[str, list[int]] = {"service:busy": []}
    collector = ProcessCollector(
        "process", ProcessCollector.Config(interval_s=0.02, backend=backend)
    )
    collector.start(CollectorContext("test", Inventory([]), lambda: groups))
    try:
        start = time.time()
        with subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=tmp_path
        ) as child:
            groups["service:busy"] = [child.pid]
            assert child.stdout is not None and child.stdin is not None
            used = float(child.stdout.readline())
            end = time.time()
            collector.collect(Window(end, end))  # a sample of the finished, still living child
            child.stdin.close()
        exited = time.time()
        collector.collect(Window(exited, exited))
        time.sleep(0.1)  # a few more ticks after the group's processes ended
        samples = list(collector.collect(Window(start, time.time())))
    finally:
        collector.stop()
    return samples, used, Window(start, end)


@pytest.mark.parametrize("backend", ["procfs", "psutil"])
def test_busy_child_is_attributed_to_its_group(tmp_path: Path, backend: str) -> None:
    """A process burning a second of CPU shows > 80 % of it in its group's cpu_seconds."""
    if backend == "procfs" and not Path("/proc/self/stat").exists():
        pytest.skip("procfs backend needs Linux /proc")
    samples, used, window = _run_busy(tmp_path, backend, [sys.executable, "-c", BUSY])
    group = _series(samples, "cpu_seconds", group="service:busy")
    assert {s.method for s in group} == {backend}
    assert counter_delta(group, window) > 0.8 * used
    values = [s.value for s in group]
    assert values == sorted(values)  # never backwards, also after the process ended
    assert group[-1].timestamp > window.end  # the group keeps reporting
    host = _series(samples, "cpu_seconds", group="host")
    assert host and {s.method for s in host} == {backend}  # /proc/stat read like /proc/<pid>
    assert _series(samples, "rss_bytes", group="service:busy")


def test_descendants_count_for_the_group_of_their_root(tmp_path: Path) -> None:
    """A busy grandchild started through a shell counts for the shell's group."""
    # `; true` keeps sh from exec-ing python, so python really is a child of the root pid.
    command = ["/bin/sh", "-c", f"{sys.executable} -c '{BUSY}'; true"]
    samples, used, window = _run_busy(tmp_path, "auto", command)
    group = _series(samples, "cpu_seconds", group="service:busy")
    assert counter_delta(group, window) > 0.8 * used
    assert len(split_series(group)) == 1


class _Contract(CollectorContract):
    window_s = 0.3


class TestModelCollectorContract(_Contract):
    collector_class = ModelCollector
    entry_point_name = "model"

    @pytest.fixture
    def config(self) -> ModelCollector.Config:
        return ModelCollector.Config(interval_s=0.05)


class TestProcessCollectorContract(_Contract):
    collector_class = ProcessCollector
    entry_point_name = "process"

    @pytest.fixture
    def config(self) -> ProcessCollector.Config:
        return ProcessCollector.Config(interval_s=0.05)


class TestRaplCollectorContract(_Contract):
    """On a powercap-shaped tree (tests/unit/measure/test_rapl.py advances one in time)."""

    collector_class = RaplCollector
    entry_point_name = "rapl"

    @pytest.fixture
    def config(self, tmp_path: Path) -> RaplCollector.Config:
        for zone, name in (("intel-rapl:0", "package-0"), ("intel-rapl:0/intel-rapl:0:0", "core")):
            (tmp_path / zone).mkdir()
            for attribute, value in (
                ("name", name),
                ("energy_uj", "1000"),
                ("max_energy_range_uj", "262143328850"),
            ):
                (tmp_path / zone / attribute).write_text(value + "\n")
        return RaplCollector.Config(root=str(tmp_path), interval_s=0.05)
