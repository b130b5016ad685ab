"""The contract kit itself: sound plugins pass every contract, and each kind of bug fails
exactly the contract test meant to catch it (and no other).

The plugins below are written into a pytester directory and their contract subclasses run
in-process; the outcome of every test is compared with what we expect.
"""

from __future__ import annotations

import textwrap

import pytest

pytest_plugins = ["pytester"]

PLUGINS = '''
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from typing import Any, ClassVar

import attrs

from greenflow.api import (
    Capability, Collector, Host, Inventory, Phase, Platform, Sample, Service, Workload,
    WorkloadResult,
)
from greenflow.errors import CollectorError


@attrs.frozen
class Empty:
    pass


@attrs.frozen
class SleepConfig:
    seconds: float = 60.0


@attrs.frozen
class WorkConfig:
    count: int = 100
    duration_s: float = 0.1


@attrs.frozen
class ClockConfig:
    interval_s: float = 0.02


class GoodPlatform(Platform):
    Config: ClassVar[type] = Empty
    capabilities: ClassVar[frozenset[Capability]] = frozenset({Capability.LOCAL_PROCESSES})

    def acquire(self, ctx):
        ctx.record_state({"hosts": ["here"]})
        return Inventory([Host("here", "127.0.0.1", {"broker", "worker"})])

    def release(self):
        pass


class ReleaseNeedsAcquirePlatform(GoodPlatform):
    def __init__(self, config):
        super().__init__(config)
        self.acquired = False

    def acquire(self, ctx):
        self.acquired = True
        return super().acquire(ctx)

    def release(self):
        if not self.acquired:
            raise RuntimeError("nothing to release")
        self.acquired = False


def _kill(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


class GoodService(Service):
    Config: ClassVar[type] = SleepConfig
    requires: ClassVar[frozenset[Capability]] = frozenset({Capability.LOCAL_PROCESSES})

    def __init__(self, name, config):
        super().__init__(name, config)
        self.proc = None

    def deploy(self, platform, inventory, ctx):
        self.proc = subprocess.Popen(
            [sys.executable, "-c", f"import time; time.sleep({self.config.seconds})"],
            start_new_session=True,
        )
        ctx.record_state({"pid": self.proc.pid})

    def wait_ready(self, timeout_s):
        pass

    def endpoints(self):
        return {"sleep": "127.0.0.1:0"}

    def processes(self):
        return {"sleep": [self.proc.pid]} if self.proc is not None and self.proc.poll() is None else {}

    def remove(self):
        if self.proc is not None:
            _kill(self.proc.pid)
            self.proc.wait()

    @classmethod
    def remove_recorded(cls, config, state):
        if "pid" in state:
            _kill(state["pid"])


class LeakyService(GoodService):
    """Leaves a detached process behind (it exits by itself after a few seconds)."""

    def deploy(self, platform, inventory, ctx):
        out = subprocess.run(
            ["/bin/sh", "-c", f"sleep {self.config.seconds} >/dev/null 2>&1 & echo $!"],
            capture_output=True, text=True, check=True,
        )
        self.pid = int(out.stdout)
        ctx.record_state({"pid": self.pid})

    def processes(self):
        return {"sleep": [self.pid]}

    def remove(self):
        pass  # forgets its process

    @classmethod
    def remove_recorded(cls, config, state):
        pass


class GoodWorkload(Workload):
    Config: ClassVar[type] = WorkConfig

    def prepare(self, ctx):
        (ctx.work_dir / "prepared").touch()

    def execute(self, ctx):
        start = ctx.phases.enter(Phase.MEASURE)
        ctx.sleep(self.config.duration_s)
        end = ctx.phases.enter(Phase.COOLDOWN)
        return WorkloadResult(units=self.config.count, achieved_rate=self.config.count / (end - start))

    def clean(self, ctx):
        (ctx.work_dir / "prepared").unlink(missing_ok=True)


class NoMeasureWorkload(GoodWorkload):
    def execute(self, ctx):
        ctx.sleep(self.config.duration_s)
        return WorkloadResult(units=self.config.count)


class NominalRateWorkload(GoodWorkload):
    def execute(self, ctx):
        ctx.phases.enter(Phase.MEASURE)
        ctx.sleep(self.config.duration_s * 3)  # slower than asked
        ctx.phases.enter(Phase.COOLDOWN)
        return WorkloadResult(units=self.config.count, achieved_rate=self.config.count / self.config.duration_s)


class FragileCleanWorkload(GoodWorkload):
    def clean(self, ctx):
        (ctx.work_dir / "prepared").unlink()  # raises the second time


@attrs.define
class MutableConfig:
    count: int = 100
    duration_s: float = 0.1


class MutableConfigWorkload(GoodWorkload):
    Config: ClassVar[type] = MutableConfig


class BusyConstructorWorkload(GoodWorkload):
    def __init__(self, config):
        super().__init__(config)
        self.thread = threading.Thread(target=time.sleep, args=(0.2,))
        self.thread.start()


class GoodCollector(Collector):
    Config: ClassVar[type] = ClockConfig
    method = "model:test"

    def __init__(self, name, config):
        super().__init__(name, config)
        self.samples = []
        self.stopping = threading.Event()
        self.thread = None

    def start(self, ctx):
        self.stopping.clear()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        joules = 0.0
        while not self.stopping.wait(self.config.interval_s):
            joules += 0.5
            self.samples.append(Sample(time.time(), "host_energy_joules", joules, "joules", self.method, "here"))

    def collect(self, window):
        before = [s for s in self.samples if s.timestamp < window.start][-1:]
        after = [s for s in self.samples if s.timestamp > window.end][:1]
        return [*before, *[s for s in self.samples if window.contains(s.timestamp)], *after]

    def stop(self):
        self.stopping.set()
        if self.thread is not None:
            self.thread.join()
            self.thread = None


class UnlabelledEnergyCollector(GoodCollector):
    method = "guess"


class EverythingCollector(GoodCollector):
    def collect(self, window):
        return list(self.samples)  # no trimming to the window


class UnreadableCollector(GoodCollector):
    def start(self, ctx):
        raise CollectorError("energy_uj is readable by root only")
'''

