"""The ``hello-clock`` collector: a ``ticks_total`` counter, read in a background thread,
at every phase boundary and when a window ends."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import attrs

from greenflow.api import Collector, CollectorContext, Sample, Window
from greenflow.plan.validators import positive


@attrs.frozen
class HelloClockConfig:
    """``[[collectors]] type = "hello-clock"``."""

    #: Seconds between ticks.
    interval_s: float = attrs.field(default=0.1, validator=positive)


class HelloClockCollector(Collector):
    """A ``ticks_total`` counter: clock ticks of ``interval_s`` since :meth:`start`.

    It samples the way every counter collector should (docs/writing-a-plugin.md, *Writing
    an energy collector*): a background thread reads the counter every ``interval_s``;
    :meth:`mark`, which the runner calls at every phase boundary, reads it there; and
    :meth:`collect`, which the runner calls right as a window ends, reads it once more when
    the newest reading is older than the window's end. So every window starts and ends on
    a reading; a thread alone would leave a window's end uncovered, and an energy counter's
    run without energy.

    Not an energy metric, so its method is free: ``"hello"``. An energy collector emits a
    cumulative ``energy_joules`` labelled ``domain`` with method ``rapl``, ``model:<name>``...
    """

    Config: ClassVar[type] = HelloClockConfig
    config: HelloClockConfig

    def __init__(self, name: str, config: HelloClockConfig) -> None:
        # Only store things here: threads, files and connections belong in start().
        super().__init__(name, config)
        self._samples: list[Sample] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._host = ""
        self._started = 0.0

    def start(self, ctx: CollectorContext) -> None:
        if self._thread is not None:
            return
        self._stopping.clear()
        self._host = socket.gethostname()
        self._started = time.time()
        self._read()  # a first reading at once: a window that starts now has one at its start
        self._thread = threading.Thread(
            target=self._run, name=f"greenflow-{self.name}", daemon=True
        )
        self._thread.start()

    def _read(self) -> None:
        """Read the counter now and keep the sample (from any thread)."""
        now = time.time()
        ticks = (now - self._started) / self.config.interval_s
        with self._lock:
            self._samples.append(Sample(now, "ticks_total", ticks, "ticks", "hello", self._host))

    def _run(self) -> None:
        while not self._stopping.wait(self.config.interval_s):
            self._read()

    def mark(self) -> None:
        if self._thread is not None:
            self._read()

    def collect(self, window: Window) -> Sequence[Sample]:
        with self._lock:
            newest = self._samples[-1].timestamp if self._samples else None
        if self._thread is not None and (newest is None or newest < window.end):
            self._read()  # called right as the window ended: read its end now
        with self._lock:
            samples = list(self._samples)
        before = [s for s in samples if s.timestamp < window.start][-1:]
        inside = [s for s in samples if window.contains(s.timestamp)]
        after = [s for s in samples if s.timestamp > window.end][:1]
        return [*before, *inside, *after]

    def stop(self) -> None:
        self._stopping.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join()

    def describe(self) -> Mapping[str, Any]:
        return {"interval_s": self.config.interval_s}
