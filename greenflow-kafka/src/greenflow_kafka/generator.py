"""GreenFlow's load generator for kafka-ingest (docs/kafka.md, "The load generator").

``io.greenflow.kafka.ScheduledProducer`` (its source and POM in ``data/generator``) is an
open-loop producer on Kafka's own client: message *k* is due at ``t0 + k / rate``, never sent
before it, and given up (counted as *missed*) when it cannot be sent within
:data:`MAX_LATENESS_MS` of it, so the generator never bursts above the asked rate to catch
up. Latency runs from each message's due time to its acknowledgement (coordinated omission
accounted for), and a missed message enters the distribution with the time it had waited.
Every :data:`REPORT_INTERVAL_MS` it prints a line with that interval's counts, its latency
histogram and how far behind its schedule it is, stamped with the wall clock, so that a
run's figures are cut at MEASURE's own boundaries (:func:`window`).

The jar is built once per source with ``mvn`` against kafka-clients from Maven Central into
``$XDG_CACHE_HOME/greenflow/generator/<digest>`` (:func:`resolve_generator`), under a lock;
it runs with the Kafka distribution's class path locally, and with the broker image's on
Kubernetes, where it travels in a ConfigMap.
"""

from __future__ import annotations

import hashlib
import math
import re
import shutil
from collections.abc import Iterable, Mapping, Sequence
from importlib import resources
from pathlib import Path

import attrs

from greenflow_kafka.cluster import PROCESS_MARKER
from greenflow_kafka.distribution import (
    KafkaDistribution,
    default_cache_dir,
    find_java,
    find_mvn,
    locked,
    package_data,
    run_logged,
)
from greenflow_kafka.errors import KafkaSetupError, ProducerPerfError
from greenflow_kafka.perf import TOOL_JVM_OPTIONS, ProducerPerf

GENERATOR_MAIN = "io.greenflow.kafka.ScheduledProducer"
GENERATOR_JAR = "greenflow-generator.jar"
#: One report line every this many ms: MEASURE is cut at this resolution.
REPORT_INTERVAL_MS = 500
#: A message that cannot be sent within this many ms of its due time is missed, not sent late.
MAX_LATENESS_MS = 10
#: Histogram buckets: values below LINEAR µs exact, then SUB per power of two.
SUB_BITS = 5
SUB = 1 << SUB_BITS
LINEAR = 2 * SUB

_JDK_HINT = "apt-get install openjdk-17-jdk-headless"
_NUMBER = r"(-?\d+(?:\.\d+)?)"
_START_RE = re.compile(
    rf"^greenflow-generator-start t={_NUMBER} rate={_NUMBER} size=(\d+) slots=(-?\d+) "
    r"max_lateness_ms=(\d+)$"
)
_INTERVAL_RE = re.compile(
    rf"^greenflow-generator t={_NUMBER} sent=(\d+) acked=(\d+) errors=(\d+) missed=(\d+) "
    rf"behind_ms={_NUMBER} inflight=(-?\d+) n=(\d+) sum_us=(\d+) max_us=(\d+) h=([\d:,]*)$"
)
_END_RE = re.compile(
    rf"^greenflow-generator-end t={_NUMBER} sent=(\d+) acked=(\d+) errors=(\d+) missed=(\d+)$"
)
# The first line of a send error's stack trace, e.g.
# "org.apache.kafka.common.errors.TimeoutException: Expiring 12 record(s) ...".
_ERROR_RE = re.compile(r"^(?:[A-Za-z_$][\w$]*\.)+[A-Za-z_$][\w$]*(?:Exception|Error)(?::.*)?$")


# -- the latency histogram -------------------------------------------------------------------


def bucket_of(us: int) -> int:
    """The bucket the generator puts ``us`` microseconds in (its ``bucket()``)."""
    if us < LINEAR:
        return max(0, us)
    msb = us.bit_length() - 1
    return LINEAR + (msb - 6) * SUB + ((us >> (msb - SUB_BITS)) & (SUB - 1))


def bucket_bounds(index: int) -> tuple[int, int]:
    """The values (µs) bucket ``index`` holds, as ``[low, high)``: the inverse of the
    generator's ``bucket()`` (exact below 64 µs, then 32 buckets per power of two)."""
    if index < LINEAR:
        return index, index + 1
    k = index - LINEAR
    msb = 6 + k // SUB
    shift = msb - SUB_BITS
    low = (SUB + k % SUB) << shift
    return low, low + (1 << shift)


