"""RAPL energy counters through the Linux powercap interface (Intel, and AMD on recent kernels).

Layout read (``root`` defaults to ``/sys/class/powercap``)::

    intel-rapl:0/            name = package-0   energy_uj   max_energy_range_uj
    intel-rapl:0/intel-rapl:0:0/   name = core
    intel-rapl:0/intel-rapl:0:1/   name = dram  (or uncore)
    intel-rapl:1/            name = psys (client platforms) or package-1 (second socket)

``/sys/class/powercap`` lists every zone flat (as symlinks) and also nests subzones
inside their parent; both layouts are read, each zone once. ``intel-rapl-mmio:*`` zones
are another interface to the same package counter and are skipped.

**Domains.** Each zone becomes a *domain*, the ``domain`` label of its samples: top-level
zones keep their name (``package-0``, ``psys``); subzones get their package's number
(``core-0``, ``dram-0``, ``uncore-0``).

**Host energy rule** (:func:`host_energy_domains`): ``psys``, when present, alone — it
covers the whole SoC, package included. Otherwise the sum of the ``package-N`` zones and
the ``dram`` zones: DRAM is measured outside the package even where sysfs nests it under
one. ``core`` and ``uncore`` are never added: they are parts of their package.

**Wrap-around.** ``energy_uj`` counts up to ``max_energy_range_uj`` and starts again from
zero. A reading below the previous one means one wrap, and the range is added back
(exact to one counter unit, ~61 µJ, per wrap). Two wraps between reads cannot be told
from one, so the sampling interval must stay below the *wrap time*,
``max_energy_range_uj / max power``: about 260 kJ / 500 W ≈ 9 min for a typical package
counter. :attr:`RaplReader.wrap_times_s` reports it per zone for an assumed maximum power
(:data:`ASSUMED_MAX_POWER_WATTS`), and the collector refuses intervals longer than half of it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

import attrs

from greenflow.errors import CollectorError

#: Where the kernel publishes powercap zones.
DEFAULT_ROOT = "/sys/class/powercap"

#: Power no RAPL zone is expected to exceed, used only to compute wrap times. Above the
#: TDP of any current server socket (AMD EPYC 9654: 360 W; Intel Xeon 8490H: 350 W)
#: with room for short turbo excursions; a client psys zone stays far below it.
ASSUMED_MAX_POWER_WATTS = 500.0

_ZONE = re.compile(r"^intel-rapl:(\d+)(?::(\d+))?$")
_NUMBERED = re.compile(r"-(\d+)$")
_PACKAGE = re.compile(r"^package-\d+$")
_DRAM = re.compile(r"^dram(-\d+)?$")


@attrs.frozen
class RaplZone:
    """One powercap zone: ``intel-rapl:N`` (top level) or ``intel-rapl:N:M`` (subzone)."""

    #: Directory name, e.g. ``intel-rapl:0:1``.
    zone: str
    #: Content of its ``name`` file: ``package-0``, ``psys``, ``core``, ``uncore``, ``dram``.
    name: str
    #: Label of its samples: ``package-0``, ``psys``, ``core-0``, ``dram-0``.
    domain: str
    path: Path
    max_energy_range_uj: int
    #: ``zone`` of the parent for a subzone, None at top level.
    parent: str | None = None

    @property
    def energy_path(self) -> Path:
        """The zone's cumulative energy counter, in microjoules."""
        return self.path / "energy_uj"

    def wrap_time_s(self, max_power_watts: float = ASSUMED_MAX_POWER_WATTS) -> float:
        """Shortest time in which the counter can wrap: its range at ``max_power_watts``."""
        return self.max_energy_range_uj / 1e6 / max_power_watts


