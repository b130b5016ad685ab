"""A minimal stand-in for Confluent Schema Registry, for Theodolite's apps and load generator.

Theodolite's use cases and workload generators serialise ``ActivePowerRecord`` & co. with
Confluent's Avro serde, which registers the writer schema with a Schema Registry and puts
``0x00 + 4-byte big-endian schema id`` in front of every record. Confluent's server is not
usable here (Confluent Community License, JVM, no package), so this module serves the part
of its REST API (``/subjects``, ``/schemas``, ``/config``) that Confluent's clients use, in
memory, on stdlib ``http.server.ThreadingHTTPServer``. It is a test and benchmark fixture,
not a registry: nothing is persisted, there is no authentication, TLS, leader election,
contexts, modes, metadata or rule sets.

Use it in-process (``with SchemaRegistry() as reg: reg.url``) or as a process::

    python -m greenflow_theodolite.registry --port 8081
    # prints "greenflow-schema-registry-ready url=http://127.0.0.1:8081" once listening;
    # SIGTERM or SIGINT stops it with exit status 0.

Endpoints (query parameters not listed are accepted and ignored, so newer clients'
``normalize``, ``format``, ``referenceFormat``, ``fetchMaxId``, ``findTags`` … do no harm):

- ``POST /subjects/{s}/versions`` → ``{"id": N}``. Body ``{"schema", "schemaType"?,
  "references"?}``; other fields are ignored.
- ``POST /subjects/{s}`` (lookup, ``deleted``) → ``{"subject", "id", "version", "schema"}``.
- ``GET /subjects`` (``deleted``, ``deletedOnly``/``deleted_only``, ``subjectPrefix``,
  ``offset``, ``limit``), ``GET /subjects/{s}/versions`` (same filters),
  ``GET /subjects/{s}/versions/{version|latest|-1}`` (``deleted``),
  ``GET /subjects/{s}/versions/{v}/schema`` (the bare schema text).
- ``DELETE /subjects/{s}`` (``permanent``) → the list of versions deleted.
- ``GET /schemas/ids/{id}`` → ``{"schema"}``; ``GET /schemas/ids/{id}/schema``,
  ``GET /schemas/ids/{id}/versions`` → ``[{"subject", "version"}]``,
  ``GET /schemas/ids/{id}/subjects``, ``GET /schemas/types``.
- ``GET /config`` → ``{"compatibilityLevel"}``, ``PUT /config`` (echoes the request),
  the same on ``/config/{s}`` (``GET`` takes ``defaultToGlobal``). The compatibility level
  is stored and echoed but NOT enforced: every schema is accepted into every subject.
- ``GET /`` and ``POST /`` → ``{}``. Errors are ``{"error_code": N, "message": "..."}``.

What was confirmed, and where:

- Error codes 40401 subject not found, 40402 version not found, 40403 schema not found,
  40404 subject soft-deleted, 40405 subject not soft-deleted before a permanent delete,
  40408 no subject-level compatibility, 42201 invalid schema, 42202 invalid version, 42203
  invalid compatibility level: ``Errors.java`` in github.com/confluentinc/schema-registry
  (``core/…/rest/exceptions``), and Confluent's API reference pages ("Lookup schema under
  subject", "Get schema by version", "List versions under subject", "Delete subject",
  "List subject-versions associated to schema ID", "Update global compatibility level" on
  docs.confluent.io/cloud/current/ccloud/…).
- Response shapes: ``RegisterSchemaResponse`` is ``{"id"}``, ``Schema`` is ``{"subject",
  "version", "id", "schema"}``, ``Config`` is ``{"compatibilityLevel"}`` and the config update
  request and its echo are ``{"compatibility"}`` — the v5.4.0 tag of that repository, the
  version Theodolite deploys (``confluentinc/cp-schema-registry:5.4.0``). ``GET /`` → ``{}``:
  ``RootResource.java``. "latest" and ``-1`` both mean the latest version: ``VersionId.java``.
- Register semantics (``KafkaSchemaRegistry.register``/``deleteSubject``, HEAD): the same
  schema under another subject gets the same id; registering a schema already live in
  the subject returns its id without a new version; a new version is one more than the
  highest ever used in the subject, soft-deleted ones included; a soft delete of an already
  soft-deleted subject is 40404, a permanent delete needs a soft delete first (40405).
- The endpoints and query parameters confluent-kafka 2.16.1's Python client sends
  (``confluent_kafka/schema_registry/_sync/schema_registry_client.py``), including that it
  percent-encodes subjects with ``safe=''`` and writes booleans as ``False``/``false``.

What is assumed (not checked against a running Confluent server):

- "Same schema" is decided on the schema type, the schema parsed as JSON and re-dumped with
  sorted keys and no spaces, and the references likewise. Confluent parses Avro and compares
  Avro's canonical form, so it also equates e.g. ``"string"`` and ``{"type": "string"}``;
  this stand-in does not. PROTOBUF schemas are compared as text. Schemas are parsed as JSON
  but not validated as Avro or JSON Schema (42201 only for text that is not JSON).
- The schema text returned is the one first registered under that id, verbatim (Confluent
  returns its own canonical rendering).
- ``schemaType`` is left out of responses for AVRO (5.4.0 has no such field; newer clients
  default to AVRO); ``references`` only when non-empty.
- Ids start at 1 and are never reused; a schema's id and text survive every delete, so
  ``GET /schemas/ids/N`` keeps answering (Confluent documents that for soft deletes).
- Subjects are listed sorted by name. Lookups prefer the latest matching version.
- Errors Confluent leaves to its REST framework are rendered like it:
  ``{"error_code": 404, "message": "HTTP 404 Not Found"}`` for unknown paths, 405 for
  unknown methods, 400 for a body that is not a JSON object, 415 for other content types,
  500 for anything unexpected.
- IPv4 only; request bodies need ``Content-Length`` (no chunked uploads).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType, TracebackType
from typing import Any, Final, cast
from urllib.parse import parse_qs, unquote, urlsplit

import attrs

__all__ = [
    "CONTENT_TYPE",
    "READY_PREFIX",
    "RegistryError",
    "SchemaRegistry",
    "SchemaStore",
    "canonical_schema",
    "main",
]

CONTENT_TYPE: Final = "application/vnd.schemaregistry.v1+json"
# What the server's resources @Consume (Versions.java): the v1 type, the unversioned one,
# plain JSON, and "generic request" octet-stream. A request without Content-Type is let in.
_REQUEST_CONTENT_TYPES: Final = frozenset(
    {
        CONTENT_TYPE,
        "application/vnd.schemaregistry+json",
        "application/json",
        "application/octet-stream",
    }
)
READY_PREFIX: Final = "greenflow-schema-registry-ready"

SCHEMA_TYPES: Final = ("AVRO", "JSON", "PROTOBUF")
COMPATIBILITY_LEVELS: Final = frozenset(
    {
        "NONE",
        "BACKWARD",
        "BACKWARD_TRANSITIVE",
        "FORWARD",
        "FORWARD_TRANSITIVE",
        "FULL",
        "FULL_TRANSITIVE",
    }
)
DEFAULT_COMPATIBILITY: Final = "BACKWARD"

# Confluent's error codes (Errors.java).
SUBJECT_NOT_FOUND: Final = 40401
VERSION_NOT_FOUND: Final = 40402
SCHEMA_NOT_FOUND: Final = 40403
SUBJECT_SOFT_DELETED: Final = 40404
SUBJECT_NOT_SOFT_DELETED: Final = 40405
SUBJECT_COMPATIBILITY_NOT_CONFIGURED: Final = 40408
INVALID_SCHEMA: Final = 42201
INVALID_VERSION: Final = 42202
INVALID_COMPATIBILITY_LEVEL: Final = 42203

_MAX_VERSION: Final = 2**31 - 1


class RegistryError(Exception):
    """A request the registry refuses: HTTP status, Confluent error code and message."""

    def __init__(self, status: int, error_code: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error_code = error_code
        self.message = message

    def payload(self) -> dict[str, Any]:
        return {"error_code": self.error_code, "message": self.message}


def canonical_schema(text: str, schema_type: str = "AVRO") -> str:
    """The form compared to decide "same schema": sorted-key, space-free JSON.

    PROTOBUF schemas are not JSON and are compared as given.
    """
    if schema_type == "PROTOBUF":
        return text
    try:
        parsed = json.loads(text)
    except ValueError as exc:
        raise RegistryError(422, INVALID_SCHEMA, f"Invalid schema: {exc}") from exc
    return json.dumps(parsed, sort_keys=True, separators=(",", ":"))


@attrs.frozen
class _StoredSchema:
    schema_id: int
    schema_type: str
    text: str
    references: tuple[Mapping[str, Any], ...]


@attrs.define
class _Version:
    version: int
    schema_id: int
    deleted: bool = False


def _subject_not_found(subject: str) -> RegistryError:
    return RegistryError(404, SUBJECT_NOT_FOUND, f"Subject '{subject}' not found.")


def _parse_version(raw: str) -> int | None:
    """The version number, or None for the latest; Confluent's VersionId rules."""
    if raw.strip().lower() == "latest":
        return None
    try:
        version = int(raw)
    except ValueError:
        version = 0
    if version == -1:
        return None
    if not 1 <= version <= _MAX_VERSION:
        raise RegistryError(
            422,
            INVALID_VERSION,
            f"The specified version '{raw}' is not a valid version id. Allowed values are "
            'between [1, 2^31-1] and the string "latest"',
        )
    return version