@attrs.frozen
class Histogram:
    """Latencies (µs) in the generator's buckets; merged exactly across intervals and
    producers. Percentiles are a bucket's middle (within 1.6 %), never above the maximum."""

    counts: Mapping[int, int] = attrs.field(factory=dict)
    n: int = 0
    sum_us: int = 0
    max_us: int = 0

    @classmethod
    def merge(cls, parts: Iterable[Histogram]) -> Histogram:
        counts: dict[int, int] = {}
        n = total = top = 0
        for h in parts:
            for i, c in h.counts.items():
                counts[i] = counts.get(i, 0) + c
            n += h.n
            total += h.sum_us
            top = max(top, h.max_us)
        return cls(counts, n, total, top)

    def percentile_ms(self, q: float) -> float | None:
        """The ``q``-quantile (0 < q ≤ 1) in ms; None when empty."""
        if self.n == 0:
            return None
        rank = max(1, math.ceil(q * self.n))
        seen = 0
        for i in sorted(self.counts):
            seen += self.counts[i]
            if seen >= rank:
                low, high = bucket_bounds(i)
                middle = low if high - low == 1 else (low + high) / 2
                return min(middle, self.max_us) / 1000
        return self.max_us / 1000

    def latency_ms(self) -> dict[str, float]:
        """Keys as ``WorkloadResult.latency_ms`` expects (empty when nothing was recorded)."""
        if self.n == 0:
            return {}
        out = {"avg": self.sum_us / self.n / 1000, "max": self.max_us / 1000}
        for key, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99), ("p999", 0.999)):
            value = self.percentile_ms(q)
            if value is not None:
                out[key] = value
        return out


def _histogram(text: str, n: int, sum_us: int, max_us: int) -> Histogram:
    counts: dict[int, int] = {}
    for pair in filter(None, text.split(",")):
        i, _, c = pair.partition(":")
        counts[int(i)] = counts.get(int(i), 0) + int(c)
    return Histogram(counts, n, sum_us, max_us)


# -- what the generator prints ---------------------------------------------------------------


@attrs.frozen
class Interval:
    """One report line: the interval ending at ``t`` (Unix seconds, the generator's clock)."""

    t: float
    sent: int
    acked: int
    errors: int
    missed: int
    #: How far behind its schedule the sender was at ``t``: missed sends as time, plus the
    #: lateness of the next one.
    behind_ms: float
    #: Sent, not yet acknowledged (nor failed), at ``t``.
    inflight: int
    latency: Histogram


@attrs.frozen
class GeneratorEnd:
    """The totals printed once every send was acknowledged (or failed)."""

    t: float
    sent: int
    acked: int
    errors: int
    missed: int


@attrs.frozen
class GeneratorOutput:
    """Everything parsed from one generator's output."""

    started: float | None = None
    rate: float | None = None
    intervals: tuple[Interval, ...] = ()
    end: GeneratorEnd | None = None
    errors: tuple[str, ...] = ()

    @property
    def acked(self) -> int:
        return sum(i.acked for i in self.intervals)

    def last_rate(self) -> float | None:
        """Messages sent per second in the last reported interval (None: none yet)."""
        if not self.intervals:
            return None
        last = self.intervals[-1]
        prev = self.intervals[-2].t if len(self.intervals) > 1 else self.started
        if prev is None or last.t <= prev:
            return None
        return last.sent / (last.t - prev)


def parse_generator_output(text: str) -> GeneratorOutput:
    """Parse the generator's output; other lines (JVM warnings, logs) are ignored."""
    started = rate = None
    intervals: list[Interval] = []
    end = None
    errors: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        if m := _INTERVAL_RE.match(line):
            intervals.append(
                Interval(
                    t=float(m.group(1)),
                    sent=int(m.group(2)),
                    acked=int(m.group(3)),
                    errors=int(m.group(4)),
                    missed=int(m.group(5)),
                    behind_ms=float(m.group(6)),
                    inflight=int(m.group(7)),
                    latency=_histogram(
                        m.group(11), int(m.group(8)), int(m.group(9)), int(m.group(10))
                    ),
                )
            )
        elif m := _START_RE.match(line):
            started, rate = float(m.group(1)), float(m.group(2))
        elif m := _END_RE.match(line):
            end = GeneratorEnd(float(m.group(1)), *(int(m.group(i)) for i in range(2, 6)))
        elif _ERROR_RE.match(line):
            errors.append(line)
    return GeneratorOutput(started, rate, tuple(intervals), end, tuple(errors))


