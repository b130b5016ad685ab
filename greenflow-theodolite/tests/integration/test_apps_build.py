"""Theodolite's use cases and load generator, built with Maven, against a real local broker
and the schema-registry stand-in: the generator's records decode as Confluent's wire format,
UC1 consumes everything, UC2 and UC3 write exactly the expected statistics per window, and
UC4 sums through a two-level hierarchy (root → groups → sensors) via its feedback topic.
Also the two Java parts GreenFlow runs on Kubernetes besides them: the registry stand-in of
the test images (``REGISTRY_MAIN``, checked with confluent-kafka's own client) and the run's
topic and offset tool (``TOPICS_MAIN``, a Job of the Kafka tools image on a cluster).

Every JVM runs with a small heap (256 MiB) so that the broker and one application fit a
2-core machine; inputs are tiny and deterministic (event times are chosen, not the clock's).
"""

from __future__ import annotations

import io
import itertools
import json
import os
import re
import signal
import statistics
import struct
import subprocess
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import fastavro
import pytest
from confluent_kafka import (
    Consumer,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from greenflow_kafka import (
    KafkaDistribution,
    KafkaSetupError,
    committed_offsets,
    resolve_distribution,
)
from greenflow_kafka.admin import AdminSession, create_topic, partition_end_offsets
from greenflow_kafka.cluster import LocalKafkaCluster
from greenflow_theodolite.apps import (
    FLINK_MAIN,
    GENERATOR_MAIN,
    REGISTRY_MAIN,
    TOPICS_MAIN,
    UC_MAIN,
    AppsBuild,
    app_command,
    resolve_apps,
)
from greenflow_theodolite.registry import SchemaRegistry

pytestmark = pytest.mark.slow

HEAP = "256m"
START_TIMEOUT_S = 120.0
#: ActivePowerRecord's Avro schema as the Java side registers it (Schemas.java).
ACTIVE_POWER_RECORD: dict[str, Any] = {
    "type": "record",
    "name": "ActivePowerRecord",
    "namespace": "titan.ccp.model.records",
    "fields": [
        {"name": "identifier", "type": "string"},
        {"name": "timestamp", "type": "long"},
        {"name": "valueInW", "type": "double"},
    ],
}
PARSED = fastavro.parse_schema(ACTIVE_POWER_RECORD)
#: A UTC midnight (2023-11-14T00:00:00Z), a multiple of every window below.
DAY = 1_699_920_000_000
HOUR = 3_600_000
#: librdkafka's partitioner compatible with Java's default (murmur2): UC4 joins the input
#: with a table that Kafka Streams partitions, so sensors must land where it expects them.
JAVA_PARTITIONER = "murmur2_random"


# -- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def distribution() -> KafkaDistribution:
    try:
        return resolve_distribution()
    except KafkaSetupError as exc:
        if os.environ.get("GREENFLOW_REQUIRE_KAFKA") == "1":
            raise
        pytest.skip(f"no runnable Kafka here: {exc}")


def _resolved(engine: str) -> AppsBuild:
    """The engine's build, made with mvn the first time; skips with the reason when this
    machine cannot build it (no mvn, JDK or Maven Central). Fails instead under
    GREENFLOW_REQUIRE_KAFKA=1; under CI=true the noxfile fails the session on such a skip."""
    t0 = time.monotonic()
    try:
        built = resolve_apps(engine=engine)
    except KafkaSetupError as exc:
        if os.environ.get("GREENFLOW_REQUIRE_KAFKA") == "1":
            raise
        pytest.skip(f"Theodolite's {engine} apps cannot be built here: {exc}")
    print(f"{engine} apps resolved in {time.monotonic() - t0:.1f}s: {built.jar}")
    return built


@pytest.fixture(scope="module")
def build() -> AppsBuild:
    """The Kafka Streams apps (and the generator, registry and topics tool)."""
    return _resolved("kstreams")


@pytest.fixture(scope="module")
def broker(
    distribution: KafkaDistribution, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    root = tmp_path_factory.mktemp("theodolite-broker")
    cluster = LocalKafkaCluster(distribution, root / "work", root / "logs", brokers=1, heap="384m")
    try:
        cluster.start()
        cluster.wait_ready(120)
        yield cluster.bootstrap_servers
    finally:
        cluster.stop()


@pytest.fixture(scope="module")
def registry() -> Iterator[str]:
    with SchemaRegistry() as reg:
        yield reg.url


# -- helpers -------------------------------------------------------------------------------------


class Jvm:
    """One of the apps' JVMs, its stdout and stderr in a file."""

    def __init__(self, name: str, cmd: Sequence[str], env: dict[str, str], logs: Path) -> None:
        logs.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.log = logs / f"{name}.log"
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                list(cmd),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **env},
                start_new_session=True,
            )

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def lines(self, prefix: str) -> list[str]:
        return [line for line in self.text().splitlines() if line.startswith(prefix)]

    def tail(self, n: int = 40) -> str:
        return "\n".join(self.text().splitlines()[-n:])

    def wait_line(self, prefix: str, timeout_s: float = START_TIMEOUT_S) -> str:
        deadline = time.monotonic() + timeout_s
        while True:
            found = self.lines(prefix)
            if found:
                return found[0]
            if self.proc.poll() is not None:
                pytest.fail(
                    f"{self.name} exited ({self.proc.returncode}) before {prefix!r}:\n{self.tail()}"
                )
            if time.monotonic() > deadline:
                pytest.fail(f"{self.name} printed no {prefix!r} in {timeout_s:g}s:\n{self.tail()}")
            time.sleep(0.1)

    def stop(self, timeout_s: float = 45.0) -> int:
        """SIGTERM, then its exit status (SIGKILL and fail at the deadline)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"{self.name} did not stop {timeout_s:g}s after SIGTERM:\n{self.tail()}")

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)


@contextmanager
def running(
    distribution: KafkaDistribution,
    build: AppsBuild,
    main: str,
    env: dict[str, str],
    logs: Path,
    name: str,
) -> Iterator[Jvm]:
    cmd = app_command(distribution, build, main, heap=HEAP, name=name)
    jvm = Jvm(name, cmd, env, logs)
    try:
        yield jvm
    finally:
        jvm.kill()


def new_topic(bootstrap: str, topic: str, partitions: int) -> None:
    """A topic that keeps everything: the inputs' event times lie years back, and the broker's
    time-based retention (7 days, checked first 30 s after it starts) would delete them."""
    create_topic(bootstrap, topic, partitions=partitions, config={"retention.ms": "-1"})


def register(registry: str, subject: str) -> int:
    body = json.dumps({"schema": json.dumps(ACTIVE_POWER_RECORD)}).encode()
    req = urllib.request.Request(
        f"{registry}/subjects/{subject}/versions",
        data=body,
        headers={"Content-Type": "application/vnd.schemaregistry.v1+json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        return int(json.load(resp)["id"])


def registered_schema(registry: str, schema_id: int) -> dict[str, Any]:
    with urllib.request.urlopen(f"{registry}/schemas/ids/{schema_id}", timeout=10) as resp:
        schema: dict[str, Any] = json.loads(json.load(resp)["schema"])
    return schema


def encode(schema_id: int, identifier: str, timestamp: int, value: float) -> bytes:
    buf = io.BytesIO()
    buf.write(b"\x00" + schema_id.to_bytes(4, "big"))
    record = {"identifier": identifier, "timestamp": timestamp, "valueInW": value}
    fastavro.schemaless_writer(buf, PARSED, record)
    return buf.getvalue()


def decode(data: bytes, schema: Any = PARSED) -> dict[str, Any]:
    assert data[0] == 0, "no magic byte"
    record: dict[str, Any] = fastavro.schemaless_reader(io.BytesIO(data[5:]), schema, None)
    return record


def produce(
    bootstrap: str,
    topic: str,
    records: Sequence[tuple[bytes | None, bytes, int | None]],
) -> None:
    """Write (key, value, timestamp) in order (idempotent: retries keep the order)."""
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "enable.idempotence": True,
            "linger.ms": 5,
            "partitioner": JAVA_PARTITIONER,
        }
    )
    for key, value, ts in records:
        if ts is None:
            producer.produce(topic, key=key, value=value)
        else:
            producer.produce(topic, key=key, value=value, timestamp=ts)
    assert producer.flush(30) == 0


def produce_power(
    bootstrap: str, topic: str, schema_id: int, records: Sequence[tuple[str, int, float]]
) -> None:
    produce(bootstrap, topic, [(i.encode(), encode(schema_id, i, t, v), t) for i, t, v in records])


def read_all(
    bootstrap: str,
    topic: str,
    done: Callable[[list[Message]], bool],
    timeout_s: float = 60.0,
) -> list[Message]:
    """Every message of ``topic`` from the start until ``done(messages)`` (or the deadline)."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"test-{uuid.uuid4()}",
            "enable.auto.commit": False,
        }
    )
    try:
        meta = consumer.list_topics(topic, timeout=10).topics[topic]
        consumer.assign([TopicPartition(topic, p, 0) for p in meta.partitions])
        got: list[Message] = []
        deadline = time.monotonic() + timeout_s
        while not done(got) and time.monotonic() < deadline:
            for msg in consumer.consume(500, timeout=0.5):
                assert msg.error() is None, msg.error()
                got.append(msg)
        return got
    finally:
        consumer.close()


