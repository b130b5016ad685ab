"""The load generator's output, cut at MEASURE's boundaries, its histogram, its command
line, and where its jar comes from."""

from __future__ import annotations

import math
import random
from pathlib import Path

import pytest

from greenflow_kafka.distribution import KafkaDistribution
from greenflow_kafka.errors import KafkaSetupError, ProducerPerfError
from greenflow_kafka.generator import (
    GENERATOR_JAR,
    GENERATOR_MAIN,
    Histogram,
    bucket_bounds,
    bucket_of,
    generator_args,
    generator_command,
    parse_generator_output,
    resolve_generator,
    source_digest,
    trend,
    window,
)
from greenflow_kafka.ingest.metrics import LAG_TREND, SCHEDULE_LAG_TREND

# The shape the generator prints (a run at 2000 msg/s, 500 ms reports), with a send error's
# stack trace and a log line mixed in as they can be.
SAMPLE = """\
greenflow-generator-start t=100.000000 rate=2000.000000 size=100 slots=8000 max_lateness_ms=10
greenflow-generator t=100.500000 sent=1000 acked=990 errors=0 missed=0 behind_ms=0.000 inflight=10 n=990 sum_us=1980000 max_us=9000 h=10:90,100:800,150:100
greenflow-generator t=101.000000 sent=1000 acked=1000 errors=0 missed=0 behind_ms=0.100 inflight=10 n=1000 sum_us=2000000 max_us=3000 h=100:1000
org.apache.kafka.common.errors.TimeoutException: Expiring 3 record(s) for t1-0:120001 ms has passed
\tat org.apache.kafka.clients.producer.internals.Sender.sendProducerData(Sender.java:419)
[2026-11-23 18:31:26,670] WARN [Producer clientId=producer-1] Got error produce response
greenflow-generator t=101.500000 sent=900 acked=880 errors=1 missed=100 behind_ms=50.000 inflight=29 n=980 sum_us=9800000 max_us=40000 h=100:880,250:100
greenflow-generator t=102.000000 sent=800 acked=800 errors=0 missed=200 behind_ms=150.000 inflight=29 n=1000 sum_us=20000000 max_us=90000 h=100:800,300:200
greenflow-generator-end t=102.100000 sent=3700 acked=3670 errors=1 missed=300
"""


def java_bucket(us: int) -> int:
    """ScheduledProducer.bucket(), transcribed from the Java."""
    if us < 64:
        return max(0, us)
    msb = us.bit_length() - 1
    shift = msb - 5
    return 64 + (msb - 6) * 32 + ((us >> shift) & 31)


def _dist() -> KafkaDistribution:
    return KafkaDistribution(
        version="4.3.1",
        classpath=["/opt/kafka/libs/*"],
        java=Path("/usr/bin/java"),
        java_version="17.0.15",
        source="KAFKA_HOME",
        home=Path("/opt/kafka"),
        libs_dir=Path("/opt/kafka/libs"),
    )


def test_buckets_invert_the_generators_and_keep_3_percent() -> None:
    """Every value lies in the bucket the reader says it does, and a bucket spans at most
    1/32 of its lower bound (exactly one value below 64 µs)."""
    rng = random.Random(1)
    values = [*range(200), *(rng.randrange(1, 10**11) for _ in range(5000)), 2**40, 2**40 - 1]
    for us in values:
        assert bucket_of(us) == java_bucket(us)
        low, high = bucket_bounds(java_bucket(us))
        assert low <= us < high
        assert high - low == 1 if us < 64 else (high - low) / low <= 1 / 32


def test_output_is_parsed_line_by_line() -> None:
    """Start, intervals and totals are read; error traces are kept; other lines are ignored."""
    out = parse_generator_output(SAMPLE)
    assert out.started == 100.0 and out.rate == 2000.0
    assert [i.sent for i in out.intervals] == [1000, 1000, 900, 800]
    assert out.intervals[2].missed == 100 and out.intervals[2].behind_ms == 50.0
    assert out.intervals[0].latency.counts == {10: 90, 100: 800, 150: 100}
    assert out.end is not None and (out.end.sent, out.end.acked, out.end.missed) == (
        3700,
        3670,
        300,
    )
    assert out.errors == (
        "org.apache.kafka.common.errors.TimeoutException: Expiring 3 record(s) for t1-0:120001 ms has passed",
    )
    assert out.last_rate() == pytest.approx(1600)
    assert parse_generator_output("").last_rate() is None


def test_histogram_percentiles_merge_exactly() -> None:
    """Merged histograms hold every count; a percentile is its bucket's middle, capped at
    the maximum; an empty one has none."""
    a = Histogram({100: 98, 2000: 2}, n=100, sum_us=13800, max_us=2030)
    b = Histogram({100: 100}, n=100, sum_us=10000, max_us=100)
    m = Histogram.merge([a, b])
    assert m.n == 200 and m.counts == {100: 198, 2000: 2} and m.max_us == 2030
    low, high = bucket_bounds(100)  # 144-148 µs
    assert m.percentile_ms(0.5) == pytest.approx((low + high) / 2 / 1000)
    assert Histogram({63: 1}, n=1, sum_us=63, max_us=63).percentile_ms(0.5) == 0.063
    low, high = bucket_bounds(2000)
    assert m.percentile_ms(1.0) == pytest.approx(min((low + high) / 2, 2030) / 1000)
    lat = m.latency_ms()
    assert lat["avg"] == pytest.approx(23800 / 200 / 1000) and lat["max"] == 2.03
    assert set(lat) == {"avg", "max", "p50", "p95", "p99", "p999"}
    assert Histogram().latency_ms() == {} and Histogram().percentile_ms(0.99) is None


