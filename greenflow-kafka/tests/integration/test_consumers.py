"""kafka-ingest with consumers on a real broker: messages consumed in MEASURE from the group's
committed offsets, end-to-end latency from the probe, and no consumer or probe JVM after
clean(); plus the consumer tool's command line and output parsing."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs
import psutil
import pytest

from greenflow.api import Phase, PhaseRecorder, Service, WorkloadResult
from greenflow.plan.durations import Duration
from greenflow.testing import assert_valid_result, make_deploy_context, make_run_context
from greenflow_kafka.consumer import (
    UNBOUNDED_RECORDS,
    consumer_perf_command,
    parse_consumer_output,
)
from greenflow_kafka.distribution import KafkaDistribution
from greenflow_kafka.errors import ProducerPerfError
from greenflow_kafka.ingest import KafkaIngestConfig, KafkaIngestWorkload
from greenflow_kafka.service import KafkaConfig, KafkaService

LOAD = 1000


def _config(**kw: Any) -> KafkaIngestConfig:
    values: dict[str, Any] = {
        "load": LOAD,
        "message_size": 512,
        "partitions": 2,
        "consumers": 2,
        "warmup": Duration(1),
        "duration": Duration(4),
        "producer_heap": "256m",
        "consumer_heap": "256m",
        # This checks consumers, not whether this host keeps up with the producers.
        "min_achieved_ratio": 0.0,
    }
    values.update(kw)
    return KafkaIngestConfig(**values)


@pytest.fixture(scope="module")
def services(
    kafka_distribution: KafkaDistribution, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Mapping[str, Service]]:
    """One real 1-broker cluster named ``kafka`` shared by this module's runs."""
    from greenflow.plugins import Kind, load

    tmp_path = tmp_path_factory.mktemp("kafka-consumers")
    platform_cls = load(Kind.PLATFORM, "local", where="test_consumers")
    platform = platform_cls(platform_cls.Config())
    inventory = platform.acquire(make_deploy_context(tmp_path / "platform"))
    svc = KafkaService(
        "kafka", KafkaConfig(version=kafka_distribution.version, brokers=1, heap="384m")
    )
    try:
        svc.deploy(platform, inventory, make_deploy_context(tmp_path / "service"))
        svc.wait_ready(120)
        yield {"kafka": svc}
    finally:
        svc.remove()
        platform.release()


