"""Producer load with Kafka's own ``org.apache.kafka.tools.ProducerPerformance``.

How a run ends — by record count, not by signal. ``ProducerPerformance`` (checked in the
4.3.1 source) registers no shutdown hook: on SIGTERM the JVM exits without its summary
line, so the percentiles are lost. Its latency sampler also keeps one sample every
``num_records / 500000`` records, so a "huge count, stop by signal" run would sample almost
nothing. We therefore pass ``--num-records = rate × (warm-up + duration)`` and
``--warmup-records = rate × warm-up`` (Kafka ≥ 4.2); the tool exits by itself and prints a
total summary and then a *steady-state* summary that excludes the warm-up records. If the
cluster cannot keep up, the run lasts longer than planned: :meth:`ProducerPerf.wait` takes a
deadline, stops the tool there and reports what the periodic lines saw, marked incomplete.

Rate: the tool's ``ThroughputThrottler`` keeps the *cumulative* count since the tool
started at ``rate × elapsed``. After a stall (the first send waits for metadata; a loaded
machine) it sends faster than asked until it has caught up, so a short warm-up can leave
part of the catch-up inside the measured window (seen here: 2554 msg/s steady state for
2000 asked, after a 2 s first send under a load average of 14 on 2 cores). Count work at
the window's boundaries (:func:`greenflow_kafka.admin.end_offsets`) and keep the warm-up
longer than such stalls.

Units: the tool prints "MB/sec" but divides by 1024 × 1024 (``Stats.printWindow`` and
``printTotal``), so the fields here are named ``mib_per_s``. Record counts are acknowledged
sends only (failed sends print a stack trace and are not counted).

Latency under no load: :func:`run_end_to_end_latency` runs ``EndToEndLatency``, which sends
one record at a time and polls it back (produce-to-consume round trip).
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import attrs

from greenflow.api.processes import tail
from greenflow_kafka.cluster import PROCESS_MARKER
from greenflow_kafka.distribution import KafkaDistribution, package_data
from greenflow_kafka.errors import ProducerPerfError

PRODUCER_PERFORMANCE_MAIN = "org.apache.kafka.tools.ProducerPerformance"

# Java formats numbers with the default locale ("1234,5" under de_DE); the parser wants dots.
# Kafka's own KAFKA_JVM_PERFORMANCE_OPTS (kafka-run-class.sh), so our producers run as
# fast as kafka-producer-perf-test does (benchmarks/kafka_generator_ceiling.py compares).
TOOL_JVM_OPTIONS = (
    "-Duser.language=en",
    "-Duser.country=US",
    "-server",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35",
    "-XX:+ExplicitGCInvokesConcurrent",
    "-XX:MaxInlineLevel=15",
)

#: A number as the Kafka tools print it (Java's NaN and Infinity included), one regex group.
NUMBER = r"(NaN|-?Infinity|-?\d+(?:\.\d+)?)"
_WINDOW_RE = re.compile(
    rf"^(\d+) records sent, {NUMBER} records/sec \({NUMBER} MB/sec\), {NUMBER} ms avg latency, {NUMBER} ms max latency\.$"
)
_SUMMARY_RE = re.compile(
    rf"^(\d+)( steady state)? records sent, {NUMBER} records/sec \({NUMBER} MB/sec\), {NUMBER} ms avg latency, "
    rf"{NUMBER} ms max latency, (\d+) ms 50th, (\d+) ms 95th, (\d+) ms 99th, (\d+) ms 99\.9th\.$"
)
# First line of a stack trace printed by the send callback, e.g.
# "org.apache.kafka.common.errors.TimeoutException: Expiring 12 record(s) ...".
_ERROR_RE = re.compile(r"^(?:[A-Za-z_$][\w$]*\.)+[A-Za-z_$][\w$]*(?:Exception|Error)(?::.*)?$")


@attrs.frozen
class WindowStats:
    """One periodic report line (every ``--reporting-interval`` ms)."""

    records: int
    records_per_s: float
    mib_per_s: float
    avg_latency_ms: float
    max_latency_ms: float


@attrs.frozen
class ProducerStats:
    """A summary line: the whole run, or its steady state (after the warm-up records)."""

    records: int
    records_per_s: float
    mib_per_s: float
    avg_latency_ms: float
    max_latency_ms: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    p999_ms: float
    steady_state: bool = False

    def latency_ms(self) -> dict[str, float]:
        """Latencies keyed as greenflow's ``WorkloadResult.latency_ms`` expects."""
        return {
            "avg": self.avg_latency_ms,
            "p50": self.p50_ms,
            "p95": self.p95_ms,
            "p99": self.p99_ms,
            "p999": self.p999_ms,
            "max": self.max_latency_ms,
        }