def _permission_message(path: Path, root: Path) -> str:
    return (
        f"cannot read {path}: permission denied.\n"
        "  RAPL energy counters are readable by root only on current kernels (the fix for\n"
        "  the PLATYPUS side channel, CVE-2020-8694).\n"
        "  Hint: run greenflow as root, or let a group of trusted users read them:\n"
        f"    sudo chgrp greenflow {root}/intel-rapl:*/energy_uj "
        f"{root}/intel-rapl:*/intel-rapl:*/energy_uj\n"
        f"    sudo chmod g+r {root}/intel-rapl:*/energy_uj "
        f"{root}/intel-rapl:*/intel-rapl:*/energy_uj\n"
        "  (lost at reboot; a udev rule keeps it, e.g. in /etc/udev/rules.d/70-rapl.rules:\n"
        '    ACTION=="add", SUBSYSTEM=="powercap", RUN+="/bin/chgrp greenflow /sys%p/energy_uj", '
        'RUN+="/bin/chmod g+r /sys%p/energy_uj")\n'
        '  or use the collector type = "model" for an estimate labelled model:<name>.'
    )


def _read_int(path: Path, root: Path) -> int:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except PermissionError as exc:
        raise CollectorError(_permission_message(path, root)) from exc
    except OSError as exc:
        msg = f"cannot read {path}: {exc.strerror or exc}; expected a powercap attribute file"
        raise CollectorError(msg) from exc
    try:
        return int(data)
    except ValueError:
        msg = f"{path} holds {data[:40]!r}; expected an integer (microjoules)"
        raise CollectorError(msg) from None


def _read_name(path: Path) -> str:
    try:
        return (path / "name").read_text().strip()
    except OSError as exc:
        raise CollectorError(f"cannot read {path / 'name'}: {exc.strerror or exc}") from exc


def _no_zones_message(root: Path) -> str:
    where = f"{root} does not exist" if not root.exists() else f"{root} has no intel-rapl:N zone"
    return (
        f"no RAPL zones found: {where}.\n"
        "  This is typical in virtual machines and containers, which do not expose RAPL;\n"
        "  on bare metal, load the driver: sudo modprobe intel_rapl_msr (AMD needs a recent\n"
        "  kernel).\n"
        '  Hint: use the collector type = "model" for an estimate labelled model:<name>.'
    )


def discover_zones(root: str | Path = DEFAULT_ROOT) -> tuple[RaplZone, ...]:
    """Every RAPL zone and subzone under ``root``, top-level zones first.

    Raises :class:`~greenflow.errors.CollectorError` when there is none, saying where it
    looked and what to do instead.
    """
    root = Path(root)
    found: dict[str, Path] = {}

    def scan(directory: Path) -> None:
        try:
            entries = sorted(directory.iterdir())
        except OSError:
            return
        for entry in entries:
            if _ZONE.match(entry.name) and entry.name not in found and entry.is_dir():
                found[entry.name] = entry

    scan(root)
    for zone, path in list(found.items()):
        if zone.count(":") == 1:  # a top-level zone: its subzones may be nested only
            scan(path)
    if not found:
        raise CollectorError(_no_zones_message(root))

    def order(zone: str) -> tuple[int, int, int]:
        m = _ZONE.match(zone)
        assert m is not None
        sub = m[2]
        return (0 if sub is None else 1, int(m[1]), -1 if sub is None else int(sub))

    names: dict[str, str] = {}
    zones: list[RaplZone] = []
    for zone in sorted(found, key=order):
        m = _ZONE.match(zone)
        assert m is not None
        path = found[zone]
        name = _read_name(path)
        names[zone] = name
        parent = None if m[2] is None else f"intel-rapl:{m[1]}"
        if name == "psys" or _NUMBERED.search(name):
            domain = name
        else:
            # A subzone takes its package's number: the parent may be intel-rapl:1 and
            # still be package-0 when psys is intel-rapl:0.
            number = _NUMBERED.search(names.get(parent, "")) if parent else None
            domain = f"{name}-{number[1] if number else m[1]}"
        zones.append(
            RaplZone(
                zone, name, domain, path, _read_int(path / "max_energy_range_uj", root), parent
            )
        )
    # Names are unique on every machine we know of; if not, the zone keeps them apart.
    seen = [z.domain for z in zones]
    return tuple(
        attrs.evolve(z, domain=f"{z.domain}@{z.zone}") if seen.count(z.domain) > 1 else z
        for z in zones
    )


