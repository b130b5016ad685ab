"""Every plugin step the runner calls, under a deadline and one failure policy.

A step that raises anything — an expected ``GreenFlowError`` or a plugin bug such as a
``KeyError`` — or that does not return by its deadline becomes a :class:`StepFailed`
naming the plugin, its name in the plan, the step, and, for a bug, where in the plugin's
code it was raised (the traceback itself is kept as the cause: ``-v`` prints it).

The deadline is enforced in the main thread: a watchdog thread sends ``SIGUSR2`` to it
when the step's time is up, and the handler raises :class:`StepOverdue` there, which
unwinds the plugin's own ``finally`` blocks like a Ctrl-C (and, being a BaseException, is
not swallowed by a plugin's ``except Exception``). A step stuck inside C code that retries
interrupted system calls by itself is only unwound when that code returns to Python.
Off the main thread (a runner embedded in a test's thread) there is no deadline.
"""

from __future__ import annotations

import signal
import threading
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType, TracebackType
from typing import TypeVar

import attrs

from greenflow.errors import GreenFlowError

T = TypeVar("T")


@attrs.frozen
class Step:
    """One call into a plugin: ``kind`` (platform, service, workload, collector), its
    ``type`` (entry-point name), ``where`` (its place in the plan, e.g. ``[services.0]
    kafka``) and ``step`` (deploy, wait_ready, prepare, execute, clean, ...)."""

    kind: str
    type: str
    where: str
    step: str

    def __str__(self) -> str:
        return f"{self.kind} {self.type!r} ({self.where}) {self.step}"


class StepOverdue(BaseException):  # not an error class: a signal, like KeyboardInterrupt
    """Raised in the main thread when a step's deadline passes; never escapes :func:`call`."""


class StepFailed(GreenFlowError):
    """A plugin step failed or overran its deadline; the message names plugin and step."""

    def __init__(self, step: Step, message: str) -> None:
        super().__init__(message)
        self.step = step


def _where_raised(tb: TracebackType | None) -> str:
    """``file:line in function`` of the innermost frame outside GreenFlow's runner."""
    frames = traceback.extract_tb(tb)
    inside = [f for f in frames if "greenflow/runner/" not in f.filename.replace("\\", "/")]
    frame = (inside or frames)[-1] if frames else None
    if frame is None:
        return ""
    return f"{Path(frame.filename).name}:{frame.lineno} in {frame.name}"


def describe(step: Step, exc: BaseException) -> str:
    """The one-line message of a failed step: what, where, and for a bug where it was raised."""
    if isinstance(exc, GreenFlowError):
        return f"{step} failed: {exc}"
    text = str(exc) if str(exc) else ""
    where = _where_raised(exc.__traceback__)
    return f"{step} failed: {type(exc).__name__}{f': {text}' if text else ''}" + (
        f" (raised at {where}; a bug in the plugin: -v shows the traceback)" if where else ""
    )


class _Watchdog:
    """The one active deadline of the main thread (steps never nest)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.active: object | None = None

    def handler(self, _signum: int, _frame: FrameType | None) -> None:
        with self.lock:
            token = self.active
        if token is not None:
            raise StepOverdue(token)


_WATCHDOG = _Watchdog()


@contextmanager
def deadline(timeout_s: float | None) -> Iterator[None]:
    """Raise :class:`StepOverdue` in the main thread if the block is still running after
    ``timeout_s`` seconds (None or ≤ 0: no deadline; off the main thread: none)."""
    main = threading.main_thread()
    if not timeout_s or timeout_s <= 0 or threading.current_thread() is not main:
        yield
        return
    token = object()
    previous = signal.signal(signal.SIGUSR2, _WATCHDOG.handler)

    def fire() -> None:
        with _WATCHDOG.lock:
            if _WATCHDOG.active is not token:
                return
        signal.pthread_kill(main.ident or 0, signal.SIGUSR2)

    timer = threading.Timer(timeout_s, fire)
    timer.daemon = True
    with _WATCHDOG.lock:
        _WATCHDOG.active = token
    timer.start()
    try:
        yield
    finally:
        with _WATCHDOG.lock:
            _WATCHDOG.active = None
        timer.cancel()
        signal.signal(signal.SIGUSR2, previous)


def call(step: Step, fn: Callable[[], T], timeout_s: float | None) -> T:
    """``fn()`` under a deadline of ``timeout_s``; any failure becomes :class:`StepFailed`
    (KeyboardInterrupt — Ctrl-C, SIGTERM, SIGHUP — passes through untouched)."""
    try:
        with deadline(timeout_s):
            return fn()
    except StepOverdue:
        msg = (
            f"{step} did not return within {timeout_s:g} s; raise [experiment] "
            f"timeouts.{_timeout_key(step)} if it needs longer, or fix what it waits for"
        )
        raise StepFailed(step, msg) from None
    except StepFailed:
        raise
    except Exception as exc:
        raise StepFailed(step, describe(step, exc)) from exc


def _timeout_key(step: Step) -> str:
    if step.kind == "collector" and step.step in ("start", "stop"):
        return f"collector_{step.step}"
    return step.step
