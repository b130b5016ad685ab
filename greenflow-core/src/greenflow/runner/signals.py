"""SIGINT, SIGTERM and SIGHUP all become KeyboardInterrupt in the main thread, so one code
path (``finally``) tears down for Ctrl-C, ``kill``, a closed terminal or a dropped SSH
session (the usual way a long testbed run dies) and errors alike."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

#: The signals a run tears down on.
INTERRUPTS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@contextmanager
def interrupts_as_keyboard_interrupt(cancel: threading.Event) -> Iterator[None]:
    """Within the block, SIGINT/SIGTERM/SIGHUP set ``cancel`` and raise KeyboardInterrupt."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, _frame: FrameType | None) -> None:
        cancel.set()
        raise KeyboardInterrupt(signal.Signals(signum).name)

    previous = {s: signal.signal(s, handler) for s in INTERRUPTS}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