class SchemaStore:
    """The registry's state and rules, without HTTP; every method is thread-safe.

    Methods return JSON-ready values in Confluent's shapes and raise :class:`RegistryError`.
    """

    def __init__(self) -> None:
        # One lock for everything: requests are tiny and rare (serdes cache ids), so
        # finer locking would buy nothing.
        self._lock = threading.Lock()
        self._schemas: dict[int, _StoredSchema] = {}
        self._ids: dict[tuple[str, str, str], int] = {}
        # Versions per subject, ascending; soft-deleted ones stay, flagged.
        self._subjects: dict[str, list[_Version]] = {}
        self._next_id = 1
        self._compatibility = DEFAULT_COMPATIBILITY
        self._subject_compatibility: dict[str, str] = {}

    # --- schemas and subjects ---

    def register(self, subject: str, request: Mapping[str, Any]) -> dict[str, Any]:
        """``POST /subjects/{subject}/versions``."""
        schema_type, text, references, key = self._parse_request(request)
        with self._lock:
            versions = self._subjects.setdefault(subject, [])
            schema_id = self._ids.get(key)
            if schema_id is not None and any(
                v.schema_id == schema_id and not v.deleted for v in versions
            ):
                return {"id": schema_id}
            if schema_id is None:
                schema_id = self._next_id
                self._next_id += 1
                self._ids[key] = schema_id
                self._schemas[schema_id] = _StoredSchema(schema_id, schema_type, text, references)
            # Versions are never reused within a subject while it exists, soft-deleted
            # ones included (Confluent: max over all versions + 1).
            version = max((v.version for v in versions), default=0) + 1
            versions.append(_Version(version, schema_id))
            return {"id": schema_id}

    def lookup(
        self, subject: str, request: Mapping[str, Any], *, deleted: bool = False
    ) -> dict[str, Any]:
        """``POST /subjects/{subject}``: is this schema registered under the subject?"""
        _, _, _, key = self._parse_request(request)
        with self._lock:
            versions = self._visible(subject, deleted=deleted)
            if not versions:
                raise _subject_not_found(subject)
            schema_id = self._ids.get(key)
            for v in reversed(versions):
                if v.schema_id == schema_id:
                    return self._version_payload(subject, v)
            raise RegistryError(404, SCHEMA_NOT_FOUND, "Schema not found")

    def schema(self, schema_id: int) -> dict[str, Any]:
        """``GET /schemas/ids/{id}``."""
        with self._lock:
            stored = self._stored(schema_id)
            return self._schema_fields(stored, {"schema": stored.text})

    def schema_versions(self, schema_id: int, *, deleted: bool = False) -> list[dict[str, Any]]:
        """``GET /schemas/ids/{id}/versions``: the subject-version pairs using the schema."""
        with self._lock:
            self._stored(schema_id)
            return [
                {"subject": subject, "version": v.version}
                for subject in sorted(self._subjects)
                for v in self._subjects[subject]
                if v.schema_id == schema_id and (deleted or not v.deleted)
            ]

    def schema_subjects(self, schema_id: int, *, deleted: bool = False) -> list[str]:
        """``GET /schemas/ids/{id}/subjects``."""
        pairs = self.schema_versions(schema_id, deleted=deleted)
        return sorted({pair["subject"] for pair in pairs})

    def subjects(
        self, *, deleted: bool = False, deleted_only: bool = False, prefix: str | None = None
    ) -> list[str]:
        """``GET /subjects``: subjects with live versions (or soft-deleted ones, on request)."""
        with self._lock:
            found = []
            for subject, versions in sorted(self._subjects.items()):
                if prefix and not subject.startswith(prefix):
                    continue
                live = any(not v.deleted for v in versions)
                if deleted_only:
                    keep = any(v.deleted for v in versions)
                else:
                    keep = live or (deleted and bool(versions))
                if keep:
                    found.append(subject)
            return found

    def versions(
        self, subject: str, *, deleted: bool = False, deleted_only: bool = False
    ) -> list[int]:
        """``GET /subjects/{subject}/versions``."""
        with self._lock:
            all_versions = self._subjects.get(subject, [])
            if not self._visible(subject, deleted=deleted or deleted_only):
                raise _subject_not_found(subject)
            if deleted_only:
                return [v.version for v in all_versions if v.deleted]
            return [v.version for v in all_versions if deleted or not v.deleted]

    def version(self, subject: str, version: str, *, deleted: bool = False) -> dict[str, Any]:
        """``GET /subjects/{subject}/versions/{version}``; "latest" and -1 mean the latest."""
        number = _parse_version(version)
        with self._lock:
            versions = self._visible(subject, deleted=deleted)
            if not versions:
                raise _subject_not_found(subject)
            if number is None:
                return self._version_payload(subject, versions[-1])
            for v in versions:
                if v.version == number:
                    return self._version_payload(subject, v)
            raise RegistryError(404, VERSION_NOT_FOUND, f"Version {number} not found.")

    def delete_subject(self, subject: str, *, permanent: bool = False) -> list[int]:
        """``DELETE /subjects/{subject}``: soft by default; permanent only after a soft one."""
        with self._lock:
            versions = self._subjects.get(subject, [])
            if not versions:
                raise _subject_not_found(subject)
            live = [v for v in versions if not v.deleted]
            if permanent:
                if live:
                    raise RegistryError(
                        404,
                        SUBJECT_NOT_SOFT_DELETED,
                        f"Subject '{subject}' was not deleted first before being permanently "
                        "deleted",
                    )
                del self._subjects[subject]
                self._subject_compatibility.pop(subject, None)
                return [v.version for v in versions]
            if not live:
                raise RegistryError(
                    404,
                    SUBJECT_SOFT_DELETED,
                    f"Subject '{subject}' was soft deleted.Set permanent=true to delete "
                    "permanently",
                )
            for v in live:
                v.deleted = True
            return [v.version for v in live]

    # --- config ---

    def config(self, subject: str | None = None, *, default_to_global: bool = False) -> str:
        """The compatibility level (global, or the subject's own)."""
        with self._lock:
            if subject is None:
                return self._compatibility
            level = self._subject_compatibility.get(subject)
            if level is not None:
                return level
            if default_to_global:
                return self._compatibility
            raise RegistryError(
                404,
                SUBJECT_COMPATIBILITY_NOT_CONFIGURED,
                f"Subject '{subject}' does not have subject-level compatibility configured",
            )

    def set_config(self, request: Mapping[str, Any], subject: str | None = None) -> None:
        """Store the requested compatibility level. Stored and reported, never enforced."""
        # "compatibility" is the request field (ConfigUpdateRequest); accept the response
        # spelling too, since ServerConfig-style clients may send either.
        raw = request.get("compatibility", request.get("compatibilityLevel"))
        if raw is None:
            return
        level = str(raw).upper()
        if level not in COMPATIBILITY_LEVELS:
            raise RegistryError(
                422,
                INVALID_COMPATIBILITY_LEVEL,
                f"Invalid compatibility level. Valid values are {', '.join(sorted(COMPATIBILITY_LEVELS))}",
            )
        with self._lock:
            if subject is None:
                self._compatibility = level
            else:
                self._subject_compatibility[subject] = level

    # --- helpers (callers hold the lock where it matters) ---

    @staticmethod
    def _parse_request(
        request: Mapping[str, Any],
    ) -> tuple[str, str, tuple[Mapping[str, Any], ...], tuple[str, str, str]]:
        text = request.get("schema")
        if not isinstance(text, str) or not text.strip():
            raise RegistryError(422, INVALID_SCHEMA, "Empty schema")
        schema_type = str(request.get("schemaType") or "AVRO").upper()
        if schema_type not in SCHEMA_TYPES:
            raise RegistryError(422, INVALID_SCHEMA, f"Invalid schema type {schema_type}")
        raw_refs = request.get("references") or []
        if not isinstance(raw_refs, list) or not all(isinstance(r, dict) for r in raw_refs):
            raise RegistryError(422, INVALID_SCHEMA, "Invalid schema references")
        references = tuple(cast(list[Mapping[str, Any]], raw_refs))
        key = (
            schema_type,
            canonical_schema(text, schema_type),
            json.dumps(raw_refs, sort_keys=True, separators=(",", ":")),
        )
        return schema_type, text, references, key

    def _visible(self, subject: str, *, deleted: bool) -> list[_Version]:
        return [v for v in self._subjects.get(subject, []) if deleted or not v.deleted]

    def _stored(self, schema_id: int) -> _StoredSchema:
        stored = self._schemas.get(schema_id)
        if stored is None:
            raise RegistryError(404, SCHEMA_NOT_FOUND, f"Schema {schema_id} not found")
        return stored

    def _version_payload(self, subject: str, version: _Version) -> dict[str, Any]:
        stored = self._schemas[version.schema_id]
        return self._schema_fields(
            stored,
            {
                "subject": subject,
                "version": version.version,
                "id": stored.schema_id,
                "schema": stored.text,
            },
        )

    @staticmethod
    def _schema_fields(stored: _StoredSchema, payload: dict[str, Any]) -> dict[str, Any]:
        if stored.schema_type != "AVRO":
            payload["schemaType"] = stored.schema_type
        if stored.references:
            payload["references"] = [dict(r) for r in stored.references]
        return payload


