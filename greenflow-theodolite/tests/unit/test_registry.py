"""The schema-registry stand-in, driven by confluent-kafka's own client and Avro serde."""

from __future__ import annotations

import io
import json
import os
import selectors
import signal
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import fastavro
import pytest
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext

from greenflow_theodolite.registry import (
    CONTENT_TYPE,
    READY_PREFIX,
    RegistryError,
    SchemaRegistry,
    SchemaStore,
    canonical_schema,
)

ACTIVE_POWER_RECORD = (
    '{"type":"record","name":"ActivePowerRecord","namespace":"titan.ccp.model.records",'
    '"fields":[{"name":"identifier","type":"string"},{"name":"timestamp","type":"long"},'
    '{"name":"valueInW","type":"double"}]}'
)
# The same schema, reformatted and with its keys in another order.
ACTIVE_POWER_RECORD_REFORMATTED = json.dumps(
    {
        "namespace": "titan.ccp.model.records",
        "fields": [
            {"type": "string", "name": "identifier"},
            {"type": "long", "name": "timestamp"},
            {"type": "double", "name": "valueInW"},
        ],
        "name": "ActivePowerRecord",
        "type": "record",
    },
    indent=2,
)
AGGREGATED_RECORD = (
    '{"type":"record","name":"AggregatedActivePowerRecord","namespace":"titan.ccp.model.records",'
    '"fields":[{"name":"identifier","type":"string"},{"name":"timestamp","type":"long"},'
    '{"name":"count","type":"long"},{"name":"sumInW","type":"double"},'
    '{"name":"averageInW","type":"double"}]}'
)


@pytest.fixture
def reg() -> Iterator[SchemaRegistry]:
    with SchemaRegistry() as registry:
        yield registry


@pytest.fixture
def client(reg: SchemaRegistry) -> Iterator[SchemaRegistryClient]:
    with SchemaRegistryClient({"url": reg.url}) as sr:
        yield sr


def avro(text: str) -> Schema:
    return Schema(text, "AVRO")


