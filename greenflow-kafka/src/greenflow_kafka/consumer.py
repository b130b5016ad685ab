"""Consumers with Kafka's own ``org.apache.kafka.tools.ConsumerPerformance``, the group's
committed offsets, and an end-to-end latency probe that keeps its samples inside a window.

How ``ConsumerPerformance`` ends (checked in the 4.3.1 class files): it polls until it has
read ``--num-records`` records or until no poll returned a record for ``--timeout`` ms,
counted from its start, so a consumer that owns no partition (more consumers than
partitions) also exits at the timeout; then it closes the consumer and prints. It registers
no shutdown hook: SIGTERM exits at once (code 143) without a summary. A consumer that must
read *during* a run is therefore started with an unreachable record count and a timeout
longer than the run, and stopped by signal; what it consumed is read from the group's
committed offsets (:func:`committed_offsets`), not from its output. The tool leaves
``enable.auto.commit`` on; ``auto.commit.interval.ms`` (default 5 s) bounds how stale a
committed offset can be, so callers that count at boundaries set it short.

With ``--show-detailed-stats`` it prints, every ``--reporting-interval`` ms *and only when a
poll returned records*, one line: time, a thread id (always 0), MiB read so far, MiB/s in
the interval, records read so far, records/s, rebalance ms, fetch ms, fetch MiB/s, fetch
records/s. Units: "MB" in the header is ``bytes / (1024 × 1024)``.

``EndToEndLatency`` (see :mod:`greenflow_kafka.perf`) sends one record at a time and polls
it back; it too prints only when it has sent all its records, and its first record also
waits for the producer's metadata. :class:`LatencyProbe` therefore sizes its measured round
from a short calibration round and holds it, started, until the window opens.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import math
import os
import re
import subprocess
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from greenflow.api.processes import tail
from greenflow_kafka.admin import AdminSession, kafka_error, partition_end_offsets
from greenflow_kafka.cluster import PROCESS_MARKER
from greenflow_kafka.distribution import KafkaDistribution, package_data
from greenflow_kafka.errors import KafkaAdminError, ProducerPerfError
from greenflow_kafka.perf import (
    NUMBER,
    TOOL_JVM_OPTIONS,
    EndToEndLatencyStats,
    ProducerPerf,
    end_to_end_latency_command,
    parse_end_to_end_latency_output,
    version_tuple,
)

CONSUMER_PERFORMANCE_MAIN = "org.apache.kafka.tools.ConsumerPerformance"
#: ``--num-records`` for a consumer stopped by signal: Java's Long.MAX_VALUE.
UNBOUNDED_RECORDS = 2**63 - 1
# ISO 8601 with milliseconds and offset, so that progress lines carry an absolute time.
_DATE_FORMAT = "yyyy-MM-dd'T'HH:mm:ss.SSSXXX"

_PROGRESS_RE = re.compile(
    rf"^(\S+), (\d+), {NUMBER}, {NUMBER}, (\d+), {NUMBER}, (\d+), (-?\d+), {NUMBER}, {NUMBER}$"
)
_EARLY_EXIT = "WARNING: Exiting before consuming the expected number of"
_E2E_FIRST_RE = re.compile(rf"^0\t{NUMBER}$")


@attrs.frozen
class ConsumerProgress:
    """One ``--show-detailed-stats`` line: totals since the tool started, and the interval's rate."""

    timestamp: float
    mib: float
    records: int
    records_per_s: float
    rebalance_ms: int


@attrs.frozen
class ConsumerOutput:
    """What a ``ConsumerPerformance`` run printed: progress lines and whether it gave up early."""

    progress: tuple[ConsumerProgress, ...] = ()
    #: It printed "Exiting before consuming the expected number of records" (its --timeout).
    timed_out: bool = False

    @property
    def records(self) -> int:
        """Records read as of the last progress line (0 if none was printed)."""
        return self.progress[-1].records if self.progress else 0


def _timestamp(text: str) -> float | None:
    try:
        return dt.datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


def parse_consumer_output(text: str) -> ConsumerOutput:
    """Parse ``ConsumerPerformance`` output run with ``--show-detailed-stats`` and the date
    format of :func:`consumer_perf_command`; other lines (header, warnings) are ignored."""
    progress: list[ConsumerProgress] = []
    timed_out = False
    for raw in text.splitlines():
        line = raw.strip()
        if m := _PROGRESS_RE.match(line):
            at = _timestamp(m.group(1))
            if at is None:
                continue
            progress.append(
                ConsumerProgress(
                    timestamp=at,
                    mib=float(m.group(3)),
                    records=int(m.group(5)),
                    records_per_s=float(m.group(6)),
                    rebalance_ms=int(m.group(7)),
                )
            )
        elif line.startswith(_EARLY_EXIT):
            timed_out = True
    return ConsumerOutput(progress=tuple(progress), timed_out=timed_out)


