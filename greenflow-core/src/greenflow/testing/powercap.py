"""A powercap tree on disk, for tests of anything that reads RAPL counters through sysfs.

SIMULATED on purpose: a machine without RAPL (a VM, CI) has no ``/sys/class/powercap``;
this writes the same layout into any directory, and readers (GreenFlow's ``rapl``
collector, Scaphandre) read it as they read the kernel's.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path


class Powercap:
    """A powercap tree laid out like sysfs: zone directories with name, energy_uj and
    max_energy_range_uj, subzones nested in their zone. Counters wrap as the kernel's do:
    they take values 0..max_energy_range_uj and start again from 0."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.ranges: dict[str, int] = {}

    def path(self, zone: str) -> Path:
        parts = zone.split(":")
        top = self.root / ":".join(parts[:2])
        return top if len(parts) == 2 else top / zone

    def add(self, zone: str, name: str, max_range_uj: int) -> Path:
        path = self.path(zone)
        path.mkdir(parents=True)
        (path / "name").write_text(name + "\n")
        (path / "max_energy_range_uj").write_text(f"{max_range_uj}\n")
        self.ranges[zone] = max_range_uj
        self.set(zone, 0)
        return path

    def set(self, zone: str, total_uj: int) -> None:
        """Publish a zone's total energy, folded into its counter's range."""
        path = self.path(zone)
        tmp = path / ".energy_uj.tmp"
        tmp.write_text(f"{total_uj % (self.ranges[zone] + 1)}\n")
        os.replace(tmp, path / "energy_uj")  # atomic: a reader never sees a half-written file

    def wraps(self, zone: str, total_uj: int) -> int:
        """How many times the counter has wrapped once ``total_uj`` has been published."""
        return total_uj // (self.ranges[zone] + 1)


class ConstantPower:
    """A powercap tree with one package zone (``intel-rapl:0``) whose counter a thread
    advances at ``power_w`` from the moment the block is entered, wrapping every
    ``range_uj`` µJ as RAPL counters do. SIMULATED: it stands in for a CPU's energy counter
    on a machine without RAPL; readers (the ``rapl`` collector, Scaphandre) read it as they
    would the kernel's. ``wraps`` counts the wraps so far::

        with ConstantPower(tmp_path / "powercap", 30.0, range_uj=360_000_000) as power:
            ...  # point the reader at tmp_path / "powercap"
        assert power.wraps >= 1
    """

    ZONE = "intel-rapl:0"

    def __init__(self, root: Path, power_w: float, range_uj: int, step_s: float = 0.05) -> None:
        self.tree, self.power_w, self.step_s = Powercap(root), power_w, step_s
        self.tree.add(self.ZONE, "package-0", range_uj)
        self.wraps = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._advance, name="constant-power", daemon=True)

    def _advance(self) -> None:
        start = time.monotonic()
        while not self._stop.wait(self.step_s):
            total = int((time.monotonic() - start) * self.power_w * 1e6)
            self.wraps = self.tree.wraps(self.ZONE, total)
            self.tree.set(self.ZONE, total)

    def __enter__(self) -> ConstantPower:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