def http(
    method: str,
    url: str,
    body: Any = None,
    headers: Mapping[str, str] | None = None,
) -> tuple[int, str, Any]:
    """Status, Content-Type and decoded JSON body of one raw request."""
    data = (
        None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    )
    all_headers = {"Content-Type": CONTENT_TYPE} if data is not None else {}
    all_headers.update(headers or {})
    request = urllib.request.Request(url, data=data, method=method, headers=all_headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers["Content-Type"], json.loads(response.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.headers["Content-Type"], json.loads(exc.read())


def sr_error(excinfo: pytest.ExceptionInfo[SchemaRegistryError]) -> tuple[int, int]:
    return excinfo.value.http_status_code, excinfo.value.error_code


# --- confluent-kafka's client ------------------------------------------------------------------


def test_register_get_lookup_latest(client: SchemaRegistryClient, reg: SchemaRegistry) -> None:
    schema_id = client.register_schema("input-value", avro(ACTIVE_POWER_RECORD))
    assert schema_id == 1
    # Again, bypassing the client's cache: the same id, no new version.
    with SchemaRegistryClient({"url": reg.url}) as fresh:
        assert fresh.register_schema("input-value", avro(ACTIVE_POWER_RECORD)) == schema_id
        assert fresh.register_schema("input-value", avro(ACTIVE_POWER_RECORD_REFORMATTED)) == 1
        assert fresh.get_versions("input-value") == [1]

        assert fresh.get_schema(schema_id).schema_str == ACTIVE_POWER_RECORD
        found = fresh.lookup_schema("input-value", avro(ACTIVE_POWER_RECORD_REFORMATTED))
        assert (found.subject, found.schema_id, found.version) == ("input-value", 1, 1)
        latest = fresh.get_latest_version("input-value")
        assert (latest.subject, latest.schema_id, latest.version) == ("input-value", 1, 1)
        assert latest.schema.schema_str == ACTIVE_POWER_RECORD
        assert latest.schema.schema_type == "AVRO"
        assert fresh.get_subjects() == ["input-value"]


def test_versions_and_global_ids(client: SchemaRegistryClient) -> None:
    first = client.register_schema("input-value", avro(ACTIVE_POWER_RECORD))
    second = client.register_schema("input-value", avro(AGGREGATED_RECORD))
    # The same schema under another subject keeps its global id (reformatted text too).
    shared = client.register_schema("output-value", avro(ACTIVE_POWER_RECORD_REFORMATTED))
    assert (first, second, shared) == (1, 2, 1)
    assert client.get_versions("input-value") == [1, 2]
    assert client.get_versions("output-value") == [1]
    assert client.get_latest_version("input-value").schema_id == 2
    assert client.get_version("input-value", 1).schema_id == 1
    assert sorted(client.get_subjects()) == ["input-value", "output-value"]
    pairs = {(v.subject, v.version) for v in client.get_schema_versions(1)}
    assert pairs == {("input-value", 1), ("output-value", 1)}
    assert sorted(client.get_subjects_by_schema_id(1)) == ["input-value", "output-value"]
    # The text kept is the first one registered under the id.
    assert client.get_schema(shared).schema_str == ACTIVE_POWER_RECORD


def test_not_found_errors(client: SchemaRegistryClient) -> None:
    client.register_schema("input-value", avro(ACTIVE_POWER_RECORD))
    with pytest.raises(SchemaRegistryError) as schema_missing:
        client.get_schema(99)
    assert sr_error(schema_missing) == (404, 40403)
    with pytest.raises(SchemaRegistryError) as subject_missing:
        client.get_latest_version("nope")
    assert sr_error(subject_missing) == (404, 40401)
    with pytest.raises(SchemaRegistryError) as version_missing:
        client.get_version("input-value", 7)
    assert sr_error(version_missing) == (404, 40402)
    with pytest.raises(SchemaRegistryError) as lookup_unknown_schema:
        client.lookup_schema("input-value", avro(AGGREGATED_RECORD))
    assert sr_error(lookup_unknown_schema) == (404, 40403)
    with pytest.raises(SchemaRegistryError) as lookup_unknown_subject:
        client.lookup_schema("nope", avro(ACTIVE_POWER_RECORD))
    assert sr_error(lookup_unknown_subject) == (404, 40401)
    with pytest.raises(SchemaRegistryError) as versions_missing:
        client.get_versions("nope")
    assert sr_error(versions_missing) == (404, 40401)


def test_delete_subject_soft_then_permanent(client: SchemaRegistryClient) -> None:
    client.register_schema("input-value", avro(ACTIVE_POWER_RECORD))
    client.register_schema("input-value", avro(AGGREGATED_RECORD))
    client.register_schema("other-value", avro(AGGREGATED_RECORD))

    with pytest.raises(SchemaRegistryError) as not_soft_deleted:
        client.delete_subject("input-value", permanent=True)
    assert sr_error(not_soft_deleted) == (404, 40405)

    assert client.delete_subject("input-value") == [1, 2]
    assert client.get_subjects() == ["other-value"]
    assert sorted(client.get_subjects(deleted=True)) == ["input-value", "other-value"]
    assert client.get_subjects(deleted_only=True) == ["input-value"]
    with pytest.raises(SchemaRegistryError) as gone:
        client.get_latest_version("input-value")
    assert sr_error(gone) == (404, 40401)
    assert client.get_version("input-value", 2, deleted=True).schema_id == 2
    with pytest.raises(SchemaRegistryError) as twice:
        client.delete_subject("input-value")
    assert sr_error(twice) == (404, 40404)
    # Ids outlive their subjects: data written with them stays readable.
    assert client.get_schema(1).schema_str == ACTIVE_POWER_RECORD

    assert client.delete_subject("input-value", permanent=True) == [1, 2]
    assert client.get_subjects(deleted=True) == ["other-value"]
    with pytest.raises(SchemaRegistryError) as unknown:
        client.delete_subject("input-value")
    assert sr_error(unknown) == (404, 40401)


def test_register_after_soft_delete_continues_versions(reg: SchemaRegistry) -> None:
    store = reg.store
    store.register("s", {"schema": ACTIVE_POWER_RECORD})
    store.delete_subject("s")
    # Confluent: same id, next version after the highest one ever used in the subject.
    assert store.register("s", {"schema": ACTIVE_POWER_RECORD}) == {"id": 1}
    assert store.versions("s") == [2]
    assert store.versions("s", deleted=True) == [1, 2]
    assert store.lookup("s", {"schema": ACTIVE_POWER_RECORD})["version"] == 2
    # After a permanent delete the subject starts afresh; the id does not change.
    store.delete_subject("s")
    store.delete_subject("s", permanent=True)
    assert store.register("s", {"schema": ACTIVE_POWER_RECORD}) == {"id": 1}
    assert store.versions("s") == [1]


def test_compatibility_is_stored_and_echoed(client: SchemaRegistryClient) -> None:
    assert client.get_compatibility() == "BACKWARD"
    # The client is annotated "-> str" but hands back the server's echo of the request.
    echoed: Any = client.set_compatibility(level="full")
    assert echoed == {"compatibility": "FULL"}
    assert client.get_compatibility() == "FULL"
    assert client.get_config().compatibility_level is not None
    # Not enforced: an unrelated schema still goes into the same subject.
    client.register_schema("input-value", avro(ACTIVE_POWER_RECORD))
    assert client.register_schema("input-value", avro('"string"')) == 2
    client.set_compatibility("input-value", "NONE")
    assert client.get_compatibility("input-value") == "NONE"


def test_avro_serde_round_trip(client: SchemaRegistryClient, reg: SchemaRegistry) -> None:
    record = {"identifier": "sensor-7", "timestamp": 1_700_000_000_123, "valueInW": 42.5}
    ctx = SerializationContext("input", MessageField.VALUE)
    serializer = AvroSerializer(client, ACTIVE_POWER_RECORD)
    payload = serializer(record, ctx)
    assert payload is not None

    registered = client.get_latest_version("input-value")  # topic-name strategy's subject
    assert payload[0] == 0
    assert struct.unpack(">I", payload[1:5])[0] == registered.schema_id
    parsed = fastavro.parse_schema(json.loads(ACTIVE_POWER_RECORD))
    assert fastavro.schemaless_reader(io.BytesIO(payload[5:]), parsed) == record

    # A consumer with its own client resolves the writer schema by id from the registry.
    with SchemaRegistryClient({"url": reg.url}) as consumer_client:
        assert AvroDeserializer(consumer_client)(payload, ctx) == record


def test_concurrent_registrations(reg: SchemaRegistry) -> None:
    def record_schema(n: int) -> str:
        return json.dumps({"type": "record", "name": f"R{n}", "fields": []})

    def register(n: int) -> tuple[int, int]:
        with SchemaRegistryClient({"url": reg.url}) as sr:
            shared = sr.register_schema("shared-value", avro(ACTIVE_POWER_RECORD))
            own = sr.register_schema(f"s{n}-value", avro(record_schema(n)))
            return shared, own

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(register, range(24)))
    assert {shared for shared, _ in results} == {results[0][0]}
    own_ids = [own for _, own in results]
    assert sorted([*own_ids, results[0][0]]) == list(range(1, 26))
    assert reg.store.versions("shared-value") == [1]


# --- the HTTP surface ---------------------------------------------------------------------------


def test_raw_http_shapes_and_content_types(reg: SchemaRegistry) -> None:
    assert http("GET", f"{reg.url}/") == (200, CONTENT_TYPE, {})
    # Plain JSON in, and unknown query parameters (newer clients') ignored.
    status, ctype, body = http(
        "POST",
        f"{reg.url}/subjects/a%2Fb-value/versions?normalize=true&fetchMaxId=true&x=1",
        {"schema": ACTIVE_POWER_RECORD, "schemaType": "AVRO", "references": []},
        {"Content-Type": "application/json"},
    )
    assert (status, ctype, body) == (200, CONTENT_TYPE, {"id": 1})
    assert http("GET", f"{reg.url}/subjects")[2] == ["a/b-value"]
    assert http("GET", f"{reg.url}/schemas/ids/1")[2] == {"schema": ACTIVE_POWER_RECORD}
    assert http("GET", f"{reg.url}/schemas/ids/1/versions")[2] == [
        {"subject": "a/b-value", "version": 1}
    ]
    expected = {"subject": "a/b-value", "version": 1, "id": 1, "schema": ACTIVE_POWER_RECORD}
    for version in ("1", "latest", "-1"):
        assert http("GET", f"{reg.url}/subjects/a%2Fb-value/versions/{version}")[2] == expected
    lookup = http(
        "POST", f"{reg.url}/subjects/a%2Fb-value?deleted=False", {"schema": ACTIVE_POWER_RECORD}
    )
    assert lookup == (200, CONTENT_TYPE, expected)
    # The bare schema endpoint returns the schema text itself.
    assert http("GET", f"{reg.url}/subjects/a%2Fb-value/versions/1/schema")[2] == json.loads(
        ACTIVE_POWER_RECORD
    )
    # A client that accepts only plain JSON gets plain JSON.
    assert http("GET", f"{reg.url}/config", headers={"Accept": "application/json"}) == (
        200,
        "application/json",
        {"compatibilityLevel": "BACKWARD"},
    )


def test_raw_http_errors(reg: SchemaRegistry) -> None:
    url = reg.url
    assert http("GET", f"{url}/schemas/ids/7") == (
        404,
        CONTENT_TYPE,
        {"error_code": 40403, "message": "Schema 7 not found"},
    )
    status, _, body = http("GET", f"{url}/subjects/x/versions/latest")
    assert (status, body["error_code"]) == (404, 40401)
    http("POST", f"{url}/subjects/x/versions", {"schema": ACTIVE_POWER_RECORD})
    for bad_version in ("0", "abc", str(2**31)):
        status, _, body = http("GET", f"{url}/subjects/x/versions/{bad_version}")
        assert (status, body["error_code"]) == (422, 42202)
    status, _, body = http("POST", f"{url}/subjects/x/versions", {"schema": "{not json"})
    assert (status, body["error_code"]) == (422, 42201)
    status, _, body = http("POST", f"{url}/subjects/x/versions", {"schemaType": "AVRO"})
    assert (status, body["error_code"]) == (422, 42201)
    status, _, body = http("PUT", f"{url}/config", {"compatibility": "SIDEWAYS"})
    assert (status, body["error_code"]) == (422, 42203)
    status, _, body = http("GET", f"{url}/config/x")
    assert (status, body["error_code"]) == (404, 40408)
    assert http("GET", f"{url}/config/x?defaultToGlobal=true")[2] == {
        "compatibilityLevel": "BACKWARD"
    }
    status, _, body = http("POST", f"{url}/subjects/x/versions", b"[1, 2")
    assert (status, body["error_code"]) == (400, 400)
    assert http("GET", f"{url}/nowhere")[:2] == (404, CONTENT_TYPE)
    assert http("GET", f"{url}/nowhere")[2]["error_code"] == 404
    assert http("DELETE", f"{url}/schemas/ids/1")[2]["error_code"] == 405
    status, _, body = http(
        "POST", f"{url}/subjects/x/versions", b"schema", {"Content-Type": "text/plain"}
    )
    assert (status, body["error_code"]) == (415, 415)


def test_non_avro_schema_types(reg: SchemaRegistry) -> None:
    body = {"schema": '{"type": "object"}', "schemaType": "JSON"}
    assert http("POST", f"{reg.url}/subjects/j/versions", body)[2] == {"id": 1}
    # Same text as an Avro schema is a different schema.
    assert http("POST", f"{reg.url}/subjects/j/versions", {"schema": '{"type":"object"}'})[2] == {
        "id": 2
    }
    assert http("GET", f"{reg.url}/schemas/ids/1")[2] == {
        "schema": '{"type": "object"}',
        "schemaType": "JSON",
    }
    status, _, error = http("POST", f"{reg.url}/subjects/j/versions", {**body, "schemaType": "XML"})
    assert (status, error["error_code"]) == (422, 42201)


def test_canonical_schema() -> None:
    assert canonical_schema(ACTIVE_POWER_RECORD) == canonical_schema(
        ACTIVE_POWER_RECORD_REFORMATTED
    )
    assert canonical_schema('{ "b": 1, "a": [1, 2] }') == '{"a":[1,2],"b":1}'
    assert canonical_schema("syntax = 'proto3';", "PROTOBUF") == "syntax = 'proto3';"
    with pytest.raises(RegistryError) as invalid:
        canonical_schema("not json")
    assert (invalid.value.status, invalid.value.error_code) == (422, 42201)


def test_lifecycle() -> None:
    registry = SchemaRegistry()
    with pytest.raises(RuntimeError):
        _ = registry.url
    with registry:
        url = registry.url
        assert url.startswith("http://127.0.0.1:")
        assert http("GET", f"{url}/subjects")[2] == []
        registry.store.register("kept", {"schema": '"string"'})
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"{url}/", timeout=2)
    registry.stop()  # idempotent
    assert isinstance(registry.store, SchemaStore)
    assert registry.store.subjects() == ["kept"]


# --- process mode -------------------------------------------------------------------------------


def test_standalone_process() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "greenflow_theodolite.registry", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "error"},
    )
    try:
        assert proc.stdout is not None
        selector = selectors.DefaultSelector()
        selector.register(proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + 30
        line = ""
        while not line and time.monotonic() < deadline:
            if selector.select(timeout=deadline - time.monotonic()):
                line = proc.stdout.readline()
        selector.close()
        assert line.startswith(f"{READY_PREFIX} url=http://127.0.0.1:"), line
        url = line.split("url=", 1)[1].strip()

        status, _, body = http(
            "POST", f"{url}/subjects/input-value/versions", {"schema": ACTIVE_POWER_RECORD}
        )
        assert (status, body) == (200, {"id": 1})
        assert http("GET", f"{url}/subjects")[2] == ["input-value"]

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        assert proc.stdout.read() == ""
        assert proc.stderr is not None and proc.stderr.read() == ""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
