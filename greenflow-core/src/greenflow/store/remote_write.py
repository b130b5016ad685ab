"""Prometheus remote write (protocol 1.0) of samples, next to the local store.

When a plan names a remote-write URL (Prometheus with ``--web.enable-remote-write-receiver``,
VictoriaMetrics, Mimir, Thanos receive...), the runner hands every sample it stores to a
:class:`RemoteWriter` as well::

    writer = RemoteWriter("http://127.0.0.1:8428/api/v1/write", labels={"lab": "rack-3"})
    writer.write(experiment, run_id, Phase.MEASURE, samples)   # never blocks on the network
    ...
    writer.close()                                             # sends what is left

Each series is labelled ``__name__`` (the sample's metric, sanitised to the Prometheus
name charset ``[a-zA-Z_:][a-zA-Z0-9_:]*``), ``experiment``, ``run_id``, ``phase``,
``method``, ``host``, ``unit``, then the sample's own labels (names sanitised to
``[a-zA-Z_][a-zA-Z0-9_]*``; one that collides with a label above becomes
``exported_<name>``, as Prometheus does for scraped labels), then the writer's extra
``labels`` (lowest precedence). Labels with an empty value are left out, as Prometheus
would drop them. Timestamps are Unix milliseconds; the samples of a series are sent in
time order, and two samples of a series in the same millisecond keep the last written
(Prometheus would reject the whole request for a duplicate timestamp).

Delivery. :meth:`RemoteWriter.write` only buffers: full batches of ``batch_size`` samples
go to a queue that one background thread sends, so a slow or down endpoint never delays
a phase boundary. A request is retried with exponential backoff (``backoff_s`` × 2ⁿ,
at most :data:`MAX_BACKOFF_S`, or longer when a 429 says ``Retry-After``) on connection
errors, timeouts, 5xx and 429, up to ``max_retries`` retries; any other status (400 for
an out-of-order sample, 401, 404...) is not retried. A batch that cannot be delivered is
dropped with a warning (structlog event ``remote_write.failed`` with the URL and the
reason); past ``max_queued_batches`` waiting batches the oldest is dropped
(``remote_write.dropped``). Nothing here raises into the runner and nothing touches the
local store: remote write is a copy, the store keeps everything whatever happens to it.
URLs in logs never carry credentials: ``user:password@`` is stripped (and sent as HTTP
basic auth), headers are never logged.

Encoding, and why no protobuf library. The payload is a snappy-compressed (raw block
format, not framed) protobuf ``prometheus.WriteRequest``. Remote write 1.0 froze it at four
tiny messages::

    message WriteRequest { repeated TimeSeries timeseries = 1; }  // metadata = 3 unused
    message TimeSeries   { repeated Label labels = 1; repeated Sample samples = 2; }
    message Label        { string name = 1; string value = 2; }
    message Sample       { double value = 1; int64 timestamp = 2; }

- snappy: ``cramjam`` (``cramjam.snappy.compress_raw``). Maintained, binary wheels for
  every platform and Python, no system C library; ``python-snappy`` needs libsnappy's
  headers to build and since 0.7 is itself a wrapper around cramjam.
- protobuf: encoded by hand below (:func:`encode_write_request`, ~40 lines, three wire
  types: varint, 64-bit, length-delimited). The ``protobuf`` package would need code
  generation (protoc from ``grpcio-tools`` at build time, and checked-in generated code
  that protobuf ≥ 5 refuses to import under a different runtime major) or descriptors
  built at run time, and would put one of the most conflict-prone pins in Python (grpc,
  OpenTelemetry and ML stacks all pin it) into every environment greenflow-core is
  installed in, for six scalar fields that will not change. The encoder is checked
  against two independent decoders, real VictoriaMetrics and Prometheus receivers, in
  ``tests/integration/test_remote_write.py``; :func:`decode_write_request` (a minimal
  decoder that skips unknown fields) is there for tests and debugging.
"""

from __future__ import annotations

import base64
import collections
import enum
import functools
import http.client
import math
import re
import struct
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any

import attrs
import cramjam
import structlog

from greenflow.api.context import Sample
from greenflow.plan.validators import at_least, http_url, label_map, non_negative, positive
from greenflow.store.redact import redact_text, strip_userinfo