def read_topic(bootstrap: str, topic: str) -> list[Message]:
    """Every message ``topic`` holds now."""
    total = sum(partition_end_offsets(bootstrap, topic).values())
    got = read_all(bootstrap, topic, lambda got: len(got) >= total)
    assert len(got) == total
    return got


def committed(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    # Not the admin client's ListConsumerGroupOffsets: see greenflow_kafka.committed_offsets.
    return committed_offsets(bootstrap, group, topic, timeout_s=20.0)


def wait_committed(bootstrap: str, group: str, topic: str, jvm: Jvm, timeout_s: float = 90) -> None:
    """Until ``group``'s commits on ``topic`` reach its end offsets."""
    ends = partition_end_offsets(bootstrap, topic)
    deadline = time.monotonic() + timeout_s
    while (got := committed(bootstrap, group, topic)) != ends:
        if jvm.proc.poll() is not None:
            pytest.fail(f"{jvm.name} exited ({jvm.proc.returncode}):\n{jvm.tail()}")
        if time.monotonic() > deadline:
            pytest.fail(f"commits {got} never reached the end offsets {ends}:\n{jvm.tail()}")
        time.sleep(0.5)


def latest_json(messages: Sequence[Message], *fields: str) -> dict[tuple[Any, ...], dict[str, Any]]:
    """The last JSON value per the given fields (an update stream's final values)."""
    out: dict[tuple[Any, ...], dict[str, Any]] = {}
    for msg in messages:
        value = json.loads(msg.value())
        out[tuple(value[f] for f in fields)] = value
    return out


def wait_for_output(
    bootstrap: str,
    topic: str,
    fields: Sequence[str],
    expected: dict[tuple[Any, ...], dict[str, Any]],
    jvm: Jvm,
    timeout_s: float = 90.0,
) -> dict[tuple[Any, ...], dict[str, Any]]:
    """Read ``topic`` until the last value of every expected key matches on the expected
    fields (or the deadline); returns the last values."""

    def matches(messages: list[Message]) -> bool:
        if jvm.proc.poll() is not None:
            return True
        latest = latest_json(messages, *fields)
        return all(
            key in latest and all(_close(latest[key][f], v) for f, v in want.items())
            for key, want in expected.items()
        )

    messages = read_all(bootstrap, topic, matches, timeout_s)
    assert jvm.proc.poll() is None, f"{jvm.name} exited:\n{jvm.tail()}"
    latest = latest_json(messages, *fields)
    wrong = {
        key: (latest.get(key), want)
        for key, want in expected.items()
        if key not in latest or not all(_close(latest[key][f], v) for f, v in want.items())
    }
    assert not wrong, (
        f"after {timeout_s:g}s, {len(messages)} messages on {topic}; last values differing "
        f"from the expected ones (got, want): {wrong}\n{jvm.tail()}"
    )
    return latest


def _close(got: Any, want: Any) -> bool:
    if isinstance(want, float):
        return isinstance(got, int | float) and got == pytest.approx(want, rel=1e-9, abs=1e-12)
    return bool(got == want)


def stats(values: Sequence[float]) -> dict[str, Any]:
    return {
        "count": len(values),
        "mean": statistics.fmean(values),
        "populationVariance": statistics.pvariance(values),
        "min": min(values),
        "max": max(values),
    }


def app_env(broker: str, registry: str, uc: str, tmp: Path, **extra: str) -> dict[str, str]:
    return {
        "KAFKA_BOOTSTRAP_SERVERS": broker,
        "SCHEMA_REGISTRY_URL": registry,
        "APPLICATION_ID": f"theodolite-{uc}-test-{uuid.uuid4().hex[:8]}",
        "STATE_DIR": str(tmp / f"state-{uc}"),
        **extra,
    }


# -- the load generator ----------------------------------------------------------------------------


def test_generator_sends_wire_format_records_on_schedule(
    distribution: KafkaDistribution, build: AppsBuild, broker: str, registry: str, tmp_path: Path
) -> None:
    """20 sensors every 100 ms for ~5 s: ~1000 records, every one Confluent's wire format
    (magic byte, the registered schema's id, Avro binary that fastavro decodes with the
    registered schema), keyed by sensor, stamped with the record's time, about as many per
    sensor; one report per second and its totals on SIGTERM."""
    topic = "gen-input"
    new_topic(broker, topic, partitions=2)
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": broker,
        "SCHEMA_REGISTRY_URL": registry,
        "KAFKA_INPUT_TOPIC": topic,
        "NUM_SENSORS": "20",
        "PERIOD_MS": "100",
        "VALUE": "12.5",
        "THREADS": "2",
    }
    with running(distribution, build, GENERATOR_MAIN, env, tmp_path, "generator") as gen:
        start = gen.wait_line("greenflow-theodolite-generator-start ")
        time.sleep(5.0)
        stopped_at = time.time()
        assert gen.stop() == 0, gen.tail()
    fields = dict(kv.split("=", 1) for kv in start.split()[1:])
    schema_id, started_at = int(fields["schema_id"]), int(fields["t"]) / 1000
    assert (fields["sensors"], float(fields["rate"])) == ("20", 200.0)
    end = gen.lines("greenflow-theodolite-generator-end ")
    assert len(end) == 1, gen.tail()
    totals = dict(kv.split("=", 1) for kv in end[0].split()[1:])
    sent, errors = int(totals["sent"]), int(totals["errors"])
    assert errors == 0
    due = 200 * (stopped_at - started_at)
    print(f"generator: sent {sent} records in {stopped_at - started_at:.2f}s (due {due:.0f})")
    assert abs(sent - due) <= 0.1 * due + 25, (sent, due)
    reports = gen.lines("greenflow-theodolite-generator t=")
    assert len(reports) >= 4, gen.tail()
    parsed = [dict(kv.split("=", 1) for kv in line.split()[1:]) for line in reports]
    assert [int(p["sent"]) for p in parsed] == sorted(int(p["sent"]) for p in parsed)
    assert all(int(p["errors"]) == 0 and 0 <= int(p["behind_ms"]) < 3000 for p in parsed)

    assert sum(partition_end_offsets(broker, topic).values()) == sent
    messages = read_topic(broker, topic)
    schema = registered_schema(registry, schema_id)
    assert schema == ACTIVE_POWER_RECORD
    parsed_schema = fastavro.parse_schema(schema)
    per_sensor: Counter[str] = Counter()
    for msg in messages:
        value = msg.value()
        assert value[0] == 0 and int.from_bytes(value[1:5], "big") == schema_id
        record = decode(value, parsed_schema)
        assert msg.key() == record["identifier"].encode()
        assert msg.timestamp()[1] == record["timestamp"]
        assert started_at - 1 <= record["timestamp"] / 1000 <= stopped_at + 1
        assert record["valueInW"] == 12.5
        per_sensor[record["identifier"]] += 1
    assert set(per_sensor) == {f"s_{i}" for i in range(20)}
    assert max(per_sensor.values()) - min(per_sensor.values()) <= 2, per_sensor


