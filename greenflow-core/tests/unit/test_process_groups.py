"""greenflow.api.processes: a service's process runs in its own group, and stopping the
group reaches what it forked — real processes, real signals."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from greenflow.api.processes import (
    group_members,
    identify,
    kill_groups,
    kill_recorded,
    signal_group,
    spawn_in_own_session,
    wait_all,
)


def _wait_for(predicate: Callable[[], bool], timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_a_spawned_group_is_found_whole_and_stopped_whole(tmp_path: Path) -> None:
    """The leader and the child it forked are the group's members; SIGTERM to the group
    ends both, the log starts with the command line, and nothing is left."""
    log = tmp_path / "out.log"
    with log.open("ab") as out:
        leader = spawn_in_own_session(
            ["/bin/sh", "-c", "sleep 60 & echo started; wait"], out, cwd=tmp_path
        )
    since = time.time() + 1.0
    assert _wait_for(lambda: len(group_members([leader], since)) == 2)
    assert log.read_text().startswith("$ /bin/sh -c sleep 60 & echo started; wait\n")
    signal_group(leader, signal.SIGTERM)
    wait_all([leader], time.monotonic() + 10)
    assert leader.poll() is not None
    assert _wait_for(lambda: group_members([leader], since) == [])


def test_kill_groups_sees_processes_added_after_the_finalizer_was_made(tmp_path: Path) -> None:
    """kill_groups takes the mapping, so a process added to it later is killed too."""
    procs: dict[str, subprocess.Popen[bytes]] = {}
    with (tmp_path / "out.log").open("ab") as out:
        procs["a"] = spawn_in_own_session(["sleep", "60"], out)
    kill_groups(procs)
    assert procs["a"].poll() == -signal.SIGKILL


def test_kill_recorded_spares_a_process_whose_pid_was_reused(tmp_path: Path) -> None:
    """A recorded [pid, create_time] whose create time no longer matches is left alone."""
    with (tmp_path / "out.log").open("ab") as out:
        proc = spawn_in_own_session(["sleep", "60"], out)
    try:
        ((pid, created),) = identify([proc.pid])
        assert kill_recorded([[pid, created + 5.0]], timeout_s=1) == []
        assert proc.poll() is None
        assert kill_recorded([[pid, created]], timeout_s=5) == [proc.pid]
        proc.wait(timeout=5)  # (psutil reaped it: Popen sees no exit status of its own)
        assert identify([pid]) == []
    finally:
        kill_groups({"p": proc})