log = structlog.get_logger("greenflow.store.remote_write")

#: ``X-Prometheus-Remote-Write-Version`` of protocol 1.0.
PROTOCOL_VERSION = "0.1.0"
#: Longest wait between two attempts, whatever ``backoff_s`` and ``Retry-After`` say.
MAX_BACKOFF_S = 30.0
#: Labels every series gets from the writer; a sample's own label of the same name is
#: renamed ``exported_<name>``.
STANDARD_LABELS = ("__name__", "experiment", "run_id", "phase", "method", "host", "unit")

_NOT_METRIC_CHAR = re.compile(r"[^a-zA-Z0-9_:]")
_NOT_LABEL_CHAR = re.compile(r"[^a-zA-Z0-9_]")

#: A series: its labels as ``(name, value)`` pairs sorted by name.
SeriesLabels = tuple[tuple[str, str], ...]


# --- names -------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4096)
def sanitize_metric_name(name: str) -> str:
    """``name`` in the Prometheus metric-name charset: other characters become ``_``, and
    a leading digit (or an empty name) gets a ``_`` in front (``cpu.seconds`` → ``cpu_seconds``)."""
    clean = _NOT_METRIC_CHAR.sub("_", name)
    return clean if clean and not clean[0].isdigit() else f"_{clean}"


@functools.lru_cache(maxsize=4096)
def sanitize_label_name(name: str) -> str:
    """``name`` in the Prometheus label-name charset (no ``:``), like :func:`sanitize_metric_name`."""
    clean = _NOT_LABEL_CHAR.sub("_", name)
    return clean if clean and not clean[0].isdigit() else f"_{clean}"


def _basic_auth(url: str) -> str | None:
    parts = urllib.parse.urlsplit(url)
    if parts.username is None:
        return None
    user = urllib.parse.unquote(parts.username)
    password = urllib.parse.unquote(parts.password or "")
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


# --- wire format -------------------------------------------------------------------------


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _len_delimited(tag: int, payload: bytes) -> bytes:
    return bytes((tag,)) + _varint(len(payload)) + payload


# Tags are (field number << 3) | wire type: 0 varint, 1 64-bit, 2 length-delimited.
_TAG_TIMESERIES = 0x0A  # WriteRequest.timeseries = 1
_TAG_LABEL = 0x0A  # TimeSeries.labels = 1
_TAG_SAMPLE = 0x12  # TimeSeries.samples = 2
_TAG_NAME = 0x0A  # Label.name = 1
_TAG_VALUE = 0x12  # Label.value = 2
_TAG_SAMPLE_VALUE = 0x09  # Sample.value = 1 (double)
_TAG_SAMPLE_TIMESTAMP = 0x10  # Sample.timestamp = 2 (int64)
_DOUBLE = struct.Struct("<d")


def _string(text: str) -> bytes:
    return text.encode("utf-8", errors="replace")


def encode_write_request(
    timeseries: Iterable[tuple[Sequence[tuple[str, str]], Sequence[tuple[int, float]]]],
) -> bytes:
    """The protobuf ``WriteRequest`` (not compressed) of ``(labels, samples)`` pairs.

    ``labels`` are ``(name, value)`` pairs, sent in the given order (the protocol wants
    them sorted by name); ``samples`` are ``(timestamp_ms, value)`` pairs, in the given
    order (the protocol wants time order).
    """
    out = bytearray()
    for labels, samples in timeseries:
        series = bytearray()
        for name, label_value in labels:
            series += _len_delimited(
                _TAG_LABEL,
                _len_delimited(_TAG_NAME, _string(name))
                + _len_delimited(_TAG_VALUE, _string(label_value)),
            )
        for timestamp_ms, value in samples:
            sample = (
                bytes((_TAG_SAMPLE_VALUE,))
                + _DOUBLE.pack(value)
                + bytes((_TAG_SAMPLE_TIMESTAMP,))
                + _varint(timestamp_ms & 0xFFFF_FFFF_FFFF_FFFF)  # int64: two's complement
            )
            series += _len_delimited(_TAG_SAMPLE, sample)
        out += _len_delimited(_TAG_TIMESERIES, bytes(series))
    return bytes(out)


