"""Group membership of real processes: descendants, orphans, and groups that go away."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator

import pytest

from greenflow.measure.processes import ProcessTracker


@pytest.fixture(params=["procfs", "psutil"])
def tracker(request: pytest.FixtureRequest) -> Iterator[ProcessTracker]:
    if request.param == "procfs" and not os.path.exists("/proc/self/stat"):
        pytest.skip("procfs backend needs Linux /proc")
    t = ProcessTracker(request.param)
    yield t
    t.close()


def _comm(pid: int) -> str:
    import psutil

    try:
        return str(psutil.Process(pid).name())
    except psutil.Error:
        return ""


@pytest.fixture
def shell_with_child() -> Iterator[tuple[subprocess.Popen[str], int]]:
    """A shell that started a background ``sleep`` and waits for a line before exiting."""
    with subprocess.Popen(
        ["/bin/sh", "-c", "sleep 60 & echo $!; read _line"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as sh:
        assert sh.stdout is not None
        child = int(sh.stdout.readline())
        # Until it has exec'd, the child is a fresh fork of the shell, whose RSS counters
        # start at 0 (/proc/<pid>/stat): under load that lasted past the shell's exit and
        # the orphan test read rss 0. Wait for the sleep itself.
        deadline = time.monotonic() + 30
        while _comm(child) != "sleep":
            assert time.monotonic() < deadline, f"pid {child} never became sleep"
            time.sleep(0.01)
        try:
            yield sh, child
        finally:
            for pid in (child, sh.pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


def test_orphan_keeps_its_group(
    tracker: ProcessTracker, shell_with_child: tuple[subprocess.Popen[str], int]
) -> None:
    """When the root exits, its re-parented child still counts for the group."""
    sh, _child = shell_with_child
    groups = {"service:x": [sh.pid]}
    before = tracker.read(groups)["service:x"]
    assert before.rss_bytes > 0
    assert sh.stdin is not None
    sh.stdin.write("go\n")
    sh.stdin.close()
    sh.wait()
    after = tracker.read(groups)["service:x"]
    assert after.rss_bytes > 0  # the sleep, now a child of init
    assert after.cpu_seconds >= before.cpu_seconds


def test_group_whose_root_is_dropped_keeps_its_count_and_loses_members(
    tracker: ProcessTracker, shell_with_child: tuple[subprocess.Popen[str], int]
) -> None:
    """A group no longer listed keeps reporting its CPU time, with no live processes."""
    sh, _child = shell_with_child
    before = tracker.read({"service:x": [sh.pid]})["service:x"]
    after = tracker.read({})["service:x"]
    assert after.rss_bytes == 0
    assert after.cpu_seconds == before.cpu_seconds


def test_unknown_backend_is_refused() -> None:
    """A misspelt backend names the valid ones."""
    with pytest.raises(ValueError, match="auto, procfs, psutil"):
        ProcessTracker("proc")


def _recomputed(tracker: ProcessTracker) -> dict[str, tuple[float, int]]:
    """Each group's (cpu_seconds, rss_bytes) summed afresh from the tracker's processes."""
    cpu = dict(tracker._dead_cpu)
    rss: dict[str, int] = {}
    for proc in tracker._tracked.values():
        assert proc.group is not None
        cpu[proc.group] = cpu.get(proc.group, 0.0) + proc.cpu - (proc.base_cpu or 0.0)
        rss[proc.group] = rss.get(proc.group, 0) + proc.rss
    return {g: (cpu.get(g, 0.0), rss.get(g, 0)) for g in tracker._groups}


def test_usage_recomputed_only_where_something_moved_stays_exact(tracker: ProcessTracker) -> None:
    """A read recomputes only the groups whose processes moved; what it reports must equal a
    full recomputation while children start, burn CPU, exit, and groups come and go."""
    script = (
        "for i in 1 2 3 4 5 6; do (i=0; while [ $i -lt 30000 ]; do i=$((i+1)); done) & "
        "sleep 0.05; done; wait"
    )
    with (
        subprocess.Popen(["/bin/sh", "-c", script]) as busy,
        subprocess.Popen(["sleep", "30"]) as idle,
    ):
        try:
            groups = {"service:busy": [busy.pid], "service:idle": [idle.pid]}
            seen = 0
            while busy.poll() is None or seen < 3:
                usage = tracker.read(groups)
                expected = _recomputed(tracker)
                for group, (cpu, rss) in expected.items():
                    assert usage[group].cpu_seconds == pytest.approx(cpu, abs=1e-9), group
                    assert usage[group].rss_bytes == rss, group
                seen += busy.poll() is not None
                if seen == 2:
                    groups = {"service:busy": [busy.pid]}  # service:idle stops being listed
            final = tracker.read(groups)
            assert final["service:busy"].cpu_seconds > 0  # the children's work was counted
            assert final["service:idle"].rss_bytes == 0  # no longer a member
        finally:
            idle.kill()