@attrs.frozen
class ProducerOutput:
    """Everything parsed from the tool's output."""

    windows: tuple[WindowStats, ...] = ()
    total: ProducerStats | None = None
    steady: ProducerStats | None = None
    errors: tuple[str, ...] = ()

    @property
    def window_records(self) -> int:
        """Records acknowledged according to the periodic lines (for a run cut short).

        Before the warm-up ends these count the whole run; after it, the steady-state
        windows; the two never overlap because the tool prints only one series at a time.
        """
        return sum(w.records for w in self.windows)


@attrs.frozen
class ProducerResult:
    """How a ``ProducerPerformance`` run ended and what it printed.

    ``complete`` means it exited 0 and printed its summary (or summaries, with warm-up);
    ``timed_out`` that :meth:`ProducerPerf.wait` hit its deadline and stopped the tool.
    """

    exit_code: int | None
    output: ProducerOutput
    elapsed_s: float
    output_path: Path
    complete: bool
    timed_out: bool = False

    @property
    def stats(self) -> ProducerStats | None:
        """The figures to report: steady state if there was a warm-up, else the total."""
        return self.output.steady or self.output.total


def _num(text: str) -> float:
    return float(text)  # float() reads "NaN" and "Infinity" as Java prints them


#: A producer is back on its rate when its last reported second is at most this much above it.
SETTLED_MARGIN = 0.15


def last_second_rates(outputs: Sequence[ProducerOutput]) -> list[float | None]:
    """Each producer's rate in its last reported window (None: no report yet)."""
    return [out.windows[-1].records_per_s if out.windows else None for out in outputs]


def producers_settled(rates: Sequence[float | None], per_producer: float) -> bool:
    """True when every producer has reported and none is more than :data:`SETTLED_MARGIN`
    above its rate. Kafka's producer tool throttles on its average since it started, so
    after a slow start (JVM warm-up, metadata) it sends faster than asked until it has caught
    up; a window measured during that burst would carry a load the run did not ask for."""
    return bool(rates) and all(
        r is not None and r <= (1 + SETTLED_MARGIN) * per_producer for r in rates
    )


def parse_producer_output(text: str) -> ProducerOutput:
    """Parse ``ProducerPerformance`` output; unknown lines (warnings, logs) are ignored."""
    windows: list[WindowStats] = []
    total: ProducerStats | None = None
    steady: ProducerStats | None = None
    errors: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        if m := _WINDOW_RE.match(line):
            windows.append(
                WindowStats(
                    records=int(m.group(1)),
                    records_per_s=_num(m.group(2)),
                    mib_per_s=_num(m.group(3)),
                    avg_latency_ms=_num(m.group(4)),
                    max_latency_ms=_num(m.group(5)),
                )
            )
        elif m := _SUMMARY_RE.match(line):
            stats = ProducerStats(
                records=int(m.group(1)),
                steady_state=m.group(2) is not None,
                records_per_s=_num(m.group(3)),
                mib_per_s=_num(m.group(4)),
                avg_latency_ms=_num(m.group(5)),
                max_latency_ms=_num(m.group(6)),
                p50_ms=float(m.group(7)),
                p95_ms=float(m.group(8)),
                p99_ms=float(m.group(9)),
                p999_ms=float(m.group(10)),
            )
            if stats.steady_state:
                steady = stats
            else:
                total = stats
        elif _ERROR_RE.match(line):
            errors.append(line)
    return ProducerOutput(windows=tuple(windows), total=total, steady=steady, errors=tuple(errors))


def records_for(rate_per_s: float, seconds: float) -> int:
    """Records a throttled run at ``rate_per_s`` sends in ``seconds`` (at least 1)."""
    if rate_per_s <= 0 or not math.isfinite(rate_per_s):
        msg = f"a time-bounded run needs a positive finite rate, got {rate_per_s}; pass num_records instead"
        raise ProducerPerfError(msg)
    return max(1, round(rate_per_s * seconds))


def version_tuple(version: str) -> tuple[int, ...]:
    """``"4.2.0"`` → ``(4, 2, 0)``, to compare Kafka versions (suffixes ignored)."""
    return tuple(int(x) for x in re.findall(r"\d+", version)[:3])