# -- a run's figures over MEASURE --------------------------------------------------------------


def trend(points: Sequence[tuple[float, float]]) -> float | None:
    """Least-squares slope of ``(t, y)`` points (y per second); None with fewer than two
    distinct times."""
    if len(points) < 2:
        return None
    n = len(points)
    mt = sum(t for t, _ in points) / n
    my = sum(y for _, y in points) / n
    var = sum((t - mt) ** 2 for t, _ in points)
    if var <= 0:
        return None
    return sum((t - mt) * (y - my) for t, y in points) / var


@attrs.frozen
class GeneratorWindow:
    """The generators' figures over one window, every producer together.

    ``schedule_lag_*`` are the worst producer's: ``trend`` the least-squares slope of its
    time behind schedule over the window (seconds per second), ``growth`` how much further
    behind it fell from the window's first report to its last, ``max`` the most it was
    behind. ``intervals`` counts the report intervals inside the window (all producers) and
    ``seconds`` is the time they cover (per producer, averaged)."""

    sent: int
    acked: int
    errors: int
    missed: int
    latency: Histogram
    intervals: int
    schedule_lag_trend: float | None
    schedule_lag_growth_s: float | None
    schedule_lag_max_s: float | None
    inflight_max: int | None
    seconds: float = 0.0

    @property
    def missed_ratio(self) -> float | None:
        """Missed sends over the sends due in the window."""
        due = self.sent + self.missed
        return self.missed / due if due else None


def window(outputs: Sequence[GeneratorOutput], start: float, end: float) -> GeneratorWindow:
    """Merge the report intervals that lie in ``[start, end]`` (an interval belongs to the
    window when its middle does), over every generator."""
    inside: list[Interval] = []
    trends, growths, maxima, spans = [], [], [], []
    for out in outputs:
        prev = out.started
        mine: list[Interval] = []
        span = 0.0
        for iv in out.intervals:
            begin = prev if prev is not None else iv.t - REPORT_INTERVAL_MS / 1000
            if start <= (begin + iv.t) / 2 <= end:
                mine.append(iv)
                span += iv.t - begin
            prev = iv.t
        inside += mine
        if mine:
            spans.append(span)
        points = [(iv.t, iv.behind_ms / 1000) for iv in mine]
        slope = trend(points)
        if slope is not None:
            trends.append(slope)
        if points:
            growths.append(points[-1][1] - points[0][1])
            maxima.append(max(y for _, y in points))
    return GeneratorWindow(
        sent=sum(iv.sent for iv in inside),
        acked=sum(iv.acked for iv in inside),
        errors=sum(iv.errors for iv in inside),
        missed=sum(iv.missed for iv in inside),
        latency=Histogram.merge(iv.latency for iv in inside),
        intervals=len(inside),
        schedule_lag_trend=max(trends) if trends else None,
        schedule_lag_growth_s=max(growths) if growths else None,
        schedule_lag_max_s=max(maxima) if maxima else None,
        inflight_max=max((iv.inflight for iv in inside), default=None),
        seconds=sum(spans) / len(spans) if spans else 0.0,
    )


# -- building and running it -----------------------------------------------------------------


def _source_files() -> list[tuple[str, bytes]]:
    root = resources.files("greenflow_kafka") / "data" / "generator"
    found: list[tuple[str, bytes]] = []

    def walk(node: object, prefix: str) -> None:
        for child in sorted(node.iterdir(), key=lambda c: c.name):  # type: ignore[attr-defined]
            name = f"{prefix}{child.name}"
            if child.is_dir():
                walk(child, f"{name}/")
            elif child.name.endswith((".java", ".xml")):
                found.append((name, child.read_bytes()))

    walk(root, "")
    if not any(name.endswith(".java") for name, _ in found):
        msg = "greenflow-kafka is missing its generator source (data/generator); reinstall it"
        raise KafkaSetupError(msg)
    return found