@attrs.frozen
class DecodedSeries:
    """One ``TimeSeries`` of a decoded ``WriteRequest``."""

    labels: dict[str, str]
    #: ``(timestamp_ms, value)`` in the order they were sent.
    samples: list[tuple[int, float]]


def _fields(data: bytes) -> Iterator[tuple[int, int, Any]]:
    """``(field number, wire type, value)`` of a protobuf message: an int for varints,
    bytes for the rest."""
    pos, end = 0, len(data)

    def varint() -> int:
        nonlocal pos
        result = shift = 0
        while True:
            if pos >= end:
                raise ValueError("truncated varint")
            byte = data[pos]
            pos += 1
            result |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return result
            shift += 7

    while pos < end:
        key = varint()
        field, wire = key >> 3, key & 7
        value: Any
        if wire == 0:
            value = varint()
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            value, pos = data[pos : pos + size], pos + size
        elif wire == 2:
            size = varint()
            value, pos = data[pos : pos + size], pos + size
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        if pos > end:
            raise ValueError("truncated message")
        yield field, wire, value


def decode_write_request(data: bytes) -> list[DecodedSeries]:
    """The series of a protobuf ``WriteRequest`` (not compressed); unknown fields are skipped."""
    result = []
    for field, wire, series_bytes in _fields(data):
        if (field, wire) != (1, 2):
            continue
        labels: dict[str, str] = {}
        samples: list[tuple[int, float]] = []
        for f, w, value in _fields(series_bytes):
            if (f, w) == (1, 2):
                label = {lf: lv for lf, lw, lv in _fields(value) if lw == 2}
                labels[label.get(1, b"").decode()] = label.get(2, b"").decode()
            elif (f, w) == (2, 2):
                sample_value, timestamp = 0.0, 0
                for sf, sw, sv in _fields(value):
                    if (sf, sw) == (1, 1):
                        sample_value = _DOUBLE.unpack(sv)[0]
                    elif (sf, sw) == (2, 0):
                        timestamp = sv - (1 << 64) if sv >= 1 << 63 else sv
                samples.append((timestamp, sample_value))
        result.append(DecodedSeries(labels, samples))
    return result


def compress(payload: bytes) -> bytes:
    """Snappy block format (what ``Content-Encoding: snappy`` means in remote write)."""
    return bytes(cramjam.snappy.compress_raw(payload))


def decompress(body: bytes) -> bytes:
    return bytes(cramjam.snappy.decompress_raw(body))


def decode_body(body: bytes) -> list[DecodedSeries]:
    """The series of a remote-write request body (snappy-compressed ``WriteRequest``)."""
    return decode_write_request(decompress(body))


# --- configuration -----------------------------------------------------------------------


def _dict_of_str(labels: Mapping[str, str]) -> dict[str, str]:
    return dict(labels)


@attrs.frozen
class RemoteWriteConfig:
    """The plan's ``[remote_write]`` table.

    ::

        [remote_write]
        url = "http://127.0.0.1:8428/api/v1/write"   # VictoriaMetrics; Prometheus: :9090
        batch_size = 500          # samples per request
        max_retries = 5           # retries of one request (connection errors, 5xx, 429)
        timeout_s = 10            # per request
        labels = { lab = "rack-3", campaign = "2025-06" }   # added to every series

    Credentials go in the URL (``https://user:password@host/...``, sent as basic auth);
    the stored plan and the logs never show them.
    """

    url: str = attrs.field(validator=http_url)
    batch_size: int = attrs.field(default=500, validator=at_least(1))
    max_retries: int = attrs.field(default=5, validator=at_least(0))
    timeout_s: float = attrs.field(default=10.0, validator=positive)
    backoff_s: float = attrs.field(default=0.5, validator=non_negative)
    labels: Mapping[str, str] = attrs.field(
        factory=dict,
        converter=_dict_of_str,
        validator=label_map(reserved=STANDARD_LABELS, why="GreenFlow sets them on every series"),
    )

    @property
    def safe_url(self) -> str:
        """The URL without credentials."""
        return strip_userinfo(self.url)

    def writer(self) -> RemoteWriter:
        """A :class:`RemoteWriter` with this configuration."""
        return RemoteWriter(
            self.url,
            labels=self.labels,
            batch_size=self.batch_size,
            max_retries=self.max_retries,
            backoff_s=self.backoff_s,
            timeout_s=self.timeout_s,
        )


