"""The ``hello-clock`` collector: a ``ticks_total`` counter sampled in a background thread."""

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
    """Counts ticks from ``start`` to ``stop``; each tick is a ``ticks_total`` sample.

    Not an energy metric, so its method is free: ``"hello"``. An energy collector would
    emit ``*_joules`` counters with method ``rapl``, ``model:<name>``...
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

    def start(self, ctx: CollectorContext) -> None:
        if self._thread is not None:
            return
        self._stopping.clear()
        host = socket.gethostname()
        self._thread = threading.Thread(
            target=self._run, args=(host,), name=f"greenflow-{self.name}", daemon=True
        )
        self._thread.start()

    def _run(self, host: str) -> None:
        ticks = 0
        while True:
            ticks += 1
            sample = Sample(time.time(), "ticks_total", float(ticks), "ticks", "hello", host)
            with self._lock:
                self._samples.append(sample)
            if self._stopping.wait(self.config.interval_s):
                return

    def collect(self, window: Window) -> Sequence[Sample]:
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