def source_digest() -> str:
    """A digest of the generator's source and POM: the cache key of its jar."""
    h = hashlib.sha256()
    for name, data in _source_files():
        h.update(name.encode() + b"\0" + data + b"\0")
    return h.hexdigest()[:16]


def resolve_generator(
    *,
    cache_dir: Path | None = None,
    env: Mapping[str, str] | None = None,
    mvn_timeout_s: float = 600.0,
    lock_timeout_s: float = 900.0,
) -> Path:
    """The generator's jar: from the cache, else built with ``mvn`` (once per source; later
    calls only look for the jar). ``cache_dir`` is the parent of the digest directories
    (default ``$XDG_CACHE_HOME/greenflow/generator``). Building needs Maven and a JDK; raises
    ``KafkaSetupError`` with the fix."""
    import os

    env = os.environ if env is None else env
    root = (cache_dir or default_cache_dir(env).parent / "generator") / source_digest()
    jar = root / GENERATOR_JAR
    if jar.is_file():
        return jar
    root.mkdir(parents=True, exist_ok=True)
    with locked(root / ".lock", timeout_s=lock_timeout_s, what=f"the load generator into {root}"):
        if not jar.is_file():  # another process may have built it meanwhile
            _build(root, env, timeout_s=mvn_timeout_s)
    return jar


def _build(root: Path, env: Mapping[str, str], *, timeout_s: float) -> None:
    try:
        mvn = find_mvn(env)
    except KafkaSetupError:
        msg = (
            "kafka-ingest's load generator is built from its source with Maven (once) and no "
            "`mvn` is on PATH. Install it (`apt-get install maven`) and a JDK "
            f"(`{_JDK_HINT}`)."
        )
        raise KafkaSetupError(msg) from None
    java = find_java(env)
    build = root / "build"
    shutil.rmtree(build, ignore_errors=True)
    for name, data in _source_files():
        path = build / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    mvn_env = dict(env)
    mvn_env.setdefault("JAVA_HOME", str(java.path.resolve().parent.parent))
    cmd = [str(mvn), "-q", "-B", "-f", str(build / "pom.xml"), "compiler:compile", "jar:jar"]
    output, code = run_logged(cmd, root / "mvn.log", mvn_env, cwd=build, timeout_s=timeout_s)
    built = build / "target" / GENERATOR_JAR
    if code != 0 or not built.is_file():
        why = f"timed out after {timeout_s:g}s" if code is None else f"exited with {code}"
        tail = "\n".join(output.rstrip().splitlines()[-20:])
        hint = (
            f"a JDK is needed, not only a JRE (`{_JDK_HINT}`, and JAVA_HOME pointing at it)"
            if "compiler" in output.lower() and "no compiler" in output.lower()
            else "check network access to Maven Central"
        )
        msg = (
            f"building kafka-ingest's load generator failed: `{' '.join(cmd)}` {why}. Last "
            f"lines of its output (all of it in {root / 'mvn.log'}):\n{tail}\nFix: {hint}."
        )
        raise KafkaSetupError(msg)
    tmp = root / (GENERATOR_JAR + ".tmp")
    shutil.copyfile(built, tmp)
    tmp.replace(root / GENERATOR_JAR)  # last: its presence says the build is complete
    shutil.rmtree(build, ignore_errors=True)


def generator_args(
    *,
    bootstrap_servers: str,
    topic: str,
    rate: float,
    record_size: int,
    seconds: float | None = None,
    num_records: int | None = None,
    ramp_seconds: float = 0.0,
    acks: str = "all",
    producer_props: Mapping[str, str] | None = None,
    report_interval_ms: int = REPORT_INTERVAL_MS,
    max_lateness_ms: int = MAX_LATENESS_MS,
) -> list[str]:
    """The generator's arguments: ``rate`` msg/s for ``seconds`` of schedule (or
    ``num_records``), reached by a linear ramp over its first ``ramp_seconds``, or as fast
    as it can with ``rate = -1`` and ``num_records``. ``producer_props`` win over ``acks``."""
    if record_size < 1:
        msg = f"record_size must be >= 1, got {record_size}"
        raise ProducerPerfError(msg)
    if rate > 0:
        if not math.isfinite(rate) or ((seconds is None or seconds <= 0) and not num_records):
            msg = f"a scheduled run needs a finite rate and seconds > 0, got {rate} and {seconds}"
            raise ProducerPerfError(msg)
    elif not num_records or num_records < 1:
        msg = "an unthrottled run (rate -1) needs num_records >= 1"
        raise ProducerPerfError(msg)
    props = {"acks": acks, **(producer_props or {})}
    args = ["--bootstrap-server", bootstrap_servers, "--topic", topic]
    args += ["--rate", f"{rate:.6f}" if rate > 0 else "-1", "--record-size", str(record_size)]
    if num_records:
        args += ["--num-records", str(num_records)]
    else:
        assert seconds is not None
        args += ["--seconds", f"{seconds:g}"]
    if ramp_seconds > 0 and rate > 0:
        args += ["--ramp-seconds", f"{ramp_seconds:g}"]
    args += ["--report-interval-ms", str(report_interval_ms)]
    args += ["--max-lateness-ms", str(max_lateness_ms)]
    for k, v in props.items():
        args += ["--producer-prop", f"{k}={v}"]
    return args


