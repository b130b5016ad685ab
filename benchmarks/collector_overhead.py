"""CPU cost of the process collector while it tracks every process on this host.

    /work/venv/bin/python benchmarks/collector_overhead.py [--seconds 20] [--json]

For each rate (1 Hz, 10 Hz) it runs, one after the other and in the same process:

* ``plain psutil``: a loop calling ``psutil.process_iter(["cpu_times"])`` — the least a
  psutil-based sampler does (CPU times only, no memory or I/O, no groups);
* ``plain psutil, same fields``: the same loop also reading ``memory_info`` and
  ``io_counters``, which is what the collector reports;
* ``ProcessCollector`` with each backend (``procfs``, ``psutil``), given a
  ``process_groups`` that puts every process of the host in a group named after it
  (descendants follow their root, so processes started later are tracked too);
* ``ProcessCollector`` in ordinary use: one group (this benchmark's own process), the
  rest of the host only listed, for comparison.

CPU seconds per second of sampling are this process's CPU time (the main thread only
sleeps) over the wall time sampled. Targets: ≤ 0.2 % of a core at 1 Hz, ≤ 1 % at 10 Hz.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import threading
import time
from collections.abc import Callable
from functools import partial
from typing import Any, Protocol

import psutil

from greenflow.api import CollectorContext, Inventory
from greenflow.builtin.collectors import ProcessCollector

TARGET_PERCENT = {1.0: 0.2, 10.0: 1.0}


def groups_by_name() -> dict[str, list[int]]:
    """Every process on the host, grouped as ``name:<process name>``."""
    groups: dict[str, list[int]] = {}
    for p in psutil.process_iter(["name"]):
        groups.setdefault(f"name:{p.info['name'] or '?'}", []).append(p.pid)
    return groups


class PlainLoop:
    """A psutil sampling loop in a thread, with the same Event.wait pacing as the collector."""

    def __init__(self, interval_s: float, read: Callable[[], None]) -> None:
        self.interval_s, self.read, self.ticks = interval_s, read, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        due = time.monotonic()
        while not self._stop.wait(max(0.0, due - time.monotonic())):
            self.read()
            self.ticks += 1
            due += self.interval_s

    def start(self) -> None:
        self.read()  # warm psutil's cache as the collector's start() warms its own
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def read_cpu_times() -> None:
    for _p in psutil.process_iter(["cpu_times"]):
        pass


def read_same_fields() -> None:
    for _p in psutil.process_iter(["cpu_times", "memory_info", "io_counters"]):
        pass


def measure(start: Callable[[], Any], stop: Callable[[], None], seconds: float) -> float:
    """CPU seconds this process spends per wall second between ``start`` and ``stop``."""
    start()
    time.sleep(0.5)  # let start-up work (first reads, opening files) pass
    cpu0, wall0 = time.process_time(), time.monotonic()
    time.sleep(seconds)
    cpu1, wall1 = time.process_time(), time.monotonic()
    stop()
    return (cpu1 - cpu0) / (wall1 - wall0)


class Sampler(Protocol):
    def start(self) -> None: ...
    def stop(self) -> None: ...


class Collecting:
    """A ProcessCollector with the start()/stop() shape of the plain loops."""

    def __init__(self, interval_s: float, backend: str, ctx: CollectorContext) -> None:
        self.ctx = ctx
        self.collector = ProcessCollector(
            "process", ProcessCollector.Config(interval_s=interval_s, backend=backend)
        )

    def start(self) -> None:
        self.collector.start(self.ctx)

    def stop(self) -> None:
        self.collector.stop()


def run(seconds: float, rates: list[float]) -> list[dict[str, Any]]:
    groups = groups_by_name()
    every = CollectorContext("benchmark", Inventory([]), lambda: groups)
    own = {"service:benchmark": [os.getpid()]}
    one = CollectorContext("benchmark", Inventory([]), lambda: own)
    rows: list[dict[str, Any]] = []
    for rate in rates:
        interval = 1.0 / rate
        samplers: list[tuple[str, Callable[[], Sampler]]] = [
            ("plain psutil", partial(PlainLoop, interval, read_cpu_times)),
            ("plain psutil, same fields", partial(PlainLoop, interval, read_same_fields)),
            ("ProcessCollector (procfs)", partial(Collecting, interval, "procfs", every)),
            ("ProcessCollector (psutil)", partial(Collecting, interval, "psutil", every)),
            ("  … 1 group only (procfs)", partial(Collecting, interval, "procfs", one)),
        ]
        plain = None
        for label, make in samplers:
            sampler = make()
            cpu_per_s = measure(sampler.start, sampler.stop, seconds)
            # The next sampler must not pay for collecting this one's garbage.
            del sampler
            gc.collect()
            plain = plain if plain is not None else cpu_per_s
            rows.append(
                {
                    "rate_hz": rate,
                    "sampler": label,
                    "cpu_s_per_s": cpu_per_s,
                    "percent_of_core": 100 * cpu_per_s,
                    "ms_per_tick": 1000 * cpu_per_s / rate,
                    "ratio_to_plain": cpu_per_s / plain if plain else float("nan"),
                    "processes": len(psutil.pids()),
                }
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="per sampler and rate")
    parser.add_argument("--rates", type=float, nargs="+", default=[1.0, 10.0])
    parser.add_argument("--json", action="store_true", help="print rows as JSON")
    args = parser.parse_args()
    rows = run(args.seconds, args.rates)
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(
        f"{rows[0]['processes']} processes on this host, {psutil.cpu_count()} logical CPUs, "
        f"{args.seconds:g} s per sampler and rate\n"
    )
    print(
        f"{'rate':>6}  {'sampler':<28} {'CPU s/s':>9} {'% core':>7} {'ms/tick':>8} "
        f"{'÷ plain':>8}  target"
    )
    for r in rows:
        target = TARGET_PERCENT.get(r["rate_hz"])
        verdict = ""
        if target is not None and r["sampler"].startswith("ProcessCollector"):
            ok = r["percent_of_core"] <= target
            verdict = f"≤ {target:g} % {'met' if ok else 'MISSED'}"
        print(
            f"{r['rate_hz']:>4g}Hz  {r['sampler']:<28} {r['cpu_s_per_s']:>9.5f} "
            f"{r['percent_of_core']:>6.3f}% {r['ms_per_tick']:>8.3f} "
            f"{r['ratio_to_plain']:>8.2f}  {verdict}"
        )


if __name__ == "__main__":
    main()