def consumer_perf_args(
    version: str,
    *,
    bootstrap_servers: str,
    topic: str,
    group: str,
    timeout_ms: int,
    num_records: int = UNBOUNDED_RECORDS,
    reporting_interval_ms: int = 1000,
    from_latest: bool = True,
    consumer_props: Mapping[str, str] | None = None,
    props_file: Path | None = None,
    name: str = "consumer-perf",
) -> list[str]:
    """The arguments of one ``ConsumerPerformance`` member of ``group`` for Kafka ``version``
    (what follows the main class, or ``kafka-consumer-perf-test.sh``); see
    :func:`consumer_perf_command`."""
    if num_records < 1 or timeout_ms < 1 or reporting_interval_ms < 1:
        msg = (
            f"num_records, timeout_ms and reporting_interval_ms must be >= 1, got "
            f"{num_records}, {timeout_ms} and {reporting_interval_ms}"
        )
        raise ProducerPerfError(msg)
    props = {"client.id": name, **(consumer_props or {})}
    bad = sorted(k for k, v in props.items() if "=" in k or "=" in str(v) or " " in str(v))
    if bad:
        msg = f"consumer properties {bad} contain '=' or spaces, which ConsumerPerformance cannot take"
        raise ProducerPerfError(msg)
    args = ["--bootstrap-server", bootstrap_servers, "--topic", topic, "--group", group]
    args += ["--timeout", str(timeout_ms), "--reporting-interval", str(reporting_interval_ms)]
    args += ["--show-detailed-stats", "--date-format", _DATE_FORMAT]
    if from_latest:
        args.append("--from-latest")
    if version_tuple(version) >= (4, 2):
        args += ["--num-records", str(num_records)]
        # joptsimple takes one value per flag (ProducerPerformance's argparse4j takes many):
        # a second KEY=VALUE after one --command-property would be silently ignored.
        for k, v in props.items():
            args += ["--command-property", f"{k}={v}"]
    else:
        if props_file is None:
            msg = f"Kafka {version} takes consumer settings from a file only; pass props_file"
            raise ProducerPerfError(msg)
        props_file.parent.mkdir(parents=True, exist_ok=True)
        props_file.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
        args += ["--messages", str(num_records), "--consumer.config", str(props_file)]
    return args


def consumer_perf_command(
    distribution: KafkaDistribution,
    *,
    bootstrap_servers: str,
    topic: str,
    group: str,
    timeout_ms: int,
    num_records: int = UNBOUNDED_RECORDS,
    reporting_interval_ms: int = 1000,
    from_latest: bool = True,
    consumer_props: Mapping[str, str] | None = None,
    props_file: Path | None = None,
    heap: str = "256m",
    name: str = "consumer-perf",
) -> list[str]:
    """The argv of one ``ConsumerPerformance`` member of ``group`` reading ``topic``.

    ``timeout_ms`` is the tool's ``--timeout``: it exits when no poll has returned a record
    for that long (from its start on), so give a consumer stopped by signal more than the
    whole run. ``from_latest`` starts a partition without a committed offset at its end
    (live traffic only, no backlog to catch up). ``consumer_props`` become consumer settings
    (``client.id`` defaults to ``name``); Kafka < 4.2 has no ``--command-property`` nor
    ``--num-records``, so there they are written to ``props_file`` (required then) and the
    count goes to ``--messages``.
    """
    args = consumer_perf_args(
        distribution.version,
        bootstrap_servers=bootstrap_servers,
        topic=topic,
        group=group,
        timeout_ms=timeout_ms,
        num_records=num_records,
        reporting_interval_ms=reporting_interval_ms,
        from_latest=from_latest,
        consumer_props=consumer_props,
        props_file=props_file,
        name=name,
    )
    return distribution.java_command(
        CONSUMER_PERFORMANCE_MAIN,
        args,
        heap=heap,
        jvm_options=[f"{PROCESS_MARKER}{name}", *TOOL_JVM_OPTIONS],
        log4j2_config=package_data("log4j2-tools.properties"),
    )


# -- the group, through the admin API ------------------------------------------------------