def test_generator_splits_sensors_and_publishes_the_registry(
    distribution: KafkaDistribution, build: AppsBuild, broker: str, registry: str, tmp_path: Path
) -> None:
    """Instance 1 of 2 sends for the odd sensors only and, SEND_REGISTRY or not, never
    publishes the registry: instance 0 does, first, for all sensors (key the int 0), on the
    configuration topic (on Kubernetes every pod of the Job has the same environment)."""
    new_topic(broker, "split-input", partitions=1)
    new_topic(broker, "split-configuration", partitions=1)
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": broker,
        "SCHEMA_REGISTRY_URL": registry,
        "KAFKA_INPUT_TOPIC": "split-input",
        "KAFKA_CONFIGURATION_TOPIC": "split-configuration",
        "NUM_SENSORS": "4",
        "NUM_NESTED_GROUPS": "2",
        "SEND_REGISTRY": "true",
        "SLEEP_PERIOD_MS": "200",
        "PERIOD_MS": "50",
        "INSTANCES": "2",
        "INSTANCE_INDEX": "1",
    }
    with running(distribution, build, GENERATOR_MAIN, env, tmp_path, "generator") as gen:
        gen.wait_line("greenflow-theodolite-generator t=")
        assert gen.stop() == 0, gen.tail()
    assert read_all(broker, "split-configuration", lambda got: False, timeout_s=2.0) == []
    keys = {m.key() for m in read_topic(broker, "split-input")}
    assert keys == {b"s_1", b"s_3"}
    first = {**env, "INSTANCE_INDEX": "0", "KAFKA_INPUT_TOPIC": "split-input-0"}
    new_topic(broker, "split-input-0", partitions=1)
    with running(distribution, build, GENERATOR_MAIN, first, tmp_path, "generator-0") as gen:
        gen.wait_line("greenflow-theodolite-generator t=")
        assert gen.stop() == 0, gen.tail()
    (config,) = read_all(broker, "split-configuration", lambda got: len(got) >= 1)
    assert config.key() == struct.pack(">i", 0)
    assert json.loads(config.value()) == {
        "identifier": "root",
        "name": "root",
        "children": [
            {
                "identifier": "g_1_0",
                "name": "g_1_0",
                "children": [
                    {"identifier": "s_0", "name": "s_0"},
                    {"identifier": "s_1", "name": "s_1"},
                ],
            },
            {
                "identifier": "g_1_1",
                "name": "g_1_1",
                "children": [
                    {"identifier": "s_2", "name": "s_2"},
                    {"identifier": "s_3", "name": "s_3"},
                ],
            },
        ],
    }


