"""One GreenFlow process at a time per output directory: ``run``, ``up`` and ``down`` hold an
exclusive lock on ``<output>/greenflow.lock`` while they work.

Two runs on one directory would share its store, its broker and its topics: counts of both
stored as each one's. The lock is ``flock`` on a file that also says who holds it, so the
second process gets an error naming the holder; the kernel drops the lock when the holder
dies, however it dies, so a crash never leaves a stale one.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

from greenflow.errors import GreenFlowError

LOCK_NAME = "greenflow.lock"


class DirectoryInUse(GreenFlowError):
    """Another GreenFlow process holds the output directory."""


def _holder(path: Path) -> str:
    try:
        info = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        info = {}
    if not info:
        return "another greenflow process"
    since = dt.datetime.fromtimestamp(info.get("since", 0)).strftime("%Y-%m-%d %H:%M:%S")
    return (
        f"`greenflow {info.get('command', '?')}` (pid {info.get('pid', '?')} on "
        f"{info.get('host', '?')}, since {since})"
    )


@contextlib.contextmanager
def output_lock(output_dir: Path, command: str) -> Iterator[None]:
    """Hold ``output_dir``'s lock for the block, or raise :class:`DirectoryInUse` at once."""
    output_dir.mkdir(parents=True, exist_ok=True)
    path = output_dir / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            msg = (
                f"{output_dir} is in use by {_holder(path)}; wait for it to end (or stop it), "
                "or give this plan another [experiment] output"
            )
            raise DirectoryInUse(msg) from None
        info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "command": command,
            "since": time.time(),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        try:
            yield
        finally:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
