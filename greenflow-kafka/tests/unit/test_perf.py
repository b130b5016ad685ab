"""Parsing ProducerPerformance output and building its command line."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from greenflow_kafka.distribution import KafkaDistribution
from greenflow_kafka.errors import ProducerPerfError
from greenflow_kafka.perf import (
    END_TO_END_LATENCY_MAIN,
    PRODUCER_PERFORMANCE_MAIN,
    EndToEndLatencyStats,
    ProducerStats,
    end_to_end_latency_command,
    last_second_rates,
    parse_end_to_end_latency_output,
    parse_producer_output,
    producer_perf_command,
    producers_settled,
    records_for,
)

# Verbatim output of kafka-tools 4.3.1 (2000 msg/s, 1 s warm-up, 5 s, 100 B records),
# with a failed send's stack trace and a log4j warning mixed in as they can be.
SAMPLE = """\
Warmup first 2000 records. Steady state results will print after the complete test summary.
In steady state.
1986 records sent, 1984.0 records/sec (0.19 MB/sec), 6.7 ms avg latency, 16.0 ms max latency.
2006 records sent, 2004.0 records/sec (0.19 MB/sec), 5.0 ms avg latency, 16.0 ms max latency.
org.apache.kafka.common.errors.TimeoutException: Expiring 3 record(s) for t1-0:120001 ms has passed since batch creation
\tat org.apache.kafka.clients.producer.internals.Sender.sendProducerData(Sender.java:419)
[2026-11-23 18:31:26,670] WARN [Producer clientId=perf-producer-client] Got error produce response (org.apache.kafka.clients.producer.internals.Sender)
2007 records sent, 2003.0 records/sec (0.19 MB/sec), 6.0 ms avg latency, 18.0 ms max latency.
12000 records sent, 1994.349344 records/sec (0.19 MB/sec), 16.43 ms avg latency, 485.00 ms max latency, 6 ms 50th, 156 ms 95th, 163 ms 99th, 168 ms 99.9th.
10000 steady state records sent, 1991.635132 records/sec (0.19 MB/sec), 5.41 ms avg latency, 18.00 ms max latency, 5 ms 50th, 10 ms 95th, 13 ms 99th, 16 ms 99.9th.
"""


def _dist(version: str) -> KafkaDistribution:
    return KafkaDistribution(
        version=version,
        classpath=["/opt/kafka/libs/*"],
        java=Path("/usr/bin/java"),
        java_version="17.0.15",
        source="KAFKA_HOME",
        home=Path("/opt/kafka"),
        libs_dir=Path("/opt/kafka/libs"),
    )


def test_parser_reads_windows_total_and_steady_state() -> None:
    """Periodic lines become windows and the two summary lines become total and steady-state stats."""
    out = parse_producer_output(SAMPLE)
    assert [w.records for w in out.windows] == [1986, 2006, 2007]
    assert out.windows[0].records_per_s == 1984.0
    assert out.windows[2].max_latency_ms == 18.0
    assert out.window_records == 1986 + 2006 + 2007
    assert out.total == ProducerStats(
        records=12000,
        records_per_s=1994.349344,
        mib_per_s=0.19,
        avg_latency_ms=16.43,
        max_latency_ms=485.0,
        p50_ms=6,
        p95_ms=156,
        p99_ms=163,
        p999_ms=168,
        steady_state=False,
    )
    assert out.steady is not None and out.steady.steady_state
    assert out.steady.records == 10000
    assert out.steady.latency_ms() == {
        "avg": 5.41,
        "p50": 5,
        "p95": 10,
        "p99": 13,
        "p999": 16,
        "max": 18.0,
    }


def test_parser_collects_send_errors_but_not_log_lines() -> None:
    """Stack-trace heads of failed sends are reported; log lines and 'at' frames are not."""
    out = parse_producer_output(SAMPLE)
    assert out.errors == (
        "org.apache.kafka.common.errors.TimeoutException: Expiring 3 record(s) for t1-0:120001 ms has passed since batch creation",
    )


def test_parser_without_warmup_and_with_java_special_numbers() -> None:
    """A run without warm-up has no steady-state line; NaN/Infinity as Java prints them parse."""
    text = (
        "5 records sent, Infinity records/sec (0.00 MB/sec), 1.0 ms avg latency, 2.0 ms max latency.\n"
        "0 records sent, 0.000000 records/sec (0.00 MB/sec), NaN ms avg latency, 0.00 ms max latency, 0 ms 50th, 0 ms 95th, 0 ms 99th, 0 ms 99.9th.\n"
    )
    out = parse_producer_output(text)
    assert math.isinf(out.windows[0].records_per_s)
    assert out.total is not None and math.isnan(out.total.avg_latency_ms)
    assert out.steady is None


def test_parser_ignores_garbage() -> None:
    """Text that is not the tool's report gives an empty result rather than an exception."""
    out = parse_producer_output("hello\n12 records sent\nException in thread main\n")
    assert out.windows == () and out.total is None and out.steady is None


def test_settled_means_every_producer_reported_and_none_is_catching_up() -> None:
    """MEASURE may start once each producer's last second is at most 15 % above its rate;
    a producer still catching up after a slow start, or one that has not reported, holds it."""
    catching_up = parse_producer_output(
        "2990 records sent, 2990.0 records/sec (0.29 MB/sec), 9.0 ms avg latency, 30.0 ms max latency.\n"
        "1700 records sent, 1700.0 records/sec (0.17 MB/sec), 4.0 ms avg latency, 12.0 ms max latency.\n"
    )
    on_rate = parse_producer_output(SAMPLE)
    silent = parse_producer_output("")
    assert last_second_rates([catching_up, on_rate, silent]) == [1700.0, 2003.0, None]
    assert producers_settled(last_second_rates([on_rate]), 2000)
    assert producers_settled([2299.0], 2000)  # inside the 15 % margin
    assert not producers_settled([2301.0], 2000)
    assert not producers_settled(last_second_rates([catching_up]), 1000)
    assert not producers_settled(last_second_rates([on_rate, silent]), 2000)
    assert not producers_settled([], 2000)