# -- the use cases ---------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["stdout", "summary"])
def test_uc1_consumes_everything(
    distribution: KafkaDistribution,
    build: AppsBuild,
    broker: str,
    registry: str,
    tmp_path: Path,
    mode: str,
) -> None:
    """UC1 reads the whole input (its group's commits reach the end offsets) and writes each
    record as JSON (stdout) or counts them (summary); SIGTERM ends it with status 0."""
    topic = f"uc1-{mode}"
    new_topic(broker, topic, partitions=2)
    schema_id = register(registry, f"{topic}-value")
    records = [(f"s_{i % 7}", DAY + i * 10, i * 0.25) for i in range(300)]
    produce_power(broker, topic, schema_id, records)
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": broker,
        "SCHEMA_REGISTRY_URL": registry,
        "KAFKA_INPUT_TOPIC": topic,
        "APPLICATION_ID": f"theodolite-uc1-{mode}",
        "COMMIT_INTERVAL_MS": "500",
        "UC1_OUTPUT": mode,
        "UC1_SUMMARY_INTERVAL_MS": "500",
    }  # no STATE_DIR: a temporary one
    with running(distribution, build, UC_MAIN["uc1"], env, tmp_path, f"uc1-{mode}") as app:
        app.wait_line("greenflow-theodolite-app-started uc=1")
        wait_committed(broker, "theodolite-uc1-" + mode, topic, app)
        assert app.stop() == 0, app.tail()
    if mode == "stdout":
        written = [json.loads(line) for line in app.lines("{")]
        want = [{"identifier": i, "timestamp": t, "valueInW": v} for i, t, v in records]
        key = json.dumps
        assert sorted(map(key, written)) == sorted(map(key, want))
    else:
        last = app.lines("greenflow-theodolite-uc1 ")[-1]
        assert " records=300 " in last, app.tail()
    assert app.lines("greenflow-theodolite-app-stopped uc=1 status=0")


