"""Recording and killing local processes safely across a crash (pid reuse aware).

A pid alone is not an identity: after a crash the pid may belong to another process. A
recorded process is ``[pid, create_time]``; it is only signalled if both still match.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence

import psutil


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