# --- HTTP ------------------------------------------------------------------------------------


def _flag(query: Mapping[str, list[str]], *names: str) -> bool:
    # The Python client writes booleans both as httpx does ("false") and with f-strings
    # ("False"); Jersey's boolean parsing is case-insensitive too.
    return any(query.get(name, [""])[-1].strip().lower() == "true" for name in names)


def _int_param(query: Mapping[str, list[str]], name: str, default: int) -> int:
    try:
        return int(query.get(name, [str(default)])[-1])
    except ValueError:
        return default


def _page(items: Sequence[Any], query: Mapping[str, list[str]]) -> list[Any]:
    """``offset``/``limit`` pagination; a negative limit means all (Confluent's rule)."""
    offset = max(_int_param(query, "offset", 0), 0)
    limit = _int_param(query, "limit", -1)
    return list(items[offset:] if limit < 0 else items[offset : offset + limit])


def _schema_id(raw: str) -> int:
    try:
        return int(raw)
    except ValueError as exc:
        raise RegistryError(404, SCHEMA_NOT_FOUND, f"Schema {raw} not found") from exc


def _framework_error(status: int, reason: str) -> RegistryError:
    # Errors that Confluent's REST framework (rest-utils) renders: the HTTP status as code.
    return RegistryError(status, status, f"HTTP {status} {reason}")