@pytest.fixture(scope="module")
def flink_build() -> AppsBuild:
    """The Flink job."""
    return _resolved("flink")


def test_uc1_on_flink_consumes_everything_and_commits(
    distribution: KafkaDistribution,
    flink_build: AppsBuild,
    broker: str,
    registry: str,
    tmp_path: Path,
) -> None:
    """UC1 on Flink (a MiniCluster, parallelism 2): every record of both partitions
    written (counted) once, its group's commits — made at each checkpoint — reach the end
    offsets, and SIGTERM cancels the job with status 0. Flink's own class path: no Kafka
    distribution jar on it."""
    topic = "uc1-flink"
    new_topic(broker, topic, partitions=2)
    schema_id = register(registry, f"{topic}-value")
    records = [(f"s_{i % 7}", DAY + i * 10, i * 0.25) for i in range(300)]
    produce_power(broker, topic, schema_id, records)
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": broker,
        "KAFKA_INPUT_TOPIC": topic,
        "APPLICATION_ID": "theodolite-uc1-flink",
        "PARALLELISM": "2",
        "CHECKPOINTING_INTERVAL_MS": "500",
        "UC1_SUMMARY_INTERVAL_MS": "500",
    }
    cmd = app_command(distribution, flink_build, FLINK_MAIN["uc1"], heap="384m")
    assert not any(str(distribution.libs_dir) in part for part in cmd)
    jvm = Jvm("uc1-flink", cmd, env, tmp_path)
    try:
        jvm.wait_line("greenflow-theodolite-app-started uc=1 engine=flink")
        wait_committed(broker, "theodolite-uc1-flink", topic, jvm)
        deadline = time.monotonic() + 30
        while " records=300 " not in (jvm.lines("greenflow-theodolite-uc1 ") or [""])[-1]:
            assert time.monotonic() < deadline, jvm.tail()
            time.sleep(0.3)
        assert jvm.stop() == 0, jvm.tail()
    finally:
        jvm.kill()


def test_uc2_downsamples_into_tumbling_windows(
    distribution: KafkaDistribution, build: AppsBuild, broker: str, registry: str, tmp_path: Path
) -> None:
    """2 s tumbling windows: per sensor and window exactly the count, mean, population
    variance, min and max of its values; a record arriving after its window ended is
    dropped (no grace)."""
    topic, output = "uc2-input", "uc2-output"
    new_topic(broker, topic, partitions=2)
    new_topic(broker, output, partitions=1)
    schema_id = register(registry, f"{topic}-value")
    w = 2000
    windows = {
        ("s_a", DAY): [1.0, 2.0, 3.0, 4.0],
        ("s_b", DAY): [10.0, 20.0],
        ("s_a", DAY + w): [5.0, 7.0, -1.5],
        ("s_b", DAY + w): [2.5],
        ("s_a", DAY + 2 * w): [0.5],
    }
    records = []
    for (sensor, start), values in windows.items():
        records += [(sensor, start + 100 + 300 * i, v) for i, v in enumerate(values)]
    records.sort(key=lambda r: r[1])
    records.append(("s_a", DAY + 500, 1000.0))  # late: s_a's stream time is past DAY + w
    produce_power(broker, topic, schema_id, records)
    env = app_env(
        broker,
        registry,
        "uc2",
        tmp_path,
        KAFKA_INPUT_TOPIC=topic,
        KAFKA_OUTPUT_TOPIC=output,
        DOWNSAMPLE_INTERVAL_MS=str(w),
        COMMIT_INTERVAL_MS="200",
    )
    expected = {
        (sensor, start): {"windowEnd": start + w, **stats(values)}
        for (sensor, start), values in windows.items()
    }
    with running(distribution, build, UC_MAIN["uc2"], env, tmp_path, "uc2") as app:
        app.wait_line("greenflow-theodolite-app-started uc=2")
        latest = wait_for_output(broker, output, ("identifier", "windowStart"), expected, app)
        assert app.stop() == 0, app.tail()
    assert set(latest) == set(expected)
    for key, want in expected.items():
        got = latest[key]
        assert (got["count"], got["min"], got["max"]) == (want["count"], want["min"], want["max"])
        assert got["mean"] == pytest.approx(want["mean"], rel=1e-12)
        assert got["populationVariance"] == pytest.approx(want["populationVariance"], abs=1e-12)
        assert got["populationStandardDeviation"] == pytest.approx(
            want["populationVariance"] ** 0.5, abs=1e-9
        )


