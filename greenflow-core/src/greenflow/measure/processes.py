"""CPU time, memory and I/O per attribution group of processes, descendants included.

A *group* (``service:kafka``, ``loadgen:kafka-ingest``) is given as root pids; every live
descendant of a root belongs to the group too, found through parent pids each time the
set of processes changes. What each group reports:

* ``cpu_seconds`` — user + system CPU time, cumulative, and never going backwards: when
  a process exits, the group keeps the CPU time last seen for it. What a process spends
  between the last read and its exit is lost, and so is all of a child that starts and
  ends between two reads. (Linux does add reaped children to their parent's
  ``cutime``/``cstime``, which psutil reports as ``children_user``/``children_system``,
  but adding those would count again every child that was also seen alive.) Sample
  faster than the group's processes live.
* ``rss_bytes`` — resident memory of the live processes, a gauge.
* ``io_read_bytes`` / ``io_write_bytes`` — storage I/O, cumulative, from the processes
  whose ``/proc/<pid>/io`` may be read (all of them as root); None for a group where
  none may. A process's I/O is read when its CPU time moved (I/O is accounted as it
  runs), and at least every :data:`IO_REFRESH_S` otherwise.

A process keeps its group when its parent dies (it is re-parented to init, but it is
still the service's work); a process whose root is no longer listed leaves the group,
which keeps the CPU time it had. A process that joins a group counts from the moment it
is seen there, except a process born since the previous read, which counts whole. A
process whose parent exited before it was first seen is already a child of init and
cannot be placed.

Two backends read the processes. ``procfs`` (Linux) keeps ``/proc/<pid>/stat`` and
``/proc/<pid>/io`` open for tracked processes and re-reads them with ``pread``: about
4 µs a process instead of the ~16 µs of ``psutil.Process.cpu_times()``, which opens the
file each time; a kept descriptor also belongs to one process, so a reused pid cannot be
mistaken for it. ``psutil`` is the portable fallback, with cached ``Process`` objects and
``oneshot()``. ``benchmarks/collector_overhead.py`` measures both.
"""

from __future__ import annotations

import os
import resource
import sys
import time
from collections.abc import Mapping
from typing import Any, NamedTuple

import attrs

from greenflow.api import ProcessGroups

BACKENDS = ("auto", "procfs", "psutil")
#: Longest time between two I/O reads of a tracked process whose CPU time did not move.
IO_REFRESH_S = 1.0


@attrs.frozen
class GroupUsage:
    """One group's figures at one instant (see the module docstring)."""

    cpu_seconds: float
    rss_bytes: int
    io_read_bytes: int | None = None
    io_write_bytes: int | None = None


class _Stat(NamedTuple):
    ppid: int
    #: Start time in the backend's unit; with the pid, identifies a process.
    start: float
    cpu_seconds: float
    rss_bytes: int


class _Proc:
    __slots__ = (
        "base_cpu",
        "base_read",
        "base_write",
        "cpu",
        "fresh",
        "group",
        "io_at",
        "io_ok",
        "pid",
        "ppid",
        "read",
        "rss",
        "start",
        "write",
    )

    def __init__(self, pid: int, st: _Stat) -> None:
        self.pid, self.ppid, self.start = pid, st.ppid, st.start
        self.cpu, self.rss = st.cpu_seconds, st.rss_bytes
        self.group: str | None = None
        #: Born since the previous read: counts from zero when it joins a group.
        self.fresh = True
        # None: take the next reading as the base (joined a group mid-life).
        self.base_cpu: float | None = None
        self.io_ok: bool | None = None
        self.io_at = 0.0  # monotonic time of the last I/O read
        self.read: int | None = None
        self.write: int | None = None
        self.base_read: int | None = None
        self.base_write: int | None = None