def producer_perf_args(
    version: str,
    *,
    bootstrap_servers: str,
    topic: str,
    num_records: int,
    record_size: int,
    throughput: float,
    acks: str = "all",
    producer_props: Mapping[str, str] | None = None,
    warmup_records: int = 0,
    reporting_interval_ms: int = 1000,
) -> list[str]:
    """The arguments of one ``ProducerPerformance`` run of Kafka ``version`` (what follows the
    main class, or ``kafka-producer-perf-test.sh``).

    ``throughput`` is records/s (``-1`` for unthrottled); ``acks`` and ``producer_props``
    become producer settings (``producer_props`` wins over ``acks``). Kafka < 4.2 has no
    warm-up or reporting-interval options (reports every 5 s there).
    """
    if num_records < 1 or record_size < 1:
        msg = f"num_records and record_size must be >= 1, got {num_records} and {record_size}"
        raise ProducerPerfError(msg)
    if not 0 <= warmup_records < num_records:
        msg = f"warmup_records must be in [0, num_records={num_records}), got {warmup_records}"
        raise ProducerPerfError(msg)
    props = {"acks": acks, **(producer_props or {})}
    bad = sorted(k for k, v in props.items() if "=" in k or "=" in str(v) or " " in str(v))
    if bad:
        # The tool splits each KEY=VALUE on "=" and rejects more than two pieces.
        msg = f"producer properties {bad} contain '=' or spaces, which ProducerPerformance cannot take on its command line"
        raise ProducerPerfError(msg)
    modern = version_tuple(version) >= (4, 2)
    args = ["--topic", topic, "--num-records", str(num_records), "--record-size", str(record_size)]
    args += ["--throughput", f"{throughput:g}" if throughput > 0 else "-1"]
    if modern:
        args += ["--bootstrap-server", bootstrap_servers]
        args += ["--command-property", *(f"{k}={v}" for k, v in props.items())]
        args += ["--reporting-interval", str(reporting_interval_ms)]
        if warmup_records:
            args += ["--warmup-records", str(warmup_records)]
    else:
        if warmup_records:
            msg = f"--warmup-records needs Kafka >= 4.2; this distribution is {version}"
            raise ProducerPerfError(msg)
        props = {"bootstrap.servers": bootstrap_servers, **props}
        args += ["--producer-props", *(f"{k}={v}" for k, v in props.items())]
    return args


def producer_perf_command(
    distribution: KafkaDistribution,
    *,
    bootstrap_servers: str,
    topic: str,
    num_records: int,
    record_size: int,
    throughput: float,
    acks: str = "all",
    producer_props: Mapping[str, str] | None = None,
    warmup_records: int = 0,
    reporting_interval_ms: int = 1000,
    heap: str = "512m",
    name: str = "producer-perf",
) -> list[str]:
    """The argv of one ``ProducerPerformance`` run (arguments from :func:`producer_perf_args`).

    ``name`` tags the JVM for :func:`greenflow_kafka.cluster.kill_pids`.
    """
    args = producer_perf_args(
        distribution.version,
        bootstrap_servers=bootstrap_servers,
        topic=topic,
        num_records=num_records,
        record_size=record_size,
        throughput=throughput,
        acks=acks,
        producer_props=producer_props,
        warmup_records=warmup_records,
        reporting_interval_ms=reporting_interval_ms,
    )
    return distribution.java_command(
        PRODUCER_PERFORMANCE_MAIN,
        args,
        heap=heap,
        jvm_options=[f"{PROCESS_MARKER}{name}", *TOOL_JVM_OPTIONS],
        log4j2_config=package_data("log4j2-tools.properties"),
    )