class ProcessWatch:
    """Polls ``workload.processes()`` from a thread, as the process collector does, and keeps
    every (name, pid, create time) it saw."""

    def __init__(self, workload: KafkaIngestWorkload) -> None:
        self.workload = workload
        self.seen: dict[tuple[str, int], float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            for name, pids in self.workload.processes().items():
                for pid in pids:
                    if (name, pid) not in self.seen:
                        try:
                            self.seen[(name, pid)] = psutil.Process(pid).create_time()
                        except psutil.NoSuchProcess:
                            continue

    def __enter__(self) -> ProcessWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    @property
    def names(self) -> set[str]:
        return {name for name, _pid in self.seen}

    def alive(self) -> list[str]:
        """Processes seen during the run that still exist (same pid and start time, not a zombie)."""
        left = []
        for (name, pid), created in self.seen.items():
            try:
                proc = psutil.Process(pid)
                if proc.create_time() == created and proc.status() != psutil.STATUS_ZOMBIE:
                    left.append(f"{name} (pid {pid})")
            except psutil.NoSuchProcess:
                continue
        return left


@attrs.frozen
class ConsumedRun:
    result: WorkloadResult
    phases: PhaseRecorder
    processes_seen: set[str]
    alive_after_clean: list[str]
    seconds: float


@pytest.fixture(scope="module")
def consumed_run(
    services: Mapping[str, Service], tmp_path_factory: pytest.TempPathFactory
) -> ConsumedRun:
    """One kafka-ingest run (2 producers' worth of load on 2 partitions, 2 consumers), cleaned."""
    ctx = make_run_context(
        tmp_path_factory.mktemp("consumed-run"), services=services, run_id="consumers-2"
    )
    wl = KafkaIngestWorkload(_config())
    assert wl.validate(services) is None
    t0 = time.monotonic()
    with ProcessWatch(wl) as watch:
        try:
            wl.prepare(ctx)
            result = wl.execute(ctx)
        finally:
            wl.clean(ctx)
    seconds = time.monotonic() - t0
    print(f"run with 2 consumers: {seconds:.1f}s, metrics {dict(result.metrics)}")
    return ConsumedRun(result, ctx.phases, watch.names, watch.alive(), seconds)


def test_consumers_read_at_least_90_percent_of_what_was_produced_in_measure(
    consumed_run: ConsumedRun,
) -> None:
    """With 2 consumers, messages consumed in MEASURE (committed offsets) are ≥ 90 % of those produced."""
    result = consumed_run.result
    assert_valid_result(result, consumed_run.phases.window(Phase.MEASURE))
    consumed = result.metrics["consumed_messages"]
    assert result.units > 0
    assert consumed >= 0.9 * result.units, dict(result.metrics)
    window = consumed_run.phases.window(Phase.MEASURE)
    assert window is not None
    assert result.metrics["consumed_messages_per_s"] == pytest.approx(consumed / window.duration_s)
    assert result.metrics["consumed_ratio"] == pytest.approx(consumed / result.units)
    assert result.metrics["consumer_lag_messages"] >= 0
    assert result.metrics["consumer_records_total"] >= consumed


def test_end_to_end_latency_metrics_are_present_and_positive(consumed_run: ConsumedRun) -> None:
    """The probe's avg/p50/p99/p999 are stored as e2e_latency_<k>_ms, positive, with its record count and coverage."""
    metrics = consumed_run.result.metrics
    for key in ("avg", "p50", "p99", "p999"):
        assert metrics.get(f"e2e_latency_{key}_ms", 0) > 0, dict(metrics)
    assert (
        metrics["e2e_latency_p50_ms"]
        <= metrics["e2e_latency_p99_ms"]
        <= metrics["e2e_latency_p999_ms"]
    )
    assert metrics["e2e_probe_records"] >= 10
    assert 0 < metrics["e2e_probe_coverage_ratio"] <= 1


def test_consumers_and_probe_join_the_load_generator_processes(consumed_run: ConsumedRun) -> None:
    """processes() names each consumer consumer-<i> and the probe e2e-probe beside the producers."""
    assert {"producer-0", "consumer-0", "consumer-1", "e2e-probe"} <= consumed_run.processes_seen


def test_no_consumer_or_probe_process_survives_clean(consumed_run: ConsumedRun) -> None:
    """Every load-generator JVM seen during a finished run is gone once clean() returns."""
    assert not consumed_run.alive_after_clean


def test_a_run_interrupted_in_measure_leaves_no_process_after_clean(
    services: Mapping[str, Service], tmp_path: Path
) -> None:
    """Cancelling in MEASURE aborts execute(); clean() then stops consumers, probe and producers."""
    cancel = threading.Event()
    in_measure = threading.Event()

    def on_enter(phase: Phase, _at: float) -> None:
        if phase == Phase.MEASURE:
            in_measure.set()

    ctx = make_run_context(
        tmp_path,
        services=services,
        run_id="consumers-cancelled",
        phases=PhaseRecorder(on_enter),
        cancel=cancel,
    )
    wl = KafkaIngestWorkload(_config(duration=Duration(30)))
    timer = threading.Thread(target=lambda: in_measure.wait(120) and cancel.set(), daemon=True)
    timer.start()
    with ProcessWatch(wl) as watch:
        try:
            wl.prepare(ctx)
            with pytest.raises(KeyboardInterrupt):
                wl.execute(ctx)
            # Let the watcher see the probe's measured round too.
            time.sleep(0.3)
        finally:
            wl.clean(ctx)
    assert {"consumer-0", "consumer-1"} <= watch.names
    assert not watch.alive()
    assert wl.processes() == {}


# -- the tool's command line and output (no broker) ----------------------------------------


@attrs.frozen
class _Dist:
    version: str

    def java_command(self, main_class: str, args: list[str], **_kw: Any) -> list[str]:
        return ["java", main_class, *args]


def test_consumer_command_by_version(tmp_path: Path) -> None:
    """Kafka ≥ 4.2 gets --num-records and --command-property; older ones --messages and a properties file."""
    kw: dict[str, Any] = {
        "bootstrap_servers": "h:9092",
        "topic": "t",
        "group": "g",
        "timeout_ms": 90_000,
        "consumer_props": {"auto.commit.interval.ms": "100"},
        "name": "consumer-0",
    }
    modern = consumer_perf_command(_Dist("4.3.1"), **kw)  # type: ignore[arg-type]
    assert modern[modern.index("--num-records") + 1] == str(UNBOUNDED_RECORDS)
    # One flag per property: the tool's option parser takes a single value per flag.
    props = [modern[i + 1] for i, a in enumerate(modern) if a == "--command-property"]
    assert props == ["client.id=consumer-0", "auto.commit.interval.ms=100"]
    for flag in ("--show-detailed-stats", "--from-latest"):
        assert flag in modern
    assert modern[modern.index("--group") + 1] == "g"
    assert modern[modern.index("--timeout") + 1] == "90000"

    with pytest.raises(ProducerPerfError, match="props_file"):
        consumer_perf_command(_Dist("4.1.0"), **kw)  # type: ignore[arg-type]
    old = consumer_perf_command(_Dist("4.1.0"), props_file=tmp_path / "c.properties", **kw)  # type: ignore[arg-type]
    assert "--messages" in old and "--command-property" not in old
    assert (tmp_path / "c.properties").read_text() == (
        "client.id=consumer-0\nauto.commit.interval.ms=100\n"
    )


def test_consumer_progress_lines_are_parsed() -> None:
    """Detailed-stats lines give absolute times and cumulative records; the timeout warning is seen."""
    text = (
        "time, threadId, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, "
        "rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec\n"
        "2026-11-23T18:55:34.985Z, 0, 0.0010, 0.0002, 1, 0.2124, 4152, 556, 0.0018, 1.7986\n"
        "2026-11-23T18:55:35.986+00:00, 0, 1.4805, 1.4780, 1516, 1513.4865, 0, 1001, 1.4780, 1513.4865\n"
        "WARNING: Exiting before consuming the expected number of records: timeout (10000 ms) exceeded.\n"
    )
    out = parse_consumer_output(text)
    assert [p.records for p in out.progress] == [1, 1516]
    assert out.progress[1].timestamp - out.progress[0].timestamp == pytest.approx(1.001)
    assert out.progress[0].rebalance_ms == 4152
    assert out.records == 1516 and out.timed_out
    assert parse_consumer_output("").records == 0


def test_consumers_are_accepted_and_negative_consumers_rejected() -> None:
    """validate() accepts consumers > 0; a negative count fails at config time naming the key."""

    class _Svc:
        brokers = 1

    assert KafkaIngestWorkload(_config(consumers=3)).validate({"kafka": _Svc()}) is None
    with pytest.raises(ValueError, match="consumers: expected an integer ≥ 0"):
        _config(consumers=-1)