def committed_offsets(
    bootstrap_servers: str,
    group: str,
    topic: str,
    *,
    timeout_s: float = 10.0,
    client_config: Mapping[str, Any] | None = None,
) -> dict[int, int]:
    """The committed offset of every partition of ``topic`` that ``group`` has committed
    (partition → offset); a partition with no commit yet is left out.

    Read with a consumer of the group that never joins it (``committed()`` only), not with
    the admin client's ListConsumerGroupOffsets: librdkafka 2.16's admin path crashes the
    whole process (SIGSEGV in ``rd_kafka_cgrp_op`` from ``rd_kafka_handle_OffsetFetch``)
    when the answer asks it to look the coordinator up again, e.g. while a fresh broker
    loads ``__consumer_offsets`` (seen with a Flink source, which commits without joining).
    A coordinator that moves or loads (NOT_COORDINATOR…) is asked again, by a new consumer
    (one told NOT_COORDINATOR kept asking the same broker), until ``timeout_s``."""
    from confluent_kafka import Consumer, KafkaException, TopicPartition

    partitions = sorted(partition_end_offsets(bootstrap_servers, topic))
    config = {
        **(client_config or {}),
        "bootstrap.servers": bootstrap_servers,
        "group.id": group,
        "enable.auto.commit": False,
    }
    deadline = time.monotonic() + timeout_s
    while True:
        consumer = Consumer(config)
        try:
            asked = [TopicPartition(topic, p) for p in partitions]
            answer = consumer.committed(asked, timeout=max(1.0, deadline - time.monotonic()))
            break
        except KafkaException as exc:
            if time.monotonic() >= deadline:
                msg = (
                    f"reading the committed offsets of group {group!r} on {bootstrap_servers} "
                    f"failed: {kafka_error(exc)[1]}"
                )
                raise KafkaAdminError(msg) from exc
            time.sleep(0.5)
        finally:
            consumer.close()
    return {tp.partition: tp.offset for tp in answer if tp.offset >= 0 and tp.error is None}


@attrs.frozen
class GroupState:
    """What the group coordinator says about a consumer group."""

    state: str
    members: int
    #: Partitions of the asked topic assigned to some member.
    assigned: frozenset[int]


def describe_group(
    bootstrap_servers: str,
    group: str,
    topic: str,
    *,
    timeout_s: float = 10.0,
    client_config: Mapping[str, Any] | None = None,
) -> GroupState:
    """The group's state (``stable``, ``preparing_rebalancing``, ``empty``, ``dead`` ...),
    its member count and which partitions of ``topic`` its members own."""
    from confluent_kafka import KafkaException

    with AdminSession(bootstrap_servers, client_config) as session:
        try:
            futures = session.client.describe_consumer_groups([group], request_timeout=timeout_s)
            desc = futures[group].result(timeout=timeout_s)
        except KafkaException as exc:
            msg = f"describing group {group!r} on {bootstrap_servers} failed: {kafka_error(exc)[1]}"
            raise KafkaAdminError(msg) from exc
        except TimeoutError as exc:
            msg = f"describing group {group!r} on {bootstrap_servers} got no answer within {timeout_s:g}s"
            raise KafkaAdminError(msg) from exc
    assigned = frozenset(
        tp.partition
        for member in desc.members or ()
        for tp in (member.assignment.topic_partitions if member.assignment else ())
        if tp.topic == topic
    )
    return GroupState(
        state=desc.state.name.lower(), members=len(desc.members or ()), assigned=assigned
    )


# -- end-to-end latency in a window ---------------------------------------------------------


@attrs.frozen
class ProbeRound:
    """One ``EndToEndLatency`` run of a :class:`LatencyProbe`.

    ``sending_from`` is when the records after the first began (Unix seconds): for a gated
    round, when the gate opened or, if the round reached it later, when it did; ``ended_at``
    when its exit was seen. ``stats`` is None if it was stopped or failed. ``first_ms`` is
    the first record's latency, which includes the producer's metadata fetch.
    """

    records: int
    launched_at: float
    sending_from: float | None
    ended_at: float
    exit_code: int | None
    stats: EndToEndLatencyStats | None
    first_ms: float | None
    #: Where its output was written (None when it ran elsewhere, e.g. in a pod).
    output_path: Path | None = None

    @property
    def avg_ms(self) -> float | None:
        """Mean latency without the first record (client start-up, not the round trip)."""
        if self.stats is None:
            return None
        if self.first_ms is None or self.records < 2:
            return self.stats.avg_ms
        return (self.stats.avg_ms * self.records - self.first_ms) / (self.records - 1)

    @property
    def per_record_s(self) -> float | None:
        """Wall time per record after the first: the tool sends the next one as soon as the
        previous one came back, so this is the mean round trip."""
        avg = self.avg_ms
        return None if avg is None else max(avg / 1000, 1e-4)

    def coverage(self, start: float, end: float) -> float:
        """Fraction of ``[start, end]`` during which this round was sending."""
        if self.sending_from is None or end <= start:
            return 0.0
        overlap = min(end, self.ended_at) - max(start, self.sending_from)
        return max(0.0, overlap) / (end - start)