def generator_command(
    distribution: KafkaDistribution,
    jar: Path,
    args: Sequence[str],
    *,
    heap: str = "512m",
    name: str = "producer",
) -> list[str]:
    """The argv running the generator with ``args`` (:func:`generator_args`) on the
    distribution's class path plus ``jar``, with the JVM options of Kafka's tools; ``name``
    tags the JVM for :func:`greenflow_kafka.cluster.kill_pids`."""
    dist = attrs.evolve(distribution, classpath=(*distribution.classpath, str(jar)))
    return dist.java_command(
        GENERATOR_MAIN,
        list(args),
        heap=heap,
        jvm_options=[f"{PROCESS_MARKER}{name}", *TOOL_JVM_OPTIONS],
        log4j2_config=package_data("log4j2-tools.properties"),
    )


@attrs.frozen
class GeneratorResult:
    """How a generator run ended: ``complete`` when it exited 0 after printing its totals."""

    exit_code: int | None
    output: GeneratorOutput
    output_path: Path
    timed_out: bool

    @property
    def complete(self) -> bool:
        return self.exit_code == 0 and self.output.end is not None and not self.timed_out


class Generator:
    """A running generator JVM with its output in a file (its process handling is
    :class:`greenflow_kafka.perf.ProducerPerf`'s: own session, SIGTERM then SIGKILL)."""

    def __init__(self, proc: ProducerPerf) -> None:
        self._proc = proc
        self.output_path = proc.output_path

    @classmethod
    def start(cls, command: Sequence[str], output_path: Path) -> Generator:
        return cls(ProducerPerf.start(command, output_path))

    @property
    def pid(self) -> int:
        return self._proc.pid

    def poll(self) -> int | None:
        return self._proc.poll()

    def output(self) -> GeneratorOutput:
        try:
            return parse_generator_output(self.output_path.read_text(errors="replace"))
        except OSError:
            return GeneratorOutput()

    def wait(self, timeout_s: float) -> GeneratorResult:
        """Wait for it to finish; at the deadline stop it (its totals still print)."""
        res = self._proc.wait(timeout_s)
        return GeneratorResult(res.exit_code, self.output(), self.output_path, res.timed_out)

    def stop(self) -> int | None:
        return self._proc.stop()


def run_generator(
    distribution: KafkaDistribution,
    jar: Path,
    args: Sequence[str],
    output_path: Path,
    *,
    timeout_s: float,
    heap: str = "512m",
) -> GeneratorResult:
    """Run the generator to its end (benchmarks, tests); never raises for its failure."""
    cmd = generator_command(distribution, jar, args, heap=heap)
    gen = Generator.start(cmd, output_path)
    try:
        return gen.wait(timeout_s)
    finally:
        gen.stop()


__all__ = [
    "GENERATOR_JAR",
    "GENERATOR_MAIN",
    "MAX_LATENESS_MS",
    "REPORT_INTERVAL_MS",
    "Generator",
    "GeneratorEnd",
    "GeneratorOutput",
    "GeneratorResult",
    "GeneratorWindow",
    "Histogram",
    "Interval",
    "bucket_bounds",
    "bucket_of",
    "generator_args",
    "generator_command",
    "parse_generator_output",
    "resolve_generator",
    "run_generator",
    "source_digest",
    "trend",
    "window",
]