class ProducerPerf:
    """A running Kafka tool JVM (``ProducerPerformance``, also ``EndToEndLatency``) with its
    output in a file.

    Start it with :meth:`start`, then :meth:`wait` for it (with a deadline) or
    :meth:`stop` it. The JVM runs in its own session; nothing survives :meth:`stop`.
    """

    def __init__(
        self, proc: subprocess.Popen[bytes], output_path: Path, command: Sequence[str]
    ) -> None:
        self._proc = proc
        self.output_path = output_path
        self.command = list(command)
        self.started_at = time.time()
        self._started_mono = time.monotonic()

    @classmethod
    def start(cls, command: Sequence[str], output_path: Path) -> ProducerPerf:
        """Spawn ``command`` (from :func:`producer_perf_command`) with stdout+stderr to ``output_path``."""
        output_path.parent.mkdir(parents=True, exist_ok=True)
        with output_path.open("wb") as out:
            try:
                proc = subprocess.Popen(
                    list(command),
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )
            except OSError as exc:
                msg = f"could not start the Kafka tool {command[0]}: {exc}"
                raise ProducerPerfError(msg) from exc
        return cls(proc, output_path, command)

    @property
    def pid(self) -> int:
        return self._proc.pid

    def poll(self) -> int | None:
        return self._proc.poll()

    def output(self) -> ProducerOutput:
        """Parse what the tool has printed so far."""
        try:
            return parse_producer_output(self.output_path.read_text(errors="replace"))
        except OSError:
            return ProducerOutput()

    def wait(self, timeout_s: float) -> ProducerResult:
        """Wait for the tool to finish; at the deadline stop it and return an incomplete result.

        Never raises for the tool's own failure: check ``complete`` (or use
        :func:`run_producer_perf`, which raises).
        """
        try:
            self._proc.wait(timeout=timeout_s)
            timed_out = False
        except subprocess.TimeoutExpired:
            self.stop()
            timed_out = True
        return self._result(timed_out=timed_out)

    def stop(self, timeout_s: float = 10.0) -> int | None:
        """SIGTERM the tool's process group, SIGKILL at the deadline; return its exit code."""
        for sig, wait_s in ((signal.SIGTERM, timeout_s), (signal.SIGKILL, 10.0)):
            if self._proc.poll() is not None:
                break
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._proc.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout=wait_s)
        return self._proc.poll()

    def _result(self, *, timed_out: bool) -> ProducerResult:
        code = self._proc.poll()
        output = self.output()
        summary_ok = output.total is not None and (
            output.steady is not None or "--warmup-records" not in self.command
        )
        return ProducerResult(
            exit_code=code,
            output=output,
            elapsed_s=time.monotonic() - self._started_mono,
            output_path=self.output_path,
            complete=code == 0 and summary_ok and not timed_out,
            timed_out=timed_out,
        )

    def __enter__(self) -> ProducerPerf:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def run_producer_perf(
    distribution: KafkaDistribution,
    *,
    bootstrap_servers: str,
    topic: str,
    rate_per_s: float,
    duration_s: float,
    record_size: int,
    output_path: Path,
    warmup_s: float = 0.0,
    acks: str = "all",
    producer_props: Mapping[str, str] | None = None,
    heap: str = "512m",
    slack: float = 1.5,
    margin_s: float = 60.0,
) -> ProducerResult:
    """Produce at ``rate_per_s`` for ``warmup_s + duration_s`` and return the tool's figures.

    The deadline is ``(warmup_s + duration_s) × slack + margin_s`` (JVM start, a cluster
    slower than asked). Raises ``ProducerPerfError`` with the output's last lines if the
    tool fails, prints no summary, or misses the deadline.
    """
    num_records = records_for(rate_per_s, warmup_s + duration_s)
    warmup_records = records_for(rate_per_s, warmup_s) if warmup_s > 0 else 0
    cmd = producer_perf_command(
        distribution,
        bootstrap_servers=bootstrap_servers,
        topic=topic,
        num_records=num_records,
        record_size=record_size,
        throughput=rate_per_s,
        acks=acks,
        producer_props=producer_props,
        warmup_records=warmup_records,
        heap=heap,
    )
    timeout_s = (warmup_s + duration_s) * slack + margin_s
    with ProducerPerf.start(cmd, output_path) as perf:
        result = perf.wait(timeout_s)
    if not result.complete:
        if result.timed_out:
            why = f"did not finish within {timeout_s:g}s (sent {result.output.window_records} records per its reports)"
        elif result.exit_code != 0:
            why = f"exited with {result.exit_code}"
        else:
            why = "printed no summary line"
        lines = "\n".join(f"  {line}" for line in tail(output_path))
        msg = f"Kafka producer perf tool on topic {topic!r} {why}; last lines of {output_path}:\n{lines}"
        raise ProducerPerfError(msg)
    return result


# -- end-to-end latency probe -------------------------------------------------------------

END_TO_END_LATENCY_MAIN = "org.apache.kafka.tools.EndToEndLatency"
_E2E_AVG_RE = re.compile(rf"^Avg latency: {NUMBER} ms$")
_E2E_PCT_RE = re.compile(r"^Percentiles: 50th = (\d+), 99th = (\d+), 99\.9th = (\d+)$")


@attrs.frozen
class EndToEndLatencyStats:
    """Produce-to-consume latency of ``EndToEndLatency``: one record at a time, sent
    synchronously and polled back, so it measures an unloaded round trip (a probe to run
    beside a load, not a load). Percentiles are whole milliseconds as the tool prints them.
    """

    records: int
    avg_ms: float
    p50_ms: float
    p99_ms: float
    p999_ms: float


