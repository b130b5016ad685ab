"""The contract kit itself: sound plugins pass every contract, and each kind of bug fails
exactly the contract test meant to catch it (and no other).

The plugins below are written into a pytester directory and their contract subclasses run
in-process; the outcome of every test is compared with what we expect.
"""

from __future__ import annotations

import textwrap
from typing import Any

import psutil
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

from pathlib import Path

from greenflow.api import (
    Capability, Collector, Host, Inventory, Phase, Platform, Sample, Service, Workload,
    WorkloadResult,
)
from greenflow.errors import CollectorError, WorkloadError

#: Every process a service below starts, to check afterwards that none outlived its test.
PIDS = Path("spawned-pids.txt").resolve()


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


#: The services' processes by pid, so that remove_recorded, which only has the pid, can
#: reap what it kills (an unreaped Popen warns when it is collected).
_PROCS: dict[int, subprocess.Popen] = {}


def _kill(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc = _PROCS.pop(pid, None)
    if proc is not None:
        proc.wait()


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
        _PROCS[self.proc.pid] = self.proc
        with PIDS.open("a") as f:
            f.write(f"{type(self).__name__} {self.proc.pid}\\n")
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


class HungDeployService(GoodService):
    """Starts its process, then never returns from deploy (a server that never answers)."""

    def deploy(self, platform, inventory, ctx):
        super().deploy(platform, inventory, ctx)
        time.sleep(30)


class HungReadyService(GoodService):
    def wait_ready(self, timeout_s):
        time.sleep(30)  # ignores its timeout


class HungRemoveService(GoodService):
    def remove(self):
        if self.proc is None:
            return
        try:
            self.proc.wait(timeout=0.3)  # quick once remove_recorded killed it
        except subprocess.TimeoutExpired:
            time.sleep(30)  # otherwise waits for something that never comes


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


class IgnoresCancelWorkload(GoodWorkload):
    def execute(self, ctx):
        start = ctx.phases.enter(Phase.MEASURE)
        time.sleep(self.config.duration_s)  # not ctx.sleep: Ctrl-C waits for the whole run
        end = ctx.phases.enter(Phase.COOLDOWN)
        return WorkloadResult(units=self.config.count, achieved_rate=self.config.count / (end - start))


class NeedsServiceWorkload(GoodWorkload):
    """Drives the service deployed under the name "sleep"."""

    def validate(self, services):
        return None if "sleep" in services else f"needs a service named 'sleep', got {sorted(services)}"

    def execute(self, ctx):
        if not ctx.services["sleep"].processes():
            raise WorkloadError("the sleep service is not running")
        return super().execute(ctx)


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

    metric = "host_energy_joules"

    def start(self, ctx):
        self.stopping.clear()
        self.t0 = time.time()
        self.lock = threading.Lock()
        self.sample()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def sample(self):
        with self.lock:  # a counter read at any moment: 10 W since start
            now = time.time()
            self.samples.append(Sample(now, self.metric, 10.0 * (now - self.t0), "joules", self.method, "here"))

    def run(self):
        while not self.stopping.wait(self.config.interval_s):
            self.sample()

    def mark(self):
        if self.thread is not None:
            self.sample()

    def collect(self, window):
        if self.thread is not None and self.samples[-1].timestamp < window.end:
            self.sample()
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


class BackgroundOnlyCollector(GoodCollector):
    """Samples only in its thread: the window's end is not read when collect() is called."""

    def mark(self):
        pass

    def collect(self, window):
        before = [s for s in self.samples if s.timestamp < window.start][-1:]
        after = [s for s in self.samples if s.timestamp > window.end][:1]
        return [*before, *[s for s in self.samples if window.contains(s.timestamp)], *after]


class UnreadEnergyNameCollector(GoodCollector):
    metric = "cpu_energy_joules"  # stored, but never a run's energy


class PowerOnlyCollector(GoodCollector):
    metric = "host_power_watts"  # the runner integrates counters, not power


class UnreadableCollector(GoodCollector):
    def start(self, ctx):
        raise CollectorError("energy_uj is readable by root only")
'''

TESTS = """
import attrs
import pytest

from greenflow.testing import (
    CollectorContract, PlatformContract, ServiceContract, WorkloadContract, deploy_services,
)
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


class _Hung(_OnGoodPlatform):
    deploy_timeout_s = 1.0
    ready_timeout_s = 0.2
    ready_grace_s = 0.5
    remove_timeout_s = 1.0


class TestHungDeployService(_Hung):
    service_class = p.HungDeployService


class TestHungReadyService(_Hung):
    service_class = p.HungReadyService


class TestHungRemoveService(_Hung):
    service_class = p.HungRemoveService


class _Work(WorkloadContract):
    cancel_after_s = 0.1
    cancel_grace_s = 0.5

    @pytest.fixture
    def cancel_config(self, config):
        return attrs.evolve(config, duration_s=3.0)


class TestGoodWorkload(_Work):
    workload_class = p.GoodWorkload


class TestNoMeasureWorkload(_Work):
    workload_class = p.NoMeasureWorkload


class TestNominalRateWorkload(_Work):
    workload_class = p.NominalRateWorkload


class TestFragileCleanWorkload(_Work):
    workload_class = p.FragileCleanWorkload


class TestMutableConfigWorkload(_Work):
    workload_class = p.MutableConfigWorkload


class TestBusyConstructorWorkload(_Work):
    workload_class = p.BusyConstructorWorkload


class TestIgnoresCancelWorkload(_Work):
    workload_class = p.IgnoresCancelWorkload


class TestShortCancelConfigWorkload(WorkloadContract):
    # The default cancel_config (config: a 0.1 s run) ends before it can be cancelled.

    workload_class = p.GoodWorkload


class TestNeedsServiceWorkload(_Work):
    # The contract deploys services_to_deploy on the local platform for each test.

    workload_class = p.NeedsServiceWorkload

    @pytest.fixture
    def services_to_deploy(self):
        return {"sleep": p.GoodService("sleep", p.SleepConfig())}


class TestDeployServices:
    def test_a_hung_deploy_fails_naming_the_step(self, tmp_path):
        hung = p.HungDeployService("web", p.SleepConfig())
        with pytest.raises(pytest.fail.Exception, match=r"HungDeployService.deploy\\(\\) of service 'web' did not return within 0.5 s"):
            with deploy_services({"web": hung}, tmp_path, platform=p.GoodPlatform(p.Empty()), deploy_timeout_s=0.5):
                pass


class _Clock(CollectorContract):
    window_s = 0.2


class TestGoodCollector(_Clock):
    collector_class = p.GoodCollector


class TestUnlabelledEnergyCollector(_Clock):
    collector_class = p.UnlabelledEnergyCollector


class TestEverythingCollector(_Clock):
    collector_class = p.EverythingCollector


class TestBackgroundOnlyCollector(_Clock):
    collector_class = p.BackgroundOnlyCollector

    @pytest.fixture
    def config(self):
        return p.ClockConfig(interval_s=0.5)  # no tick lands between the end and collect()


class TestUnreadEnergyNameCollector(_Clock):
    collector_class = p.UnreadEnergyNameCollector


class TestPowerOnlyCollector(_Clock):
    collector_class = p.PowerOnlyCollector


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
    # Deadlines on service steps: each hung step fails the checks that run it.
    ("TestHungDeployService", "test_deploy_ready_endpoints_processes_remove"),
    ("TestHungDeployService", "test_remove_recorded_stops_a_deployment_left_behind"),
    ("TestHungReadyService", "test_deploy_ready_endpoints_processes_remove"),
    ("TestHungReadyService", "test_remove_recorded_stops_a_deployment_left_behind"),
    ("TestHungRemoveService", "test_deploy_ready_endpoints_processes_remove"),
    # A workload that does not stop on Ctrl-C, and a check given nothing to cancel.
    ("TestIgnoresCancelWorkload", "test_execute_stops_promptly_when_cancelled"),
    ("TestShortCancelConfigWorkload", "test_execute_stops_promptly_when_cancelled"),
    # Collection right at a window's end; energy under a name the runner reads.
    ("TestBackgroundOnlyCollector", "test_collect_right_at_the_window_end_covers_both_edges"),
    ("TestUnreadEnergyNameCollector", "test_energy_uses_names_the_runner_reads"),
    ("TestPowerOnlyCollector", "test_energy_uses_names_the_runner_reads"),
}

#: What the failure of some of them must say.
EXPECTED_MESSAGES = {
    ("TestHungDeployService", "test_deploy_ready_endpoints_processes_remove"): (
        "HungDeployService.deploy() of service 'contract' did not return within 1 s "
        "(deploy_timeout_s)"
    ),
    ("TestHungReadyService", "test_deploy_ready_endpoints_processes_remove"): (
        "HungReadyService.wait_ready() of service 'contract' did not return within 0.7 s "
        "(ready_timeout_s + ready_grace_s)"
    ),
    ("TestHungRemoveService", "test_deploy_ready_endpoints_processes_remove"): (
        "HungRemoveService.remove() of service 'contract' did not return within 1 s "
        "(remove_timeout_s)"
    ),
    ("TestIgnoresCancelWorkload", "test_execute_stops_promptly_when_cancelled"): (
        "execute() was still running 0.5 s after ctx.cancel was set"
    ),
    ("TestShortCancelConfigWorkload", "test_execute_stops_promptly_when_cancelled"): (
        "before the contract set ctx.cancel"
    ),
    ("TestBackgroundOnlyCollector", "test_collect_right_at_the_window_end_covers_both_edges"): (
        "no reading at or after the window's end"
    ),
    ("TestUnreadEnergyNameCollector", "test_energy_uses_names_the_runner_reads"): (
        "energy series ['cpu_energy_joules'] have names the runner does not read"
    ),
    ("TestPowerOnlyCollector", "test_energy_uses_names_the_runner_reads"): (
        "power series ['host_power_watts'] but no energy counter"
    ),
}

#: Skipped because start() raises CollectorError: the source is unreadable, not broken.
EXPECTED_SKIPS = {
    ("TestUnreadableCollector", "test_start_collect_stop"),
    ("TestUnreadableCollector", "test_stop_is_idempotent"),
    ("TestUnreadableCollector", "test_describe_is_json_serialisable"),
    ("TestUnreadableCollector", "test_collect_right_at_the_window_end_covers_both_edges"),
    ("TestUnreadableCollector", "test_energy_uses_names_the_runner_reads"),
}


def _key(nodeid: str) -> tuple[str, str]:
    _file, cls, test = nodeid.split("::")
    return cls, test


#: The generated suite's outcome: it takes ~20 s, so the tests below share one run.
_OUTCOME: dict[str, Any] = {}


@pytest.fixture
def run(pytester: pytest.Pytester) -> dict[str, Any]:
    """Every contract on every plugin above, run once for this module's tests."""
    if _OUTCOME:
        return _OUTCOME
    pytester.makeini("[pytest]\nfilterwarnings = error\n")
    pytester.makepyfile(plugins=textwrap.dedent(PLUGINS), test_kit=textwrap.dedent(TESTS))
    pytester.syspathinsert()
    reprec = pytester.inline_run("-p", "no:cacheprovider")
    passed, skipped, failed = reprec.listoutcomes()
    pids = pytester.path / "spawned-pids.txt"
    _OUTCOME.update(
        passed={_key(r.nodeid) for r in passed},
        skipped={_key(r.nodeid) for r in skipped},
        failed={_key(r.nodeid) for r in failed},
        errors={r.nodeid for r in reprec.getreports("pytest_collectreport") if r.failed},
        reports=failed,
        spawned=[line.split() for line in pids.read_text().splitlines()] if pids.exists() else [],
    )
    return _OUTCOME


def test_each_bug_fails_exactly_its_contract_test(run: dict[str, Any]) -> None:
    """Buggy plugins fail the contract test for their bug, and sound ones pass everything."""
    assert not run["errors"], f"the generated test module did not collect: {run['errors']}"
    unexpected = run["failed"] - EXPECTED_FAILURES
    details = "\n\n".join(str(r.longrepr) for r in run["reports"] if _key(r.nodeid) in unexpected)
    assert not unexpected, (
        f"contract tests failed that should pass: {sorted(unexpected)}\n{details}"
    )
    missed = EXPECTED_FAILURES - run["failed"]
    assert not missed, f"contract tests passed that should catch a bug: {sorted(missed)}"
    # Every class leaves entry_point_name unset, so that test skips everywhere.
    entry_point_skips = {
        (cls, "test_entry_point_resolves_to_the_class")
        for cls, _ in run["passed"]
        if cls != "TestDeployServices"  # not a contract
    }
    assert run["skipped"] == EXPECTED_SKIPS | entry_point_skips
    assert run["passed"], "nothing passed: the contracts did not run"


def test_each_new_check_says_what_failed(run: dict[str, Any]) -> None:
    """A hung step is named with its deadline, an uncancelled workload, an uncovered window
    end and an unread energy name each say so in the failure."""
    reports = {_key(r.nodeid): str(r.longrepr) for r in run["reports"]}
    for key, message in EXPECTED_MESSAGES.items():
        assert message in reports.get(key, ""), f"{key}: {message!r} not in\n{reports.get(key)}"


def test_no_process_outlives_its_test(run: dict[str, Any]) -> None:
    """Every process a service started — hung in deploy, wait_ready or remove, or deployed by
    the contract for a workload — is gone: the deadline's clean-up stopped it."""
    assert run["spawned"], "no service recorded a process: the services did not run"
    assert {cls for cls, _pid in run["spawned"]} >= {
        "GoodService",
        "HungDeployService",
        "HungReadyService",
        "HungRemoveService",
    }
    alive = []
    for cls, pid in run["spawned"]:
        try:
            if psutil.Process(int(pid)).status() != psutil.STATUS_ZOMBIE:
                alive.append(f"{cls} {pid}")
        except psutil.NoSuchProcess:
            continue
    assert not alive, f"processes left running: {alive}"


@pytest.mark.parametrize(
    ("metric", "labels"),
    [
        ("energy_joules", {"domain": "package-0"}),
        ("energy_joules", {"domain": "host"}),
        ("energy_joules", {}),
        ("host_energy_joules", {}),
        ("pod_energy_joules", {"pod": "p", "namespace": "n"}),
    ],
)
def test_energy_metrics_are_what_the_runner_reads(metric: str, labels: dict[str, str]) -> None:
    """Each name the kit accepts as energy becomes a run's energy figure in attribution."""
    from greenflow.api import Sample, Window
    from greenflow.measure.attribution import compute_run_metrics
    from greenflow.testing import ENERGY_METRICS

    assert metric in ENERGY_METRICS
    counter = [Sample(t, metric, 10.0 * t, "joules", "rapl", "h", labels) for t in (0.0, 10.0)]
    host = (
        []
        if metric != "pod_energy_joules"
        else [
            Sample(t, "energy_joules", 20.0 * t, "joules", "rapl", "h", {"domain": "host"})
            for t in (0.0, 10.0)
        ]
    )
    figures = compute_run_metrics([*counter, *host], Window(0.0, 10.0))
    scope = "pod" if metric == "pod_energy_joules" else "host"
    (energy,) = [m for m in figures if m.name == "energy_joules" and m.labels["scope"] == scope]
    assert energy.value == pytest.approx(100.0)


def test_other_joules_names_are_not_energy() -> None:
    """A *_joules series under another name gives the runner no energy: the kit refuses it."""
    from greenflow.api import Sample, Window
    from greenflow.errors import CollectorError
    from greenflow.measure.attribution import compute_run_metrics

    counter = [Sample(t, "cpu_energy_joules", t, "joules", "rapl", "h") for t in (0.0, 10.0)]
    with pytest.raises(CollectorError, match="no energy samples"):
        compute_run_metrics(counter, Window(0.0, 10.0))