TESTS = """
import pytest

from greenflow.testing import CollectorContract, PlatformContract, ServiceContract, WorkloadContract
import plugins as p


class TestGoodPlatform(PlatformContract):
    platform_class = p.GoodPlatform


class TestReleaseNeedsAcquirePlatform(PlatformContract):
    platform_class = p.ReleaseNeedsAcquirePlatform


class _OnGoodPlatform(ServiceContract):
    remove_grace_s = 0.5

    @pytest.fixture
    def platform(self):
        return p.GoodPlatform(p.Empty())


class TestGoodService(_OnGoodPlatform):
    service_class = p.GoodService


class TestLeakyService(_OnGoodPlatform):
    service_class = p.LeakyService

    @pytest.fixture
    def config(self):
        return p.SleepConfig(seconds=3)


class TestGoodWorkload(WorkloadContract):
    workload_class = p.GoodWorkload


class TestNoMeasureWorkload(WorkloadContract):
    workload_class = p.NoMeasureWorkload


class TestNominalRateWorkload(WorkloadContract):
    workload_class = p.NominalRateWorkload


class TestFragileCleanWorkload(WorkloadContract):
    workload_class = p.FragileCleanWorkload


class TestMutableConfigWorkload(WorkloadContract):
    workload_class = p.MutableConfigWorkload


class TestBusyConstructorWorkload(WorkloadContract):
    workload_class = p.BusyConstructorWorkload


class _Clock(CollectorContract):
    window_s = 0.2


class TestGoodCollector(_Clock):
    collector_class = p.GoodCollector


class TestUnlabelledEnergyCollector(_Clock):
    collector_class = p.UnlabelledEnergyCollector


class TestEverythingCollector(_Clock):
    collector_class = p.EverythingCollector


class TestUnreadableCollector(_Clock):
    collector_class = p.UnreadableCollector
"""