def parse_end_to_end_latency_output(text: str, records: int) -> EndToEndLatencyStats | None:
    """The tool's two summary lines, or None if it did not print them (it failed or was cut)."""
    avg: float | None = None
    pct: tuple[float, float, float] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if m := _E2E_AVG_RE.match(line):
            avg = _num(m.group(1))
        elif m := _E2E_PCT_RE.match(line):
            pct = (float(m.group(1)), float(m.group(2)), float(m.group(3)))
    if avg is None or pct is None:
        return None
    return EndToEndLatencyStats(
        records=records, avg_ms=avg, p50_ms=pct[0], p99_ms=pct[1], p999_ms=pct[2]
    )


def end_to_end_latency_command(
    distribution: KafkaDistribution,
    *,
    bootstrap_servers: str,
    topic: str,
    num_records: int,
    record_size: int,
    acks: str = "all",
    heap: str = "256m",
    name: str = "end-to-end-latency",
) -> list[str]:
    """The argv of one ``EndToEndLatency`` run (arguments from
    :func:`end_to_end_latency_args`). Create ``topic`` first: the tool would otherwise
    create it itself with one partition and replication factor 1."""
    args = end_to_end_latency_args(
        distribution.version,
        bootstrap_servers=bootstrap_servers,
        topic=topic,
        num_records=num_records,
        record_size=record_size,
        acks=acks,
    )
    return distribution.java_command(
        END_TO_END_LATENCY_MAIN,
        args,
        heap=heap,
        jvm_options=[f"{PROCESS_MARKER}{name}", *TOOL_JVM_OPTIONS],
        log4j2_config=package_data("log4j2-tools.properties"),
    )


def end_to_end_latency_args(
    version: str,
    *,
    bootstrap_servers: str,
    topic: str,
    num_records: int,
    record_size: int,
    acks: str = "all",
) -> list[str]:
    """The arguments of one ``EndToEndLatency`` run of Kafka ``version`` (what follows the
    main class, or ``kafka-run-class.sh <main class>``)."""
    if acks not in ("1", "all"):
        msg = f"EndToEndLatency takes acks '1' or 'all', got {acks!r}"
        raise ProducerPerfError(msg)
    if num_records < 1 or record_size < 1:
        msg = f"num_records and record_size must be >= 1, got {num_records} and {record_size}"
        raise ProducerPerfError(msg)
    if version_tuple(version) >= (4, 2):
        return [
            "--bootstrap-server",
            bootstrap_servers,
            "--topic",
            topic,
            "--num-records",
            str(num_records),
            "--producer-acks",
            acks,
            "--record-size",
            str(record_size),
        ]
    # Positional before 4.2 (deprecated, still accepted, in 4.2+).
    return [bootstrap_servers, topic, str(num_records), acks, str(record_size)]


def run_end_to_end_latency(
    distribution: KafkaDistribution,
    *,
    bootstrap_servers: str,
    topic: str,
    num_records: int,
    record_size: int,
    output_path: Path,
    acks: str = "all",
    heap: str = "256m",
    timeout_s: float = 120.0,
) -> EndToEndLatencyStats:
    """Run the latency probe to completion; raise ``ProducerPerfError`` with its output's
    last lines if it fails or misses ``timeout_s``."""
    cmd = end_to_end_latency_command(
        distribution,
        bootstrap_servers=bootstrap_servers,
        topic=topic,
        num_records=num_records,
        record_size=record_size,
        acks=acks,
        heap=heap,
    )
    with ProducerPerf.start(cmd, output_path) as probe:
        result = probe.wait(timeout_s)
    stats = parse_end_to_end_latency_output(output_path.read_text(errors="replace"), num_records)
    if stats is None or result.exit_code != 0:
        why = (
            f"did not finish within {timeout_s:g}s"
            if result.timed_out
            else f"exited with {result.exit_code}"
            if result.exit_code != 0
            else "printed no summary"
        )
        lines = "\n".join(f"  {line}" for line in tail(output_path))
        msg = f"Kafka end-to-end latency tool on topic {topic!r} {why}; last lines of {output_path}:\n{lines}"
        raise ProducerPerfError(msg)
    return stats


__all__ = [
    "END_TO_END_LATENCY_MAIN",
    "NUMBER",
    "PRODUCER_PERFORMANCE_MAIN",
    "TOOL_JVM_OPTIONS",
    "EndToEndLatencyStats",
    "ProducerOutput",
    "ProducerPerf",
    "ProducerResult",
    "ProducerStats",
    "WindowStats",
    "end_to_end_latency_args",
    "end_to_end_latency_command",
    "parse_end_to_end_latency_output",
    "parse_producer_output",
    "producer_perf_args",
    "producer_perf_command",
    "records_for",
    "run_end_to_end_latency",
    "run_producer_perf",
    "version_tuple",
]