def host_energy_domains(domains: Iterable[str]) -> list[str]:
    """Which domains add up to the host's energy (see the module docstring for the rule).

    ``["psys"]`` when psys is among ``domains``; else every ``package-N`` and ``dram``
    domain; never ``core`` or ``uncore``, which are inside their package.
    """
    domains = list(domains)
    if "psys" in domains:
        return ["psys"]
    return sorted(d for d in domains if _PACKAGE.match(d) or _DRAM.match(d))


class RaplReader:
    """Reads every zone under ``root`` and returns cumulative energy corrected for wraps.

    The counters start at the first reading (in joules) and only grow; the first call to
    :meth:`read` also checks that ``energy_uj`` is readable. Not thread-safe: one reader
    per sampling thread.
    """

    def __init__(
        self, root: str | Path = DEFAULT_ROOT, *, max_power_watts: float = ASSUMED_MAX_POWER_WATTS
    ) -> None:
        if not max_power_watts > 0:
            raise ValueError(f"max_power_watts must be > 0, got {max_power_watts!r}")
        self.root = Path(root)
        self.max_power_watts = max_power_watts
        self.zones = discover_zones(self.root)
        self.host_domains = host_energy_domains(z.domain for z in self.zones)
        #: Wraps seen so far, per domain.
        self.wraps: dict[str, int] = {z.domain: 0 for z in self.zones}
        #: Gaps between two reads long enough for a counter to wrap twice unseen (the read
        #: thread stalled: a suspended process, an overloaded host): (seconds, domains).
        self.unsafe_gaps: list[tuple[float, list[str]]] = []
        self._last_at: float | None = None
        self._last_uj: dict[str, int] = {}
        # Integer microjoules: a float total would lose the last digits after days.
        self._total_uj: dict[str, int] = {}

    @property
    def wrap_times_s(self) -> dict[str, float]:
        """Per domain, the shortest time in which its counter can wrap (at ``max_power_watts``)."""
        return {z.domain: z.wrap_time_s(self.max_power_watts) for z in self.zones}

    @property
    def min_wrap_time_s(self) -> float:
        """The shortest wrap time of all zones; sample well within it."""
        return min(self.wrap_times_s.values())

    def read(self, at: float | None = None) -> dict[str, float]:
        """Cumulative energy in joules per domain, wrap-corrected. Raises CollectorError.

        ``at`` is when the read happens (``time.time()`` by default): the actual gap since
        the previous read is checked against each zone's wrap time, whatever interval was
        configured. A gap in which a counter could have wrapped more than once is recorded
        in :attr:`unsafe_gaps` (the one wrap seen is still added back)."""
        now_s = time.time() if at is None else at
        if self._last_at is not None:
            gap = now_s - self._last_at
            unsafe = [d for d, wrap in self.wrap_times_s.items() if gap >= wrap]
            if unsafe:
                self.unsafe_gaps.append((gap, unsafe))
        self._last_at = now_s
        out: dict[str, float] = {}
        for z in self.zones:
            now = _read_int(z.energy_path, self.root)
            last = self._last_uj.get(z.domain)
            if last is None:
                self._total_uj[z.domain] = now
            else:
                delta = now - last
                if delta < 0:
                    delta += z.max_energy_range_uj
                    self.wraps[z.domain] += 1
                self._total_uj[z.domain] += delta
            self._last_uj[z.domain] = now
            out[z.domain] = self._total_uj[z.domain] / 1e6
        return out

    def host_joules(self, readings: Mapping[str, float]) -> float:
        """The host's energy from one :meth:`read` result, by the host energy rule."""
        return sum(readings[d] for d in self.host_domains)
