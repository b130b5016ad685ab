"""SIGINT and SIGTERM both become KeyboardInterrupt in the main thread, so one code path
(``finally``) tears down for Ctrl-C, ``kill`` and errors alike."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType


@contextmanager
def interrupts_as_keyboard_interrupt(cancel: threading.Event) -> Iterator[None]:
    """Within the block, SIGINT/SIGTERM set ``cancel`` and raise KeyboardInterrupt."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, _frame: FrameType | None) -> None:
        cancel.set()
        raise KeyboardInterrupt(signal.Signals(signum).name)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