def test_window_takes_the_intervals_whose_middle_is_inside() -> None:
    """MEASURE [100.6, 102.0] holds the intervals ending at 101.0 (middle 100.75), 101.5 and
    102.0, not the one ending at 100.5; counts and histograms add up over them."""
    out = parse_generator_output(SAMPLE)
    w = window([out], 100.6, 102.0)
    assert w.intervals == 3 and w.seconds == pytest.approx(1.5)
    assert (w.sent, w.acked, w.errors, w.missed) == (2700, 2680, 1, 300)
    assert w.latency.n == 2980 and w.missed_ratio == pytest.approx(300 / 3000)
    assert w.inflight_max == 29
    # Time behind schedule: 0.1 ms, 50 ms, 150 ms at 101, 101.5, 102 s.
    assert w.schedule_lag_trend == pytest.approx(trend([(101, 0.0001), (101.5, 0.05), (102, 0.15)]))
    assert w.schedule_lag_growth_s == pytest.approx(0.1499)
    assert w.schedule_lag_max_s == pytest.approx(0.15)


def test_window_over_producers_takes_the_worst_schedule() -> None:
    """Counts add up over producers; the schedule figures are the worst producer's."""
    on_time = SAMPLE.replace("behind_ms=50.000", "behind_ms=0.1").replace(
        "behind_ms=150.000", "behind_ms=0.1"
    )
    w = window([parse_generator_output(on_time), parse_generator_output(SAMPLE)], 100.6, 102.0)
    assert w.sent == 5400 and w.intervals == 6 and w.seconds == pytest.approx(1.5)
    assert w.schedule_lag_trend == pytest.approx(
        window([parse_generator_output(SAMPLE)], 100.6, 102).schedule_lag_trend
    )
    assert window([], 0, 1).schedule_lag_trend is None


def test_trend_is_a_least_squares_slope() -> None:
    """The slope of a line is found exactly; fewer than two times give none."""
    assert trend([(0, 1), (1, 3), (2, 5)]) == pytest.approx(2)
    assert trend([(0, 1), (1, 1.5), (2, 1), (3, 1.5)]) == pytest.approx(0.1)
    assert trend([(5, 1)]) is None and trend([(5, 1), (5, 2)]) is None


def test_criterion_metric_names_are_the_cores() -> None:
    """kafka-ingest stores its trends under the names greenflow's criterion reads."""
    from greenflow.builtin import protocols

    assert SCHEDULE_LAG_TREND == protocols.SCHEDULE_LAG_TREND
    assert LAG_TREND == protocols.LAG_TREND


def test_arguments_and_command() -> None:
    """The schedule, its ramp, the producer settings (which win over acks) and the reports
    reach the generator; the jar joins the distribution's class path."""
    args = generator_args(
        bootstrap_servers="h:1",
        topic="t",
        rate=2500,
        record_size=100,
        seconds=12.5,
        ramp_seconds=1.5,
        acks="1",
        producer_props={"acks": "all", "linger.ms": "5"},
    )
    assert args[args.index("--rate") + 1] == "2500.000000"
    assert args[args.index("--seconds") + 1] == "12.5"
    assert args[args.index("--ramp-seconds") + 1] == "1.5"
    props = [args[i + 1] for i, a in enumerate(args) if a == "--producer-prop"]
    assert props == ["acks=all", "linger.ms=5"]
    cmd = generator_command(_dist(), Path("/cache/g.jar"), args, heap="256m", name="producer-1")
    main = cmd.index(GENERATOR_MAIN)
    assert cmd[main - 2 : main] == ["-cp", "/opt/kafka/libs/*:/cache/g.jar"]
    assert "-Xmx256m" in cmd and "-Dgreenflow.kafka.process=producer-1" in cmd
    assert "-Duser.language=en" in cmd and cmd[main + 1 :] == args
    fast = generator_args(
        bootstrap_servers="h:1", topic="t", rate=-1, record_size=10, num_records=5
    )
    assert fast[fast.index("--rate") + 1] == "-1" and "--ramp-seconds" not in fast


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"record_size": 0}, "record_size"),
        ({"seconds": 0}, "seconds > 0"),
        ({"rate": math.inf}, "finite rate"),
        ({"rate": -1, "seconds": 1}, "num_records"),
    ],
)
def test_arguments_that_cannot_run_fail_early(kwargs: dict[str, object], match: str) -> None:
    """A schedule without a length, an infinite rate or an empty record is refused."""
    base: dict[str, object] = {
        "bootstrap_servers": "h:1",
        "topic": "t",
        "rate": 10.0,
        "record_size": 1,
        "seconds": 1.0,
    }
    base.update(kwargs)
    with pytest.raises(ProducerPerfError, match=match):
        generator_args(**base)  # type: ignore[arg-type]  # parametrized kwargs


def test_a_built_jar_is_taken_from_the_cache(tmp_path: Path) -> None:
    """The jar of this source's digest is used as it is: no Maven needed."""
    jar = tmp_path / source_digest() / GENERATOR_JAR
    jar.parent.mkdir(parents=True)
    jar.write_bytes(b"PK")
    assert resolve_generator(cache_dir=tmp_path, env={"PATH": ""}) == jar


def test_building_without_maven_says_what_to_install(tmp_path: Path) -> None:
    """No jar for this source and no mvn: the error names Maven and a JDK."""
    with pytest.raises(KafkaSetupError, match=r"(?s)Maven.*JDK"):
        resolve_generator(cache_dir=tmp_path, env={"PATH": str(tmp_path)})
