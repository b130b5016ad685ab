"""The ``greenflow`` command run as a user runs it, for end-to-end tests: this Python's
``python -m greenflow`` in a directory of the test's own, output captured, never raising
on a non-zero exit (the test asserts on it)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path


def run_greenflow(
    cwd: Path,
    *args: str,
    timeout_s: float = 900.0,
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """``greenflow ARGS`` in ``cwd`` (relative paths in ARGS are from there), with
    ``env`` (default: this process's). ``timeout_s`` bounds a hung command; a test's own
    pytest-timeout is usually the tighter bound."""
    return subprocess.run(
        [sys.executable, "-m", "greenflow", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
        env=None if env is None else dict(env),
    )