def test_records_for_rate_and_time() -> None:
    """A throttled run of rate × seconds records; a non-positive rate cannot be timed."""
    assert records_for(2000, 5) == 10000
    assert records_for(0.5, 1) == 1
    with pytest.raises(ProducerPerfError, match="positive finite rate"):
        records_for(-1, 10)


def test_command_uses_modern_flags_from_kafka_4_2() -> None:
    """Kafka >= 4.2 gets --bootstrap-server, --command-property, warm-up and reporting interval."""
    cmd = producer_perf_command(
        _dist("4.3.1"),
        bootstrap_servers="127.0.0.1:9092",
        topic="t",
        num_records=12000,
        record_size=100,
        throughput=2000,
        producer_props={"linger.ms": "5"},
        warmup_records=2000,
        heap="256m",
    )
    assert cmd[0] == "/usr/bin/java"
    main = cmd.index(PRODUCER_PERFORMANCE_MAIN)
    assert cmd[main - 2 : main] == ["-cp", "/opt/kafka/libs/*"]
    args = cmd[main + 1 :]
    assert args[args.index("--num-records") + 1] == "12000"
    assert args[args.index("--throughput") + 1] == "2000"
    assert args[args.index("--bootstrap-server") + 1] == "127.0.0.1:9092"
    props = args[args.index("--command-property") + 1 : args.index("--reporting-interval")]
    assert props == ["acks=all", "linger.ms=5"]
    assert args[args.index("--warmup-records") + 1] == "2000"
    assert "-Xmx256m" in cmd and "-Dgreenflow.kafka.process=producer-perf" in cmd
    assert "-Duser.language=en" in cmd  # Java must print "1.5", not "1,5"


def test_command_falls_back_to_producer_props_before_4_2() -> None:
    """Kafka 4.0/4.1 only know --producer-props (with bootstrap.servers) and have no warm-up."""
    cmd = producer_perf_command(
        _dist("4.1.0"),
        bootstrap_servers="h:1",
        topic="t",
        num_records=10,
        record_size=1,
        throughput=-1,
    )
    args = cmd[cmd.index(PRODUCER_PERFORMANCE_MAIN) + 1 :]
    assert args[args.index("--throughput") + 1] == "-1"
    assert "--bootstrap-server" not in args and "--command-property" not in args
    assert args[args.index("--producer-props") + 1 :] == ["bootstrap.servers=h:1", "acks=all"]
    with pytest.raises(ProducerPerfError, match=r"needs Kafka >= 4\.2"):
        producer_perf_command(
            _dist("4.1.0"),
            bootstrap_servers="h:1",
            topic="t",
            num_records=10,
            record_size=1,
            throughput=1,
            warmup_records=5,
        )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"producer_props": {"sasl.jaas.config": "a=b"}}, "contain '='"),
        ({"num_records": 0}, "must be >= 1"),
        ({"warmup_records": 10}, "warmup_records must be in"),
    ],
)
def test_command_rejects_what_the_tool_would_misread(kwargs: dict[str, object], match: str) -> None:
    """Values the tool's KEY=VALUE splitting or its own checks would reject fail early and say why."""
    base: dict[str, object] = {
        "bootstrap_servers": "h:1",
        "topic": "t",
        "num_records": 10,
        "record_size": 1,
        "throughput": 1.0,
    }
    base.update(kwargs)
    with pytest.raises(ProducerPerfError, match=match):
        producer_perf_command(_dist("4.3.1"), **base)  # type: ignore[arg-type]  # parametrized kwargs


def test_end_to_end_latency_output_is_parsed() -> None:
    """The probe's average and percentile lines become stats; without them there is no result."""
    text = (
        "WARNING: something\n0\t38.512\nAvg latency: 1.2345 ms\n"
        "Percentiles: 50th = 1, 99th = 3, 99.9th = 38\n"
    )
    assert parse_end_to_end_latency_output(text, 300) == EndToEndLatencyStats(
        records=300, avg_ms=1.2345, p50_ms=1, p99_ms=3, p999_ms=38
    )
    assert parse_end_to_end_latency_output("0\t38.5\n", 300) is None


def test_end_to_end_latency_command_by_version() -> None:
    """Kafka >= 4.2 gets named options, older versions the positional form; acks is 1 or all."""
    modern = end_to_end_latency_command(
        _dist("4.3.1"), bootstrap_servers="h:1", topic="t", num_records=5, record_size=10
    )
    args = modern[modern.index(END_TO_END_LATENCY_MAIN) + 1 :]
    assert args[args.index("--producer-acks") + 1] == "all"
    assert args[args.index("--num-records") + 1] == "5"
    old = end_to_end_latency_command(
        _dist("4.0.0"), bootstrap_servers="h:1", topic="t", num_records=5, record_size=10, acks="1"
    )
    assert old[old.index(END_TO_END_LATENCY_MAIN) + 1 :] == ["h:1", "t", "5", "1", "10"]
    with pytest.raises(ProducerPerfError, match="acks '1' or 'all'"):
        end_to_end_latency_command(
            _dist("4.3.1"), bootstrap_servers="h", topic="t", num_records=1, record_size=1, acks="0"
        )