#: (test class, contract test) pairs that must fail; every other test must pass or skip.
EXPECTED_FAILURES = {
    ("TestReleaseNeedsAcquirePlatform", "test_release_without_acquire_is_safe"),
    ("TestReleaseNeedsAcquirePlatform", "test_release_is_idempotent"),
    ("TestLeakyService", "test_deploy_ready_endpoints_processes_remove"),
    ("TestLeakyService", "test_remove_recorded_stops_a_deployment_left_behind"),
    ("TestNoMeasureWorkload", "test_prepare_execute_clean"),
    ("TestNoMeasureWorkload", "test_clean_is_idempotent"),
    ("TestNominalRateWorkload", "test_prepare_execute_clean"),
    ("TestNominalRateWorkload", "test_clean_is_idempotent"),
    ("TestFragileCleanWorkload", "test_clean_is_idempotent"),
    ("TestFragileCleanWorkload", "test_clean_without_prepare_is_safe"),
    ("TestMutableConfigWorkload", "test_config_is_a_frozen_attrs_class"),
    ("TestBusyConstructorWorkload", "test_construction_touches_nothing"),
    ("TestUnlabelledEnergyCollector", "test_start_collect_stop"),
    ("TestEverythingCollector", "test_start_collect_stop"),
}

#: Skipped because start() raises CollectorError: the source is unreadable, not broken.
EXPECTED_SKIPS = {
    ("TestUnreadableCollector", "test_start_collect_stop"),
    ("TestUnreadableCollector", "test_stop_is_idempotent"),
    ("TestUnreadableCollector", "test_describe_is_json_serialisable"),
}


def _key(nodeid: str) -> tuple[str, str]:
    _file, cls, test = nodeid.split("::")
    return cls, test


@pytest.fixture
def run(pytester: pytest.Pytester) -> dict[str, set[tuple[str, str]]]:
    pytester.makeini("[pytest]\nfilterwarnings = error\n")
    pytester.makepyfile(plugins=textwrap.dedent(PLUGINS), test_kit=textwrap.dedent(TESTS))
    pytester.syspathinsert()
    reprec = pytester.inline_run("-p", "no:cacheprovider")
    passed, skipped, failed = reprec.listoutcomes()
    return {
        "passed": {_key(r.nodeid) for r in passed},
        "skipped": {_key(r.nodeid) for r in skipped},
        "failed": {_key(r.nodeid) for r in failed},
        "errors": {r.nodeid for r in reprec.getreports("pytest_collectreport") if r.failed},
        "reports": failed,  # type: ignore[dict-item]
    }


def test_each_bug_fails_exactly_its_contract_test(run: dict[str, set[tuple[str, str]]]) -> None:
    """Buggy plugins fail the contract test for their bug, and sound ones pass everything."""
    assert not run["errors"], f"the generated test module did not collect: {run['errors']}"
    unexpected = run["failed"] - EXPECTED_FAILURES
    details = "\n\n".join(str(r.longrepr) for r in run["reports"] if _key(r.nodeid) in unexpected)  # type: ignore[attr-defined]
    assert not unexpected, (
        f"contract tests failed that should pass: {sorted(unexpected)}\n{details}"
    )
    missed = EXPECTED_FAILURES - run["failed"]
    assert not missed, f"contract tests passed that should catch a bug: {sorted(missed)}"
    # Every class leaves entry_point_name unset, so that test skips everywhere.
    entry_point_skips = {
        (cls, "test_entry_point_resolves_to_the_class") for cls, _ in run["passed"]
    }
    assert run["skipped"] == EXPECTED_SKIPS | entry_point_skips
    assert run["passed"], "nothing passed: the contracts did not run"