def _hopping_windows(ts: int, size: int, advance: int) -> list[int]:
    """Starts of the hopping windows holding ``ts`` (Kafka Streams' TimeWindows.windowsFor)."""
    first = max(0, ts - size + advance)
    start = first - first % advance
    out = []
    while start <= ts:
        if ts < start + size:
            out.append(start)
        start += advance
    return out


def test_uc3_aggregates_per_hour_of_day(
    distribution: KafkaDistribution, build: AppsBuild, broker: str, registry: str, tmp_path: Path
) -> None:
    """Keys "<sensor>;<hour of day, UTC>" and hopping windows (4 s, advancing 2 s): per key
    and window exactly the statistics of the values in it."""
    topic, output = "uc3-input", "uc3-output"
    new_topic(broker, topic, partitions=1)
    new_topic(broker, output, partitions=1)
    schema_id = register(registry, f"{topic}-value")
    size, advance = 4000, 2000
    records = [
        ("s_a", DAY + 3 * HOUR + 100, 1.0),
        ("s_a", DAY + 3 * HOUR + 1500, 2.0),
        ("s_b", DAY + 3 * HOUR + 1600, 40.0),
        ("s_a", DAY + 3 * HOUR + 2500, 6.0),
        ("s_a", DAY + 3 * HOUR + 5100, 3.0),
        ("s_a", DAY + 23 * HOUR + 10, 7.0),
        ("s_b", DAY + 23 * HOUR + 3000, 8.0),
        ("s_a", DAY + 24 * HOUR + 3 * HOUR + 700, 100.0),  # the next day, hour 3 again
    ]
    produce_power(broker, topic, schema_id, records)
    values: dict[tuple[str, int, int], list[float]] = {}
    for sensor, ts, v in records:
        hour = (ts // HOUR) % 24
        for start in _hopping_windows(ts, size, advance):
            values.setdefault((sensor, hour, start), []).append(v)
    expected = {key: {"windowEnd": key[2] + size, **stats(vs)} for key, vs in values.items()}
    assert len(expected) == 12
    env = app_env(
        broker,
        registry,
        "uc3",
        tmp_path,
        KAFKA_INPUT_TOPIC=topic,
        KAFKA_OUTPUT_TOPIC=output,
        AGGREGATION_DURATION_MS=str(size),
        AGGREGATION_ADVANCE_MS=str(advance),
        COMMIT_INTERVAL_MS="200",
    )
    fields = ("identifier", "hourOfDay", "windowStart")
    with running(distribution, build, UC_MAIN["uc3"], env, tmp_path, "uc3") as app:
        app.wait_line("greenflow-theodolite-app-started uc=3")
        latest = wait_for_output(broker, output, fields, expected, app)
        assert app.stop() == 0, app.tail()
    keys = {m.key() for m in read_topic(broker, output)}
    assert set(latest) == set(expected)
    assert keys == {f"{s};{h}".encode() for s, h, _ in expected}
    for key, want in expected.items():
        got = latest[key]
        assert (got["count"], got["min"], got["max"]) == (want["count"], want["min"], want["max"])
        assert got["mean"] == pytest.approx(want["mean"], rel=1e-12)
        assert got["populationVariance"] == pytest.approx(want["populationVariance"], abs=1e-12)


def test_uc4_sums_through_a_two_level_hierarchy(
    distribution: KafkaDistribution, build: AppsBuild, broker: str, registry: str, tmp_path: Path
) -> None:
    """root → g_1_0 {s_0, s_1}, g_1_1 {s_2, s_3}: per 2 s window each group sums its
    sensors' last values, and root the groups' sums (through the feedback topic, which the
    application creates with the input's partitions)."""
    topics = {
        "input": "uc4-input",
        "output": "uc4-output",
        "configuration": "uc4-configuration",
        "feedback": "uc4-feedback",
    }
    new_topic(broker, topics["input"], partitions=2)
    new_topic(broker, topics["output"], partitions=1)
    new_topic(broker, topics["configuration"], partitions=1)
    schema_id = register(registry, f"{topics['input']}-value")
    registry_json = {
        "identifier": "root",
        "name": "root",
        "children": [
            {"identifier": "g_1_0", "children": [{"identifier": "s_0"}, {"identifier": "s_1"}]},
            {"identifier": "g_1_1", "children": [{"identifier": "s_2"}, {"identifier": "s_3"}]},
        ],
    }
    produce(
        broker,
        topics["configuration"],
        [(struct.pack(">i", 0), json.dumps(registry_json).encode(), None)],
    )
    emit = 2000
    env = app_env(
        broker,
        registry,
        "uc4",
        tmp_path,
        KAFKA_INPUT_TOPIC=topics["input"],
        KAFKA_OUTPUT_TOPIC=topics["output"],
        KAFKA_CONFIGURATION_TOPIC=topics["configuration"],
        KAFKA_FEEDBACK_TOPIC=topics["feedback"],
        EMIT_PERIOD_MS=str(emit),
        GRACE_PERIOD_MS="5000",
        COMMIT_INTERVAL_MS="200",
    )
    base = (int(time.time() * 1000) // emit) * emit
    with running(distribution, build, UC_MAIN["uc4"], env, tmp_path, "uc4") as app:
        app.wait_line("greenflow-theodolite-app-started uc=4")
        app.wait_line("greenflow-theodolite-uc4-registry root=root groups=3 nodes=6")
        assert len(partition_end_offsets(broker, topics["feedback"])) == 2
        # Until the node → parents table has reached the join, input records find no
        # parents and are dropped: warm up with s_0 in an earlier window until g_1_0 shows.
        deadline = time.monotonic() + 60
        for i in range(10_000):
            produce_power(broker, topics["input"], schema_id, [("s_0", base + i, 1.0)])
            seen = read_all(broker, topics["output"], lambda got: len(got) > 0, 0.5)
            if seen:
                break
            assert time.monotonic() < deadline, f"UC4 wrote nothing:\n{app.tail()}"
            assert app.proc.poll() is None, app.tail()
        w1, w2 = base + 2 * emit, base + 3 * emit
        produce_power(
            broker,
            topics["input"],
            schema_id,
            [
                ("s_0", w1 + 100, 1.0),
                ("s_1", w1 + 200, 5.0),
                ("s_2", w1 + 300, 7.0),
                ("s_3", w1 + 400, 11.0),
                ("s_0", w1 + 500, 3.0),
                ("s_3", w1 + 800, 2.0),
                ("s_0", w2 + 100, 4.0),
                ("s_1", w2 + 200, 4.0),
                ("s_2", w2 + 300, 1.0),
                ("s_3", w2 + 400, 1.0),
            ],
        )

        def agg(count: int, total: float, start: int) -> dict[str, Any]:
            return {
                "count": count,
                "sumInW": total,
                "averageInW": total / count,
                "timestamp": start,
                "windowEnd": start + emit,
            }

        expected = {
            ("g_1_0", w1): agg(2, 8.0, w1),
            ("g_1_1", w1): agg(2, 9.0, w1),
            ("root", w1): agg(2, 17.0, w1),
            ("g_1_0", w2): agg(2, 8.0, w2),
            ("g_1_1", w2): agg(2, 2.0, w2),
            ("root", w2): agg(2, 10.0, w2),
        }
        latest = wait_for_output(
            broker, topics["output"], ("identifier", "windowStart"), expected, app
        )
        assert app.stop() == 0, app.tail()
    for key, want in expected.items():
        assert key in latest, (key, sorted(latest))
        for f, v in want.items():
            assert _close(latest[key][f], v), (key, f, latest[key][f], v)
    feedback = read_topic(broker, topics["feedback"])
    assert {json.loads(m.value())["identifier"] for m in feedback} == {"g_1_0", "g_1_1", "root"}


# -- the Kubernetes parts -------------------------------------------------------------------

SCHEMA = Schema(str(ACTIVE_POWER_RECORD).replace("'", '"'), "AVRO")


@pytest.fixture(scope="module")
def java_registry(
    distribution: KafkaDistribution, build: AppsBuild, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    env = {"SCHEMA_REGISTRY_LISTENERS": "http://127.0.0.1:0"}
    logs = tmp_path_factory.mktemp("java-registry")
    with running(distribution, build, REGISTRY_MAIN, env, logs, "registry") as jvm:
        line = jvm.wait_line("greenflow-schema-registry-ready")
        port = line.rsplit(":", 1)[1]
        yield f"http://127.0.0.1:{port}"
        assert jvm.stop() == 0, jvm.tail()


def test_java_registry_answers_confluents_client(java_registry: str) -> None:
    """What Avro serdes do — register, read by id, look up, latest version — answered as
    Confluent's server does, through confluent-kafka's client; errors carry its codes."""
    with SchemaRegistryClient({"url": java_registry}) as client:
        first = client.register_schema("input-value", SCHEMA)
        assert client.register_schema("input-value", SCHEMA) == first  # no new version
        assert client.register_schema("output-value", SCHEMA) == first  # same text, same id
        assert '"ActivePowerRecord"' in client.get_schema(first).schema_str
        found = client.lookup_schema("input-value", SCHEMA)
        assert (found.schema_id, found.version) == (first, 1)
        other = Schema('{"type": "record", "name": "R", "fields": []}', "AVRO")
        second = client.register_schema("input-value", other)
        assert second != first
        latest = client.get_latest_version("input-value")
        assert (latest.schema_id, latest.version) == (second, 2)
        assert sorted(client.get_subjects()) == ["input-value", "output-value"]
        with pytest.raises(SchemaRegistryError) as unknown:
            client.get_schema(999)
        assert unknown.value.error_code == 40403
        with pytest.raises(SchemaRegistryError) as no_subject:
            client.get_latest_version("nobody-value")
        assert no_subject.value.error_code == 40401


def test_topics_tool_creates_samples_lag_and_cleans(
    broker: str, distribution: KafkaDistribution, build: AppsBuild, tmp_path: Path
) -> None:
    """``prepare`` recreates the topics with their partitions and prints end offsets and the
    group's lag (uncommitted partitions counting whole) every interval; ``clean`` forgets the
    group and deletes the topics and the application's internal ones (by prefix)."""
    group, prefix = "gf-test-app", "gf-test-app-"
    producer = Producer({"bootstrap.servers": broker})
    create_topic(broker, "in", partitions=1)  # there before: recreated empty by prepare
    producer.produce("in", b"x")
    producer.flush(10)
    args = ["prepare", broker, group, "300", "in:3", "out:2", f"{prefix}store-changelog:1"]
    cmd = [*app_command(distribution, build, TOPICS_MAIN, heap="128m"), *args, "--", "in", "out"]
    tool = Jvm("topics", cmd, {}, tmp_path)
    try:
        tool.wait_line("greenflow-topics-ready")
        ends = partition_end_offsets(broker, "in")
        assert sorted(ends) == [0, 1, 2] and sum(ends.values()) == 0
        assert sorted(partition_end_offsets(broker, "out")) == [0, 1]
        producer = Producer({"bootstrap.servers": broker})  # not the old topic's metadata
        for i in range(30):
            producer.produce("in", b"r", partition=i % 3)
        for _ in range(7):
            producer.produce("out", b"o")
        producer.flush(10)
        # The group commits partition 0 up to its end and partition 1 up to 4: lag = 6 + 10.
        offsets = [TopicPartition("in", 0, 10), TopicPartition("in", 1, 4)]
        for attempt in range(60):  # a fresh broker creates __consumer_offsets on first use
            consumer = Consumer({"bootstrap.servers": broker, "group.id": group})
            try:
                consumer.commit(offsets=offsets, asynchronous=False)
                break
            except KafkaException as exc:
                if attempt == 59 or not exc.args[0].retriable():
                    raise
                time.sleep(0.5)
            finally:
                consumer.close()
        deadline = time.monotonic() + 30
        sample = ""
        while time.monotonic() < deadline:
            lines = tool.lines("greenflow-offsets")
            if lines and "end.in=30 " in lines[-1] and lines[-1].endswith("lag=16 members=0"):
                sample = lines[-1]
                break
            time.sleep(0.3)
        assert sample, tool.tail()
        assert re.fullmatch(
            r"greenflow-offsets t_ms=\d+ end\.in=30 end\.out=7 lag=16 members=0", sample
        )
        stamps = [int(x.split()[1].split("=")[1]) for x in tool.lines("greenflow-offsets")]
        gaps = [b - a for a, b in itertools.pairwise(stamps)]
        assert gaps and all(g >= 250 for g in gaps), gaps  # every 300 ms, never in bursts
        assert tool.stop() == 0, tool.tail()
    finally:
        tool.kill()
    clean = [*app_command(distribution, build, TOPICS_MAIN, heap="128m"), "clean", broker]
    clean += [group, prefix, "in", "out"]
    cleaner = Jvm("clean", clean, {}, tmp_path)
    try:
        assert cleaner.wait_line("greenflow-topics-deleted") == "greenflow-topics-deleted n=3"
        assert cleaner.proc.wait(30) == 0
    finally:
        cleaner.kill()
    with AdminSession(broker) as session:
        left = set(session.client.list_topics(timeout=10).topics)
        groups = session.client.list_consumer_groups(request_timeout=10).result(timeout=15)
    assert not left & {"in", "out", f"{prefix}store-changelog"}, left
    # The group and its commits are forgotten: a next run's instances start on a clean slate.
    assert group not in {g.group_id for g in groups.valid}