# --- the writer --------------------------------------------------------------------------


@attrs.define
class RemoteWriteStats:
    """What a writer did so far, in samples (and HTTP requests)."""

    #: Accepted by the endpoint (2xx).
    sent: int = 0
    #: Given up on: rejected (4xx other than 429) or still failing after every retry.
    failed: int = 0
    #: Never tried: the queue overflowed, or the writer was closed before sending them.
    dropped: int = 0
    #: HTTP requests made, retries included.
    requests: int = 0


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is an error: following it would turn the POST into a GET (301/302) or
    carry the credentials to another host."""

    def redirect_request(self, *_args: Any, **_kwargs: Any) -> None:
        return None


@attrs.frozen
class _Outcome:
    ok: bool
    retryable: bool = False
    reason: str = ""
    status: int | None = None
    retry_after_s: float | None = None


_Entry = tuple[SeriesLabels, int, float]  # series, timestamp ms, value


class RemoteWriter:
    """Buffers samples and sends them in batches to one remote-write endpoint.

    Thread-safe. :meth:`write` never raises and never waits for the network; a
    background thread (started with the first full batch) sends. :meth:`flush` sends the
    partial batch too and waits until the queue is empty; :meth:`close` flushes (for at
    most ``close_timeout_s``), drops whatever is left with a warning and stops the
    thread. Also a context manager that closes on exit.

    Raises ``ValueError`` at construction for a URL that is not http(s), a count that is
    not an integer (``batch_size`` ≥ 1, ``max_retries`` ≥ 0, ``max_queued_batches`` ≥ 1),
    and extra ``labels`` with invalid or standard names (the checks of
    :class:`RemoteWriteConfig`): configuration errors show when the plan is checked, never
    in the middle of a run.
    """

    def __init__(
        self,
        url: str,
        *,
        labels: Mapping[str, str] | None = None,
        batch_size: int = 500,
        max_retries: int = 5,
        backoff_s: float = 0.5,
        timeout_s: float = 10.0,
        headers: Mapping[str, str] | None = None,
        max_queued_batches: int = 100,
        close_timeout_s: float = 60.0,
    ) -> None:
        # The plan's checks and messages: a writer made in code is held to the same rules.
        RemoteWriteConfig(
            url,
            batch_size=batch_size,
            max_retries=max_retries,
            timeout_s=timeout_s,
            backoff_s=backoff_s,
            labels=labels or {},
        )
        if isinstance(max_queued_batches, bool) or not (
            isinstance(max_queued_batches, int) and max_queued_batches >= 1
        ):
            msg = f"max_queued_batches: expected an integer ≥ 1, got {max_queued_batches!r}"
            raise ValueError(msg)
        self.url = strip_userinfo(url)
        self.batch_size = int(batch_size)
        self.max_retries = int(max_retries)
        self.backoff_s = float(backoff_s)
        self.timeout_s = float(timeout_s)
        self.max_queued_batches = int(max_queued_batches)
        self.close_timeout_s = close_timeout_s
        self._extra = tuple(sorted((labels or {}).items()))
        self._headers = {
            "Content-Encoding": "snappy",
            "Content-Type": "application/x-protobuf",
            "User-Agent": "greenflow-remote-write",
            "X-Prometheus-Remote-Write-Version": PROTOCOL_VERSION,
        }
        auth = _basic_auth(url)
        if auth is not None:
            self._headers["Authorization"] = auth
        self._headers.update(headers or {})
        self._opener = urllib.request.build_opener(_NoRedirect)

        self._cond = threading.Condition()
        self._pending: list[_Entry] = []
        self._queue: collections.deque[list[_Entry]] = collections.deque()
        self._in_flight = False
        self._closed = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._stats = RemoteWriteStats()
        self._series_cache: dict[tuple[Any, ...], SeriesLabels] = {}

    # -- public API --

    @property
    def stats(self) -> RemoteWriteStats:
        """A copy of the counters so far."""
        with self._cond:
            return attrs.evolve(self._stats)

    def write(
        self, experiment: str, run_id: str, phase: str | enum.Enum, samples: Iterable[Sample]
    ) -> None:
        """Buffer ``samples`` of one run and phase; queue every full batch for sending.

        Never raises: anything wrong (a sample that cannot be encoded, a closed writer)
        is logged and the samples concerned are dropped from the remote copy only.
        """
        try:
            phase_name = str(phase.value) if isinstance(phase, enum.Enum) else str(phase)
            entries = [self._entry(experiment, run_id, phase_name, s) for s in samples]
        except Exception as exc:  # bad input must not stop a run
            log.warning(
                "remote_write.failed", url=self.url, reason=f"cannot encode samples: {exc!r}"
            )
            return
        if not entries:
            return
        with self._cond:
            if self._closed:
                self._stats.dropped += len(entries)
                log.warning(
                    "remote_write.dropped",
                    url=self.url,
                    reason="writer is closed",
                    samples=len(entries),
                )
                return
            self._pending.extend(entries)
            if len(self._pending) >= self.batch_size:
                self._pending.sort(key=lambda e: e[1])
                while len(self._pending) >= self.batch_size:
                    self._enqueue(self._pending[: self.batch_size])
                    del self._pending[: self.batch_size]

    def flush(self, timeout_s: float | None = None) -> bool:
        """Queue the partial batch and wait until every queued batch was sent or given up
        on; False if ``timeout_s`` passed first. Never raises."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        with self._cond:
            if self._pending:
                self._pending.sort(key=lambda e: e[1])
                for i in range(0, len(self._pending), self.batch_size):
                    self._enqueue(self._pending[i : i + self.batch_size])
                self._pending.clear()
            while self._queue or self._in_flight:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True

    def close(self, timeout_s: float | None = None) -> None:
        """Flush for at most ``timeout_s`` (default ``close_timeout_s``), then drop what
        is still queued (with a warning), stop retrying and end the sending thread.
        Idempotent; never raises."""
        with self._cond:
            if self._closed:
                return
        self.flush(self.close_timeout_s if timeout_s is None else timeout_s)
        with self._cond:
            self._closed = True
            self._stop.set()
            left = sum(len(b) for b in self._queue)
            self._queue.clear()
            if left:
                self._stats.dropped += left
                log.warning(
                    "remote_write.dropped",
                    url=self.url,
                    reason="not sent before the writer was closed",
                    samples=left,
                )
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(self.timeout_s + 5.0)

    def __enter__(self) -> RemoteWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- building series --

    def _entry(self, experiment: str, run_id: str, phase: str, s: Sample) -> _Entry:
        labels_key = tuple(s.labels.items())
        key = (experiment, run_id, phase, s.metric, s.method, s.host, s.unit, labels_key)
        series = self._series_cache.get(key)
        if series is None:
            series = self._series(key[:7], labels_key)
            if len(self._series_cache) > 100_000:  # a leak guard, not a tuning knob
                self._series_cache.clear()
            self._series_cache[key] = series
        if not math.isfinite(s.timestamp):
            raise ValueError(f"timestamp {s.timestamp!r} of {s.metric}")
        return series, round(s.timestamp * 1000), float(s.value)

    def _series(self, standard: tuple[str, ...], own: Iterable[tuple[str, str]]) -> SeriesLabels:
        experiment, run_id, phase, metric, method, host, unit = standard
        labels = dict(self._extra)
        for name, value in own:
            clean = sanitize_label_name(name)
            labels[f"exported_{clean}" if clean in STANDARD_LABELS else clean] = str(value)
        labels.update(
            __name__=sanitize_metric_name(metric),
            experiment=experiment,
            run_id=run_id,
            phase=phase,
            method=method,
            host=host,
            unit=unit,
        )
        return tuple(sorted((k, v) for k, v in labels.items() if v != ""))

    # -- sending --

    def _enqueue(self, batch: list[_Entry]) -> None:
        """Queue one batch (the caller holds the lock)."""
        if len(self._queue) >= self.max_queued_batches:
            oldest = self._queue.popleft()
            self._stats.dropped += len(oldest)
            log.warning(
                "remote_write.dropped",
                url=self.url,
                samples=len(oldest),
                reason=f"more than {self.max_queued_batches} batches waiting to be sent",
            )
        self._queue.append(batch)
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="greenflow-remote-write", daemon=True
            )
            self._thread.start()
        self._cond.notify_all()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._cond.wait()
                if not self._queue:
                    return
                batch = self._queue.popleft()
                self._in_flight = True
            try:
                self._send(batch)
            except Exception as exc:  # a bug here must not kill the thread silently
                log.warning(
                    "remote_write.failed",
                    url=self.url,
                    samples=len(batch),
                    reason=f"unexpected error: {exc!r}",
                )
                with self._cond:
                    self._stats.failed += len(batch)
            finally:
                with self._cond:
                    self._in_flight = False
                    self._cond.notify_all()

    def _send(self, batch: list[_Entry]) -> None:
        body = compress(encode_write_request(_group(batch)))
        attempt = 0
        while True:
            outcome = self._post(body)
            with self._cond:
                self._stats.requests += 1
                if outcome.ok:
                    self._stats.sent += len(batch)
            if outcome.ok:
                log.debug("remote_write.sent", url=self.url, samples=len(batch), retries=attempt)
                return
            give_up = not outcome.retryable or attempt >= self.max_retries
            delay = 0.0
            if not give_up:
                delay = min(self.backoff_s * 2**attempt, MAX_BACKOFF_S)
                if outcome.retry_after_s is not None:
                    delay = min(max(delay, outcome.retry_after_s), MAX_BACKOFF_S)
                log.debug(
                    "remote_write.retry",
                    url=self.url,
                    reason=outcome.reason,
                    attempt=attempt + 1,
                    delay_s=delay,
                )
                give_up = self._stop.wait(delay)
            if give_up:
                with self._cond:
                    self._stats.failed += len(batch)
                log.warning(
                    "remote_write.failed",
                    url=self.url,
                    reason=outcome.reason,
                    status=outcome.status,
                    samples=len(batch),
                    attempts=attempt + 1,
                    retried=outcome.retryable,
                )
                return
            attempt += 1

    def _post(self, body: bytes) -> _Outcome:
        request = urllib.request.Request(self.url, data=body, headers=self._headers, method="POST")
        try:
            with self._opener.open(request, timeout=self.timeout_s) as resp:
                resp.read()
                return _Outcome(ok=True, status=resp.status)
        except urllib.error.HTTPError as exc:
            with exc:
                try:
                    detail = exc.read(500).decode("utf-8", errors="replace").strip()
                except Exception:
                    detail = ""
            status = exc.code
            reason = f"HTTP {status} {exc.reason}" + (f": {detail}" if detail else "")
            if 300 <= status < 400:
                reason += f" (redirect to {strip_userinfo(exc.headers.get('Location', '?'))})"
            retryable = status >= 500 or status == 429
            return _Outcome(
                ok=False,
                retryable=retryable,
                reason=self._safe(reason),
                status=status,
                retry_after_s=_retry_after(exc.headers.get("Retry-After"))
                if status == 429
                else None,
            )
        except urllib.error.URLError as exc:
            return _Outcome(
                ok=False, retryable=True, reason=self._safe(f"cannot connect: {exc.reason}")
            )
        except (OSError, http.client.HTTPException) as exc:  # timeouts, resets, bad replies
            return _Outcome(
                ok=False, retryable=True, reason=self._safe(f"{type(exc).__name__}: {exc}")
            )

    def _safe(self, text: str) -> str:
        return redact_text(text)


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: the exponential backoff is good enough


def _group(batch: Sequence[_Entry]) -> list[tuple[SeriesLabels, list[tuple[int, float]]]]:
    """Samples by series, each series in time order with one value per millisecond (the
    last written)."""
    by_series: dict[SeriesLabels, dict[int, float]] = {}
    for series, timestamp_ms, value in batch:
        by_series.setdefault(series, {})[timestamp_ms] = value
    return [(series, sorted(points.items())) for series, points in by_series.items()]