@attrs.frozen
class _Request:
    method: str
    segments: tuple[str, ...]
    query: Mapping[str, list[str]]
    body: Mapping[str, Any] | None


def _route(store: SchemaStore, req: _Request) -> Any:
    """The JSON value answering a request, or a str for the bare-schema endpoints."""
    method, seg, query = req.method, req.segments, req.query
    body: Mapping[str, Any] = req.body or {}
    deleted = _flag(query, "deleted")
    match seg:
        case ():
            if method in ("GET", "POST"):
                return {}
        case ("subjects",):
            if method == "GET":
                subjects = store.subjects(
                    deleted=deleted,
                    deleted_only=_flag(query, "deletedOnly", "deleted_only"),
                    # ":*:" is Confluent's "every context" wildcard, the default prefix.
                    prefix=query.get("subjectPrefix", [":*:"])[-1].replace(":*:", "") or None,
                )
                return _page(subjects, query)
        case ("subjects", subject):
            if method == "POST":
                return store.lookup(subject, body, deleted=deleted)
            if method == "DELETE":
                return store.delete_subject(subject, permanent=_flag(query, "permanent"))
        case ("subjects", subject, "versions"):
            if method == "POST":
                return store.register(subject, body)
            if method == "GET":
                versions = store.versions(
                    subject,
                    deleted=deleted,
                    deleted_only=_flag(query, "deletedOnly", "deleted_only"),
                )
                return _page(versions, query)
        case ("subjects", subject, "versions", version):
            if method == "GET":
                return store.version(subject, version, deleted=deleted)
        case ("subjects", subject, "versions", version, "schema"):
            if method == "GET":
                return str(store.version(subject, version, deleted=deleted)["schema"])
        case ("schemas", "types"):
            if method == "GET":
                return list(SCHEMA_TYPES)
        case ("schemas", "ids", raw_id):
            if method == "GET":
                return store.schema(_schema_id(raw_id))
        case ("schemas", "ids", raw_id, "schema"):
            if method == "GET":
                return str(store.schema(_schema_id(raw_id))["schema"])
        case ("schemas", "ids", raw_id, "versions"):
            if method == "GET":
                return _page(store.schema_versions(_schema_id(raw_id), deleted=deleted), query)
        case ("schemas", "ids", raw_id, "subjects"):
            if method == "GET":
                return _page(store.schema_subjects(_schema_id(raw_id), deleted=deleted), query)
        case ("config",) | ("config", _):
            scope = seg[1] if len(seg) == 2 else None
            if method == "GET":
                level = store.config(scope, default_to_global=_flag(query, "defaultToGlobal"))
                return {"compatibilityLevel": level}
            if method == "PUT":
                store.set_config(body, scope)
                # Confluent echoes the update request.
                return dict(body)
        case _:
            raise _framework_error(404, "Not Found")
    raise _framework_error(405, "Method Not Allowed")