class _Gate:
    """A pipe for a child's stdout that is full before the child starts, so that the child's
    first write blocks until :meth:`open` drains it; afterwards a thread copies the rest to
    a file. Linux pipes: a write of at most PIPE_BUF bytes waits for room for all of it."""

    def __init__(self, output_path: Path) -> None:
        self.output_path = output_path
        self._read_fd, self.write_fd = os.pipe()
        fcntl.fcntl(self.write_fd, fcntl.F_SETPIPE_SZ, 4096)  # the smallest: one page
        os.set_blocking(self.write_fd, False)
        self._junk = 0
        with contextlib.suppress(BlockingIOError):
            while True:
                self._junk += os.write(self.write_fd, b"\n" * 4096)
        os.set_blocking(self.write_fd, True)
        self.opened_at: float | None = None
        self._copier: threading.Thread | None = None
        self._closed = False

    def open(self) -> None:
        """Drain the filler and copy the child's output to ``output_path`` from now on."""
        if self.opened_at is not None or self._closed:
            return
        left = self._junk
        while left > 0:
            chunk = os.read(self._read_fd, left)
            if not chunk:
                break
            left -= len(chunk)
        self.opened_at = time.time()
        self._copier = threading.Thread(target=self._copy, daemon=True)
        self._copier.start()

    def _copy(self) -> None:
        with self.output_path.open("ab") as out:
            while chunk := os.read(self._read_fd, 65536):
                out.write(chunk)
                out.flush()

    def close(self) -> None:
        """After the child is gone: wait for the copy and release the pipe."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(OSError):
            os.close(self.write_fd)
        if self._copier is not None:
            self._copier.join(5)
        with contextlib.suppress(OSError):
            os.close(self._read_fd)


class LatencyProbe:
    """``EndToEndLatency`` on its own topic, measuring from :meth:`release` on for ``span_s``.

    The tool reports only after its last record, and its JVM takes seconds to start on a
    busy host, so neither a time bound nor a start at the window's beginning works. Instead
    :meth:`start` runs a short calibration round at once (the mean round trip; its figures
    are not kept, and its first records run with a cold JIT, so it errs slow), then launches
    the measured round sized to ``fill`` × ``span_s`` at that round trip, with its standard
    output on a full pipe (:class:`_Gate`): it starts, sends its first record (which also
    fetches metadata) and blocks printing it. :meth:`release` opens the gate, and the other
    records follow back to back. The JVM start thus happens before the window, and the
    round ends a little before ``span_s`` is over unless the load slows the round trip by
    more than the calibration's margin; :meth:`ProbeRound.coverage` says how much of a
    window it covered. :meth:`finish` waits for it up to a deadline and stops it there. One
    JVM at a time; :attr:`pid` is the current one.
    """

    def __init__(
        self,
        distribution: KafkaDistribution,
        *,
        bootstrap_servers: str,
        topic: str,
        record_size: int,
        span_s: float,
        output_dir: Path,
        acks: str = "all",
        heap: str = "128m",
        name: str = "e2e-probe",
        calibration_records: int = 30,
        fill: float = 0.7,
    ) -> None:
        self._distribution = distribution
        self._bootstrap_servers = bootstrap_servers
        self._record_size = record_size
        self._acks = acks
        self._heap = heap
        self._name = name
        self.topic = topic
        self.span_s = span_s
        self.output_dir = output_dir
        self.calibration_records = calibration_records
        self.fill = fill
        self.calibration: ProbeRound | None = None
        self.measured: ProbeRound | None = None
        self.error: str | None = None
        self._proc: ProducerPerf | None = None
        self._released = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def release(self) -> None:
        """Let the measured round send (now, or as soon as it is ready)."""
        self._released.set()

    @property
    def pid(self) -> int | None:
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    def finish(self, timeout_s: float) -> ProbeRound | None:
        """Wait up to ``timeout_s`` for the measured round, then stop whatever still runs."""
        self._thread.join(max(0.0, timeout_s))
        self.stop()
        return self.measured

    def stop(self) -> None:
        """Stop the running round (if any) and the thread; idempotent."""
        self._stop.set()
        self._released.set()
        proc = self._proc
        if proc is not None:
            proc.stop()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(15)

    # -- the thread ------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            cal = self._round(self.calibration_records, "calibration", gated=False)
            self.calibration = cal
            if cal is None or cal.stats is None or self._stop.is_set():
                return
            per_record = cal.per_record_s or 0.01
            records = max(10, math.floor(self.fill * self.span_s / per_record))
            self.measured = self._round(records, "measured", gated=True)
        except Exception as exc:  # reported through .error; the caller decides
            self.error = f"{type(exc).__name__}: {exc}"

    def _command(self, records: int) -> list[str]:
        return end_to_end_latency_command(
            self._distribution,
            bootstrap_servers=self._bootstrap_servers,
            topic=self.topic,
            num_records=records,
            record_size=self._record_size,
            acks=self._acks,
            heap=self._heap,
            name=self._name,
        )

    def _round(self, records: int, label: str, *, gated: bool) -> ProbeRound | None:
        path = self.output_dir / f"{self.topic}-{label}.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        command = self._command(records)
        gate = _Gate(path) if gated else None
        launched = time.time()
        path.write_bytes(b"")
        # Append mode: the child's stderr and the gate's copy of its stdout share the file.
        with path.open("ab") as log:
            try:
                popen = subprocess.Popen(
                    command,
                    stdout=gate.write_fd if gate else log,
                    stderr=log if gate else subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )
            except OSError as exc:
                if gate:
                    gate.close()
                msg = f"could not start the Kafka tool {command[0]}: {exc}"
                raise ProducerPerfError(msg) from exc
        proc = ProducerPerf(popen, path, command)
        self._proc = proc
        if gate:
            # Only the child's copy may stay open, or the copier never sees the end.
            os.close(gate.write_fd)
            gate.write_fd = -1
        try:
            first_ms: float | None = None
            sending_from: float | None = None
            while proc.poll() is None:
                if self._stop.is_set():
                    proc.stop()
                    return None
                if gate and gate.opened_at is None and self._released.is_set():
                    gate.open()
                self._stop.wait(0.05)
                if first_ms is None and (not gate or gate.opened_at is not None):
                    first_ms = _first_latency_ms(path)
                    if first_ms is not None:
                        # Ungated: the first record was sent its latency ago. Gated: the
                        # others follow the gate's opening, or this line if it came later.
                        sending_from = (
                            time.time() - first_ms / 1000
                            if gate is None
                            else max(gate.opened_at or 0.0, time.time() - 0.05)
                        )
        finally:
            if gate:
                gate.close()
        ended = time.time()
        text = _read(path)
        stats = parse_end_to_end_latency_output(text, records)
        if first_ms is None:
            first_ms = _first_latency_ms(path)
            if first_ms is not None and stats is not None:
                # It finished within one poll: place its start by its own mean.
                sending_from = ended - records * stats.avg_ms / 1000
        code = proc.poll()
        if code != 0 or stats is None:
            lines = "\n".join(f"  {line}" for line in tail(path))
            self.error = (
                f"the end-to-end latency probe ({label} round, {records} records on {self.topic!r}) "
                f"exited with {code}{'' if stats else ' without its summary'}; last lines of {path}:\n{lines}"
            )
        return ProbeRound(
            records=records,
            launched_at=launched,
            sending_from=sending_from,
            ended_at=ended,
            exit_code=code,
            stats=stats if code == 0 else None,
            first_ms=first_ms,
            output_path=path,
        )


def _read(path: Path) -> str:
    with contextlib.suppress(OSError):
        return path.read_text(errors="replace")
    return ""


def _first_latency_ms(path: Path) -> float | None:
    return first_latency_ms(_read(path))


def first_latency_ms(text: str) -> float | None:
    """The first record's latency (ms) in ``EndToEndLatency`` output, or None if not printed
    yet: the tool prints "<i>\\t<latency ms>" for every 1000th record, the first included."""
    for line in text.splitlines():
        if m := _E2E_FIRST_RE.match(line.strip()):
            return float(m.group(1))
    return None


__all__ = [
    "CONSUMER_PERFORMANCE_MAIN",
    "UNBOUNDED_RECORDS",
    "ConsumerOutput",
    "ConsumerProgress",
    "GroupState",
    "LatencyProbe",
    "ProbeRound",
    "committed_offsets",
    "consumer_perf_args",
    "consumer_perf_command",
    "describe_group",
    "first_latency_ms",
    "parse_consumer_output",
]