class _ProcfsSource:
    """Reads ``/proc/<pid>/{stat,io}``; descriptors stay open for tracked processes."""

    name = "procfs"

    def __init__(self, proc: str = "/proc") -> None:
        self._proc = proc
        self._fds: dict[tuple[int, str], int] = {}
        soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        # At most a quarter of the descriptors: SQLite, sockets and subprocess pipes need
        # the rest. Beyond it, files are opened per read (slower, never failing).
        self._budget = 4096 if soft == resource.RLIM_INFINITY else soft // 4
        self._tick = os.sysconf("SC_CLK_TCK")
        self._page = os.sysconf("SC_PAGE_SIZE")
        # The last pid in /proc/loadavg is that of our pid namespace; it speaks for the
        # /proc we list only if that /proc belongs to the same namespace.
        self._loadavg: int | None = None
        try:
            if os.readlink(f"{proc}/self") == str(os.getpid()):
                self._loadavg = os.open(f"{proc}/loadavg", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            pass

    def pids(self) -> set[int]:
        return {int(n) for n in os.listdir(self._proc) if n.isdigit()}

    def last_pid(self) -> int | None:
        """The pid handed out last (``/proc/loadavg``); None when it cannot be trusted."""
        if self._loadavg is None:
            return None
        try:
            return int(os.pread(self._loadavg, 128, 0).split()[-1])
        except (OSError, ValueError, IndexError):
            return None

    def _read(self, pid: int, kind: str, keep: bool) -> bytes:
        fd = self._fds.get((pid, kind))
        if fd is None:
            fd = os.open(f"{self._proc}/{pid}/{kind}", os.O_RDONLY | os.O_CLOEXEC)
            if not keep or len(self._fds) >= self._budget:
                try:
                    return os.read(fd, 4096)
                finally:
                    os.close(fd)
            self._fds[(pid, kind)] = fd
        return os.pread(fd, 4096, 0)

    def stat(self, pid: int, keep: bool) -> _Stat | None:
        try:
            data = self._read(pid, "stat", keep)
            # The command name may hold spaces and ')'; the fields after the last ')' don't.
            f = data[data.rindex(b")") + 2 :].split(None, 22)
            return _Stat(
                int(f[1]),
                int(f[19]),
                (int(f[11]) + int(f[12])) / self._tick,
                int(f[21]) * self._page,
            )
        except (OSError, ValueError, IndexError):  # gone (ESRCH/ENOENT) or half-dead
            self.forget(pid)
            return None

    def io(self, pid: int, keep: bool) -> tuple[int, int] | None:
        """``(read_bytes, write_bytes)``; None when gone; PermissionError when not ours to read."""
        try:
            fields = self._read(pid, "io", keep).split()
        except ProcessLookupError:
            return None
        except OSError as exc:
            # EACCES (ptrace rules), or ENOENT without CONFIG_TASK_IO_ACCOUNTING.
            raise PermissionError(str(exc)) from exc
        if len(fields) > 11 and fields[8] == b"read_bytes:" and fields[10] == b"write_bytes:":
            return int(fields[9]), int(fields[11])
        values = dict(zip(fields[::2], fields[1::2], strict=False))
        return int(values[b"read_bytes:"]), int(values[b"write_bytes:"])

    def forget(self, pid: int) -> None:
        for kind in ("stat", "io"):
            fd = self._fds.pop((pid, kind), None)
            if fd is not None:
                os.close(fd)

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()
        if self._loadavg is not None:
            os.close(self._loadavg)
            self._loadavg = None


class _PsutilSource:
    """Portable: cached ``psutil.Process`` objects, read inside ``oneshot()``."""

    name = "psutil"

    def __init__(self) -> None:
        import psutil

        self._psutil = psutil
        self._procs: dict[int, Any] = {}

    def pids(self) -> set[int]:
        return set(self._psutil.pids())

    def last_pid(self) -> int | None:
        return None  # unknown: list every time

    def _process(self, pid: int, keep: bool) -> Any:
        p = self._procs.get(pid)
        if p is None:
            p = self._psutil.Process(pid)
            if keep:
                self._procs[pid] = p
        return p

    def stat(self, pid: int, keep: bool) -> _Stat | None:
        psutil = self._psutil
        try:
            p = self._process(pid, keep)
            # One read for ppid, times and create_time on Linux, one proc_pidinfo call for
            # times and memory on macOS.
            with p.oneshot():
                ct = p.cpu_times()
                return _Stat(p.ppid(), p.create_time(), ct.user + ct.system, p.memory_info().rss)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            self.forget(pid)
            return None

    def io(self, pid: int, keep: bool) -> tuple[int, int] | None:
        psutil = self._psutil
        try:
            c = self._process(pid, keep).io_counters()
        except psutil.NoSuchProcess:
            return None
        except (psutil.AccessDenied, AttributeError) as exc:  # macOS has no io_counters
            raise PermissionError(str(exc)) from exc
        return int(c.read_bytes), int(c.write_bytes)

    def forget(self, pid: int) -> None:
        self._procs.pop(pid, None)

    def close(self) -> None:
        self._procs.clear()


class ProcessTracker:
    """Follows attribution groups and their descendants; :meth:`read` gives their usage.

    ``backend`` is ``procfs`` (Linux), ``psutil`` (anywhere) or ``auto`` (procfs where
    ``/proc`` is, else psutil). Not thread-safe: one tracker per sampling thread.
    """

    def __init__(self, backend: str = "auto") -> None:
        if backend not in BACKENDS:
            raise ValueError(f"backend: expected one of {', '.join(BACKENDS)}, got {backend!r}")
        linux = sys.platform.startswith("linux") and os.path.isdir("/proc/self")
        procfs = backend == "procfs" or (backend == "auto" and linux)
        self._source: _ProcfsSource | _PsutilSource = _ProcfsSource() if procfs else _PsutilSource()
        self._procs: dict[int, _Proc] = {}
        self._tracked: dict[int, _Proc] = {}
        self._unreadable: set[int] = set()
        self._roots: dict[int, str] = {}
        #: Every group seen so far, in order; each keeps reporting after its processes end.
        self._groups: dict[str, None] = {}
        self._io_groups: set[str] = set()
        self._dead_cpu: dict[str, float] = {}
        self._dead_read: dict[str, int] = {}
        self._dead_write: dict[str, int] = {}
        self._reported_cpu: dict[str, float] = {}
        #: Live tracked processes of each group, and each group's last usage: a read
        #: recomputes only the groups in which something moved (at 10 Hz most are idle).
        self._members: dict[str, dict[int, _Proc]] = {}
        self._usage_of: dict[str, GroupUsage] = {}
        self._dirty: set[str] = set()
        self._last_pid: int | None = None
        self._absent: set[int] = set()

    @property
    def backend(self) -> str:
        """The backend in use: ``procfs`` or ``psutil``."""
        return self._source.name

    def close(self) -> None:
        """Release open descriptors. The tracker may be read again afterwards."""
        self._source.close()

    def read(self, groups: ProcessGroups) -> dict[str, GroupUsage]:
        """Usage of every group seen so far (including ones whose processes all ended)."""
        source, procs = self._source, self._procs
        roots: dict[int, str] = {}
        for group, pids in groups.items():
            if group not in self._groups:
                self._groups[group] = None
                self._dirty.add(group)
            for pid in pids:
                roots.setdefault(pid, group)  # a pid listed twice stays with its first group
        # Listing /proc is the dearest step on a quiet host, and only a new process can
        # change what it shows that matters here (tracked exits show as failed reads).
        # Every new process takes a new pid, so an unchanged last pid means no new process.
        last_pid = source.last_pid()
        new: list[_Proc] = []
        if (
            last_pid is None
            or last_pid != self._last_pid
            or roots.keys() - procs.keys() - self._unreadable - self._absent
        ):
            self._scan(new)
            self._absent = roots.keys() - procs.keys()  # listed, but not running (yet)
        self._last_pid = last_pid
        if roots != self._roots:
            self._roots = roots
            self._assign(procs)
        elif new:
            # With the same roots a known process keeps its group (an orphan keeps it by
            # rule, a reused parent pid is recognised by its start time): only the new ones
            # need placing. On a host that starts processes all the time this is most scans.
            # An exit changes no one's group either: a child keeps its group as an orphan.
            self._assign({proc.pid: proc for proc in new})

        now = time.monotonic()
        dirty = self._dirty
        stat = source.stat
        for proc in list(self._tracked.values()):
            ran = True
            g = proc.group
            assert g is not None  # tracked means grouped
            if proc.fresh:
                dirty.add(g)
            else:
                st = stat(proc.pid, True)
                if st is None or st.start != proc.start:  # exited, or its pid was reused
                    self._drop(procs.pop(proc.pid))
                    continue
                ran = st.cpu_seconds > proc.cpu
                if ran or st.rss_bytes != proc.rss:
                    dirty.add(g)
                    if ran:
                        proc.cpu = st.cpu_seconds
                    proc.rss = st.rss_bytes
            if proc.base_cpu is None:
                proc.base_cpu = proc.cpu
                dirty.add(g)
            # I/O is accounted to a process as it runs, so one whose CPU time has not moved
            # has nothing new; CPU time moves in 10 ms ticks though, hence a read each second.
            if proc.io_ok is not False and (
                ran or proc.read is None or now - proc.io_at >= IO_REFRESH_S
            ):
                self._read_io(proc)
                proc.io_at = now
        for proc in new:
            proc.fresh = False
        return self._usage()

    def _scan(self, new: list[_Proc]) -> None:
        """List every process: forget the ones gone, add the new ones (to ``new`` too)."""
        source, procs = self._source, self._procs
        live = source.pids()
        gone = procs.keys() - live
        for pid in gone:
            self._drop(procs.pop(pid))
        self._unreadable &= live
        for pid in live - procs.keys() - self._unreadable:
            st = source.stat(pid, keep=False)
            if st is None:
                self._unreadable.add(pid)  # raced with exit, or not ours to read
                continue
            procs[pid] = proc = _Proc(pid, st)
            new.append(proc)

    def _read_io(self, proc: _Proc) -> None:
        try:
            io = self._source.io(proc.pid, keep=True)
        except PermissionError:
            proc.io_ok = False
            return
        if io is None:
            return
        proc.io_ok = True
        read, write = max(proc.read or 0, io[0]), max(proc.write or 0, io[1])
        assert proc.group is not None
        if read != proc.read or write != proc.write:
            proc.read, proc.write = read, write
            self._dirty.add(proc.group)
        if proc.base_read is None:
            proc.base_read, proc.base_write = (0, 0) if proc.fresh else io
            self._dirty.add(proc.group)
        self._io_groups.add(proc.group)

    def _usage(self) -> dict[str, GroupUsage]:
        usage_of = self._usage_of
        for g in self._dirty:
            cpu = self._dead_cpu.get(g, 0.0)
            rss = 0
            read, write = self._dead_read.get(g, 0), self._dead_write.get(g, 0)
            for proc in self._members.get(g, {}).values():
                cpu += proc.cpu - (proc.base_cpu or 0.0)
                rss += proc.rss
                if proc.read is not None and proc.write is not None:
                    read += proc.read - (proc.base_read or 0)
                    write += proc.write - (proc.base_write or 0)
            # Moving a process's share from live to dead reorders a float sum; never let
            # that rounding show as a counter going backwards.
            c = self._reported_cpu[g] = max(self._reported_cpu.get(g, 0.0), cpu)
            io = g in self._io_groups
            usage_of[g] = GroupUsage(c, rss, read if io else None, write if io else None)
        self._dirty.clear()
        return {g: usage_of[g] for g in self._groups}

    def _assign(self, which: Mapping[int, _Proc]) -> None:
        """Put each process of ``which`` in the group of its nearest root ancestor; a known
        process outside ``which`` met on the way up is taken as already placed."""
        roots, procs = self._roots, self._procs
        memo: dict[int, str | None] = {}
        for pid, proc in which.items():
            chain: list[int] = []
            p: int = pid
            group: str | None
            while True:
                if p in memo:
                    group = memo[p]
                    break
                if p in roots:
                    group = roots[p]
                    break
                if p not in which:
                    group = procs[p].group
                    break
                cur = procs[p]
                chain.append(p)
                if cur.ppid == 0:  # top of the tree (init, kthreadd): in no group
                    group = None
                    break
                parent = procs.get(cur.ppid)
                # The parent exited (this process was re-parented), or its pid now belongs
                # to a process younger than its child (reused): an orphan keeps its group.
                if parent is None or parent.start > cur.start or cur.ppid in chain:
                    group = cur.group
                    break
                p = cur.ppid
            for q in chain:
                memo[q] = group
            if group != proc.group:
                self._move(proc, group)

    def _move(self, proc: _Proc, group: str | None) -> None:
        old = proc.group
        if old is not None:
            self._leave(proc, old)
        proc.group = group
        if group is None:
            return
        self._tracked[proc.pid] = proc
        self._members.setdefault(group, {})[proc.pid] = proc
        self._dirty.add(group)
        if proc.fresh:  # born since the last read: all its time is new
            proc.base_cpu, proc.base_read, proc.base_write = 0.0, None, None
        elif old is not None:  # from group to group: continue from the last reading
            proc.base_cpu, proc.base_read, proc.base_write = proc.cpu, proc.read, proc.write
        else:  # known but untracked: its readings are stale, start from the next one
            proc.base_cpu, proc.base_read, proc.base_write = None, None, None
            proc.read = proc.write = None

    def _leave(self, proc: _Proc, group: str) -> None:
        if proc.base_cpu is not None:
            self._dead_cpu[group] = self._dead_cpu.get(group, 0.0) + proc.cpu - proc.base_cpu
        if proc.read is not None and proc.write is not None:
            self._dead_read[group] = (
                self._dead_read.get(group, 0) + proc.read - (proc.base_read or 0)
            )
            self._dead_write[group] = (
                self._dead_write.get(group, 0) + proc.write - (proc.base_write or 0)
            )
        del self._tracked[proc.pid]
        del self._members[group][proc.pid]
        self._dirty.add(group)

    def _drop(self, proc: _Proc) -> None:
        if proc.group is not None:
            self._leave(proc, proc.group)
        self._source.forget(proc.pid)