class _Server(ThreadingHTTPServer):
    # Handler threads must not keep a stopping process alive.
    daemon_threads = True
    store: SchemaStore


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.0: one request per connection, so no idle keep-alive connection (and its
    # thread) outlives stop(); serdes cache ids, so the registry sees few requests.
    protocol_version = "HTTP/1.0"
    server_version = "greenflow-schema-registry"

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: stdout carries only the ready line in process mode."""

    def _dispatch(self, method: str) -> None:
        store = cast(_Server, self.server).store
        try:
            status, value = 200, _route(store, self._request(method))
        except RegistryError as exc:
            status, value = exc.status, exc.payload()
        except Exception as exc:  # a bug here must still answer, not drop the connection
            status, value = 500, {"error_code": 500, "message": f"Internal Server Error: {exc}"}
        # The bare-schema endpoints answer the schema text itself, unquoted (Confluent's
        # "Get schema string by version"); everything else is JSON.
        payload = value if isinstance(value, str) else json.dumps(value)
        self._send(status, payload.encode(), self._response_type())

    def _request(self, method: str) -> _Request:
        url = urlsplit(self.path)
        # Split before unquoting: clients percent-encode "/" inside subject names.
        segments = tuple(unquote(s) for s in url.path.split("/") if s)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length > 0 else b""
        body: Mapping[str, Any] | None = None
        if raw:
            content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
            if content_type and content_type not in _REQUEST_CONTENT_TYPES:
                raise _framework_error(415, "Unsupported Media Type")
            try:
                parsed = json.loads(raw)
            except ValueError as exc:
                raise RegistryError(400, 400, f"Unexpected request body: {exc}") from exc
            if not isinstance(parsed, dict):
                raise RegistryError(400, 400, "Expected a JSON object as request body")
            body = parsed
        return _Request(method, segments, parse_qs(url.query, keep_blank_values=True), body)

    def _response_type(self) -> str:
        # Confluent prefers its v1 type; answer plain JSON to a client that asks only for it.
        accept = (self.headers.get("Accept") or "").lower()
        if accept and "application/json" in accept and "schemaregistry" not in accept:
            return "application/json"
        return CONTENT_TYPE

    def _send(self, status: int, payload: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


class SchemaRegistry:
    """The stand-in server: ``with SchemaRegistry() as reg:`` then give clients ``reg.url``.

    ``port=0`` lets the OS choose a free port; :attr:`url` and :attr:`port` are known once
    started. The state lives in :attr:`store` and is kept across ``stop()``/``start()``.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self._requested_port = port
        self.store = SchemaStore()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> SchemaRegistry:
        if self._server is not None:
            return self
        server = _Server((self.host, self._requested_port), _Handler)
        server.store = self.store
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="schema-registry",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None or self._thread is None:
            return
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
        self._server = self._thread = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the schema registry is not running")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """``http://HOST:PORT``; a wildcard bind address is reported as 127.0.0.1."""
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host
        return f"http://{host}:{self.port}"

    def __enter__(self) -> SchemaRegistry:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until SIGTERM or SIGINT; print the ready line once listening."""
    parser = argparse.ArgumentParser(
        prog="python -m greenflow_theodolite.registry",
        description="In-memory stand-in for Confluent Schema Registry (REST API v1).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (IPv4)")
    # 8081 is Confluent's default listener port.
    parser.add_argument("--port", type=int, default=8081, help="port; 0 picks a free one")
    args = parser.parse_args(argv)

    stopping = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    registry = SchemaRegistry(args.host, args.port).start()
    try:
        print(f"{READY_PREFIX} url={registry.url}", flush=True)
        # A timed wait, so the main thread wakes to run the signal handler promptly.
        while not stopping.wait(0.5):
            pass
    finally:
        registry.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
