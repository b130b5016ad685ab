"""Starting, stopping, recording and killing local processes safely (pid reuse aware).

A service's processes (brokers) each run in their own session, so that a Ctrl-C in the
runner's terminal does not reach them directly (teardown stops them in order) and a signal
to the group reaches everything they fork: :func:`spawn_in_own_session`,
:func:`signal_group`, :func:`wait_all`, :func:`group_members`, :func:`kill_groups` (a last
resort for ``weakref.finalize``).

A pid alone is not an identity: after a crash the pid may belong to another process. A
recorded process is ``[pid, create_time]``; it is only signalled if both still match.

Error messages end with the last lines of the process's log: :func:`tail`,
:func:`tail_block` (for a log file), :func:`tail_text` (for output already in memory).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO

import psutil


def spawn_in_own_session(
    cmd: Sequence[str],
    out: IO[bytes],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``cmd`` as the leader of a new session and process group, stdin closed, stdout
    and stderr appended to ``out`` after a first line ``$ <command>``; ``env`` is added to
    this process's environment (its names, not its values, go into that first line).
    OSError when it cannot start."""
    names = f" (env: {', '.join(sorted(env))})" if env else ""
    out.write(f"$ {' '.join(cmd)}{names}\n".encode())
    out.flush()
    return subprocess.Popen(
        list(cmd),
        stdout=out,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        cwd=cwd,
        env={**os.environ, **env} if env else None,
    )


def signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    """Send ``sig`` to the process group ``proc`` leads — only while ``proc`` is unreaped:
    after that its pid (the group id) may be reused."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)


def wait_all(procs: Iterable[subprocess.Popen[bytes]], until: float) -> None:
    """Reap each of ``procs`` that exits before ``until`` (a ``time.monotonic()`` value)."""
    for proc in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=max(0.0, until - time.monotonic()))


def group_members(procs: Iterable[subprocess.Popen[bytes]], since: float) -> list[psutil.Process]:
    """The leaders in ``procs`` still running and, of the groups they lead, the members
    created before ``since`` (a ``time.time()`` value; a group id cannot be reused while a
    member lives, so these are theirs) that are not zombies."""
    out: list[psutil.Process] = []
    groups = set()
    for proc in procs:
        groups.add(proc.pid)
        if proc.poll() is None:
            out.append(psutil.Process(proc.pid))
    leaders = {p.pid for p in out}
    for p in psutil.process_iter():
        try:
            if (
                p.pid not in leaders
                and os.getpgid(p.pid) in groups
                and p.create_time() <= since
                and p.status() != psutil.STATUS_ZOMBIE
            ):
                out.append(p)
        except (ProcessLookupError, psutil.Error):
            continue
    return out


def kill_groups(procs: Mapping[str, subprocess.Popen[bytes]]) -> None:
    """SIGKILL every group in ``procs`` and reap the leaders (5 s each at most). Takes the
    mapping, not its values, so that a ``weakref.finalize`` holding it sees processes added
    after it was made."""
    for proc in procs.values():
        signal_group(proc, signal.SIGKILL)
    for proc in procs.values():
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)


def identify(pids: Iterable[int]) -> list[list[float]]:
    """``[[pid, create_time], ...]`` for the pids that exist now (JSON-serialisable)."""
    out: list[list[float]] = []
    for pid in pids:
        try:
            out.append([pid, psutil.Process(pid).create_time()])
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return out


def kill_recorded(recorded: Iterable[Sequence[float]], timeout_s: float = 10.0) -> list[int]:
    """SIGTERM, then SIGKILL after ``timeout_s``, each recorded process that is still the
    same process, with all its descendants. Returns the pids signalled."""
    procs: list[psutil.Process] = []
    for entry in recorded:
        pid, created = int(entry[0]), float(entry[1])
        try:
            proc = psutil.Process(pid)
            if abs(proc.create_time() - created) > 0.01:
                continue  # the pid was reused by another process
            procs.extend([*proc.children(recursive=True), proc])
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.terminate()
    _gone, alive = psutil.wait_procs(procs, timeout=timeout_s)
    for proc in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
    psutil.wait_procs(alive, timeout=5)
    return [p.pid for p in procs]


#: How many lines of a log an error message shows by default.
TAIL_LINES = 30
# Enough for any tail worth printing; a log of gigabytes is never read whole.
_TAIL_BYTES = 65536


def tail(path: Path, lines: int = TAIL_LINES) -> list[str]:
    """The last ``lines`` lines of a text file, reading at most its last 64 KiB; ``[]``
    when it is missing or unreadable (a process that never wrote its log)."""
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - _TAIL_BYTES))
            data = fh.read()
    except OSError:
        return []
    return data.decode(errors="replace").splitlines()[-lines:]


def tail_text(text: str, lines: int = TAIL_LINES) -> list[str]:
    """The last ``lines`` non-blank lines of ``text``: a log already in memory (a pod's,
    read through the API server)."""
    return [line for line in text.splitlines() if line.strip()][-lines:]


def tail_block(path: Path, lines: int = TAIL_LINES) -> str:
    """``last N lines of <path>:`` and those lines indented, to end an error message with;
    says so when the log is empty or missing."""
    got = tail(path, lines)
    if not got:
        return f"(log {path} is empty or missing)"
    return f"last {len(got)} lines of {path}:\n" + "\n".join(f"  {line}" for line in got)
