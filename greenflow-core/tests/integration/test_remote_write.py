"""Remote write against real receivers: VictoriaMetrics and Prometheus (Debian packages,
started by the tests on loopback), and a tiny local HTTP server for what real servers
cannot be made to do on cue (fail twice, then accept; count and decode each request)."""

from __future__ import annotations

import base64
import math
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from structlog.testing import capture_logs

from greenflow.api import Phase, Sample, wait_until
from greenflow.store.redact import strip_userinfo
from greenflow.store.remote_write import (
    PROTOCOL_VERSION,
    DecodedSeries,
    RemoteWriteConfig,
    RemoteWriter,
    decode_body,
    decode_write_request,
    encode_write_request,
    sanitize_label_name,
    sanitize_metric_name,
)
from greenflow.testing.prometheus import (
    VM_INSTALL_HINT,
    PrometheusServer,
    VictoriaMetricsServer,
    find_victoria_metrics,
)

RUN_ID = "r0007"


# --- what is written, and what must come back ----------------------------------------------


def _known_samples(t0: float) -> list[Sample]:
    """Two series of ten samples each, written newest first (the writer must sort).

    ``host.power-watts`` must arrive as ``host_power_watts``; its own ``host`` label as
    ``exported_host``; its timestamps carry milliseconds.
    """
    energy = [
        Sample(
            t0 + i,
            "host_energy_joules",
            100 + 12.5 * i,
            "J",
            "rapl",
            "node-1",
            {"domain": "package"},
        )
        for i in range(10)
    ]
    power = [
        Sample(
            t0 + i + 0.123,
            "host.power-watts",
            40 + i / 8,
            "W",
            "model:linear",
            "node-2",
            {"host": "inner", "zone": "z1"},
        )
        for i in range(10)
    ]
    return list(reversed(energy + power))


def _expected(
    experiment: str, t0: float
) -> dict[str, tuple[dict[str, str], list[tuple[int, float]]]]:
    """By ``__name__``: the labels and the ``(timestamp_ms, value)`` points the server must hold."""
    ms0 = round(t0 * 1000)
    common = {"experiment": experiment, "run_id": RUN_ID, "phase": "measure", "lab": "ci"}
    return {
        "host_energy_joules": (
            {
                **common,
                "__name__": "host_energy_joules",
                "method": "rapl",
                "host": "node-1",
                "unit": "J",
                "domain": "package",
            },
            [(ms0 + 1000 * i, 100 + 12.5 * i) for i in range(10)],
        ),
        "host_power_watts": (
            {
                **common,
                "__name__": "host_power_watts",
                "method": "model:linear",
                "host": "node-2",
                "unit": "W",
                "exported_host": "inner",
                "zone": "z1",
            },
            [(ms0 + 1000 * i + 123, 40 + i / 8) for i in range(10)],
        ),
    }


def _t0() -> float:
    """Whole seconds, a few minutes ago: inside any server's accepted window."""
    return float(math.floor(time.time()) - 300)


def _write_known(url: str, experiment: str, t0: float) -> RemoteWriter:
    writer = RemoteWriter(url, labels={"lab": "ci"}, max_retries=2, backoff_s=0.05)
    with capture_logs() as logs:
        writer.write(experiment, RUN_ID, Phase.MEASURE, _known_samples(t0))
        assert writer.flush(timeout_s=30)
        writer.close()
    assert [e for e in logs if e["log_level"] == "warning"] == []
    assert writer.stats.sent == 20 and writer.stats.failed == 0
    return writer


# --- real receivers ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def victoria_metrics(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VictoriaMetricsServer]:
    binary = find_victoria_metrics()
    if binary is None:
        pytest.skip(
            f"the victoria-metrics binary is not installed; install it with: {VM_INSTALL_HINT}"
        )
    with VictoriaMetricsServer(tmp_path_factory.mktemp("vm"), binary=binary) as server:
        yield server


@pytest.fixture(scope="module")
def prometheus_receiver(
    prometheus_binary: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PrometheusServer]:
    with PrometheusServer(
        tmp_path_factory.mktemp("prom-rw"), binary=prometheus_binary, remote_write_receiver=True
    ) as server:
        yield server


def test_victoria_metrics_stores_what_was_written(victoria_metrics: VictoriaMetricsServer) -> None:
    t0 = _t0()
    _write_known(victoria_metrics.write_url, "rw-vm", t0)
    expected = _expected("rw-vm", t0)

    got: list[dict[str, Any]] = []

    def exported() -> tuple[bool, str]:
        got[:] = victoria_metrics.export('{experiment="rw-vm"}', start=t0 - 60, end=t0 + 60)
        return len(got) == 2 and all(len(s["values"]) == 10 for s in got), f"{got!r:.300}"

    wait_until(exported, what="the written series in VictoriaMetrics", timeout_s=15)
    for series in got:
        labels, points = expected[series["metric"]["__name__"]]
        assert series["metric"] == labels
        assert series["timestamps"] == [t for t, _ in points]
        assert series["values"] == pytest.approx([v for _, v in points], rel=1e-12)

    # The Prometheus query API agrees (what Grafana would read).
    result = victoria_metrics.query_range(
        'host_energy_joules{experiment="rw-vm", run_id="r0007", phase="measure", method="rapl"}',
        start=t0,
        end=t0 + 9,
        step_s=1,
    )
    assert len(result) == 1
    assert [(round(float(t) * 1000), float(v)) for t, v in result[0]["values"]] == (
        expected["host_energy_joules"][1]
    )


def test_prometheus_stores_what_was_written(prometheus_receiver: PrometheusServer) -> None:
    t0 = _t0()
    _write_known(prometheus_receiver.write_url, "rw-prom", t0)
    expected = _expected("rw-prom", t0)

    # A range selector in an instant query returns the raw samples, timestamps included.
    result = prometheus_receiver.query('{experiment="rw-prom"}[1h]')
    assert len(result) == 2
    for series in result:
        labels, points = expected[series["metric"]["__name__"]]
        assert series["metric"] == labels
        assert [(round(float(t) * 1000), float(v)) for t, v in series["values"]] == points

    result = prometheus_receiver.query_range(
        'host_energy_joules{experiment="rw-prom", run_id="r0007", phase="measure", method="rapl"}',
        start=t0,
        end=t0 + 9,
        step_s=1,
    )
    assert len(result) == 1
    assert [(round(float(t) * 1000), float(v)) for t, v in result[0]["values"]] == (
        expected["host_energy_joules"][1]
    )


def test_prometheus_rejection_is_logged_not_retried(prometheus_receiver: PrometheusServer) -> None:
    """A sample older than what the series already holds: Prometheus answers 400, which
    is not retried; the reason reaches the log."""
    t0 = _t0()
    _write_known(prometheus_receiver.write_url, "rw-ooo", t0)
    writer = RemoteWriter(prometheus_receiver.write_url, labels={"lab": "ci"}, backoff_s=0.05)
    late = Sample(t0 - 10, "host_energy_joules", 1.0, "J", "rapl", "node-1", {"domain": "package"})
    with capture_logs() as logs:
        writer.write("rw-ooo", RUN_ID, "measure", [late])
        writer.close()
    failed = [e for e in logs if e["event"] == "remote_write.failed"]
    assert len(failed) == 1, logs
    assert failed[0]["status"] == 400 and failed[0]["retried"] is False
    assert "out of order" in failed[0]["reason"] or "out of bounds" in failed[0]["reason"]
    assert writer.stats.requests == 1 and writer.stats.failed == 1


# --- a receiver that does what it is told ------------------------------------------------


class Receiver:
    """Records every POST (headers and body) and answers with ``statuses`` in turn, then 204."""

    def __init__(self, statuses: Sequence[int | tuple[int, str]] = ()) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self._statuses = list(statuses)
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver._lock:
                    receiver.requests.append((dict(self.headers.items()), body))
                    answer = receiver._statuses.pop(0) if receiver._statuses else 204
                status, text = answer if isinstance(answer, tuple) else (answer, "")
                self.send_response(status)
                if status == 429:
                    self.send_header("Retry-After", "0")
                self.send_header("Content-Length", str(len(text.encode())))
                self.end_headers()
                self.wfile.write(text.encode())

            def log_message(self, fmt: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )
        self._thread.start()
        host, port = self._server.server_address[:2]
        self.url = f"http://{host!s}:{port}/api/v1/write"

    def decoded(self) -> list[list[DecodedSeries]]:
        return [decode_body(body) for _, body in self.requests]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


@pytest.fixture
def receiver_factory() -> Iterator[Any]:
    made: list[Receiver] = []

    def make(statuses: Sequence[int | tuple[int, str]] = ()) -> Receiver:
        made.append(Receiver(statuses))
        return made[-1]

    yield make
    for r in made:
        r.close()


def _samples(n: int, t0: float = 1_700_000_000.0) -> list[Sample]:
    """``n`` samples over three hosts, one per 10 ms, values = index."""
    return [
        Sample(t0 + i / 100, "power_watts", float(i), "W", "rapl", f"h{i % 3}") for i in range(n)
    ]


@pytest.mark.parametrize("failures", [(503, 503), (429, 429), (500, 502)])
def test_retries_until_accepted(receiver_factory: Any, failures: tuple[int, int]) -> None:
    receiver = receiver_factory(failures)
    writer = RemoteWriter(receiver.url, labels={}, max_retries=5, backoff_s=0.01)
    with capture_logs() as logs:
        writer.write("exp", RUN_ID, Phase.MEASURE, _samples(10))
        assert writer.flush(timeout_s=10)
    assert len(receiver.requests) == 3
    assert [e for e in logs if e["log_level"] == "warning"] == []
    # The same payload every time, and the last one was accepted.
    assert len({body for _, body in receiver.requests}) == 1
    assert writer.stats.sent == 10 and writer.stats.requests == 3 and writer.stats.failed == 0
    writer.close()


def test_batches_of_batch_size(receiver_factory: Any) -> None:
    receiver = receiver_factory()
    writer = RemoteWriter(receiver.url, labels={"lab": "ci"}, batch_size=500)
    samples = _samples(1200)
    writer.write("exp", RUN_ID, Phase.MEASURE, samples[::-1])
    assert writer.flush(timeout_s=10)
    writer.close()

    assert len(receiver.requests) == 3
    for headers, _ in receiver.requests:
        assert headers["Content-Encoding"] == "snappy"
        assert headers["Content-Type"] == "application/x-protobuf"
        assert headers["X-Prometheus-Remote-Write-Version"] == PROTOCOL_VERSION == "0.1.0"
    requests = receiver.decoded()
    assert [sum(len(s.samples) for s in r) for r in requests] == [500, 500, 200]

    seen = []
    for request in requests:
        for series in request:
            assert list(series.labels) == sorted(series.labels)  # labels sorted by name
            assert series.samples == sorted(series.samples)  # samples in time order
            assert series.labels["__name__"] == "power_watts"
            assert series.labels["lab"] == "ci" and series.labels["phase"] == "measure"
            seen += [(series.labels["host"], t, v) for t, v in series.samples]
    want = [(s.host, round(s.timestamp * 1000), s.value) for s in samples]
    assert sorted(seen) == sorted(want)
    # Batches were cut in time order: each request is older than the next.
    spans = [[t for s in r for t, _ in s.samples] for r in requests]
    assert max(spans[0]) < min(spans[1]) and max(spans[1]) < min(spans[2])
    assert writer.stats.sent == 1200 and writer.stats.requests == 3


def test_client_errors_are_not_retried(receiver_factory: Any) -> None:
    receiver = receiver_factory([(400, "out of order sample")])
    writer = RemoteWriter(receiver.url, labels={}, backoff_s=0.01)
    with capture_logs() as logs:
        writer.write("exp", RUN_ID, "measure", _samples(5))
        writer.close()
    assert len(receiver.requests) == 1
    (failed,) = [e for e in logs if e["event"] == "remote_write.failed"]
    assert failed["log_level"] == "warning" and failed["status"] == 400
    assert "out of order sample" in failed["reason"] and failed["url"] == receiver.url
    assert writer.stats.failed == 5 and writer.stats.sent == 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_down_endpoint_warns_and_never_raises() -> None:
    url = f"http://127.0.0.1:{_free_port()}/api/v1/write"
    writer = RemoteWriter(url, labels={}, max_retries=2, backoff_s=0.01)
    with capture_logs() as logs:
        writer.write("exp", RUN_ID, Phase.MEASURE, _samples(7))  # must not raise
        assert writer.flush(timeout_s=10)
        writer.close()
    (failed,) = [e for e in logs if e["event"] == "remote_write.failed"]
    assert failed["log_level"] == "warning"
    assert failed["url"] == url and "refused" in failed["reason"].lower()
    assert failed["attempts"] == 3 and failed["samples"] == 7
    assert writer.stats.requests == 3 and writer.stats.failed == 7


def test_credentials_are_sent_but_never_logged(receiver_factory: Any) -> None:
    receiver = receiver_factory([(401, "who are you")])
    secret_url = receiver.url.replace("http://", "http://alice:s3cr%40t@")
    writer = RemoteWriter(secret_url, labels={}, backoff_s=0.01)
    with capture_logs() as logs:
        writer.write("exp", RUN_ID, Phase.MEASURE, _samples(3))
        writer.close()
    headers, _ = receiver.requests[0]
    assert headers["Authorization"] == "Basic " + base64.b64encode(b"alice:s3cr@t").decode()
    assert logs and "s3cr" not in repr(logs) and "alice" not in repr(logs)
    assert writer.url == receiver.url == strip_userinfo(secret_url)

    # Nothing listening: the connection error does not show them either.
    down = f"http://bob:hunter2@127.0.0.1:{_free_port()}/api/v1/write"
    writer = RemoteWriter(down, labels={}, max_retries=0)
    with capture_logs() as logs:
        writer.write("exp", RUN_ID, Phase.MEASURE, _samples(3))
        writer.close()
    assert logs and "hunter2" not in repr(logs) and "bob" not in repr(logs)


def test_close_gives_up_on_a_down_endpoint_within_its_timeout() -> None:
    """A runner closing the writer at the end of an experiment waits at most the timeout,
    however many retries with long backoffs are left."""
    writer = RemoteWriter(
        f"http://127.0.0.1:{_free_port()}/api/v1/write",
        labels={},
        batch_size=10,
        max_retries=5,
        backoff_s=5,
    )
    with capture_logs() as logs:
        writer.write("exp", RUN_ID, Phase.MEASURE, _samples(35))
        started = time.monotonic()
        writer.close(timeout_s=0.5)
        took = time.monotonic() - started
    assert took < 3
    stats = writer.stats
    assert stats.sent == 0 and stats.failed + stats.dropped == 35
    assert {e["event"] for e in logs if e["log_level"] == "warning"} <= {
        "remote_write.failed",
        "remote_write.dropped",
    }
    # After close, writes are dropped with a warning, still without raising.
    with capture_logs() as logs:
        writer.write("exp", RUN_ID, Phase.MEASURE, _samples(1))
    assert [e["event"] for e in logs] == ["remote_write.dropped"]


def test_bad_samples_are_logged_not_raised(receiver_factory: Any) -> None:
    receiver = receiver_factory()
    writer = RemoteWriter(receiver.url, labels={})
    bad = Sample(float("nan"), "x", 1.0, "W", "rapl", "h")
    with capture_logs() as logs:
        writer.write("exp", RUN_ID, Phase.MEASURE, [bad])
        writer.close()
    assert [e["event"] for e in logs] == ["remote_write.failed"]
    assert receiver.requests == []


# --- pieces ------------------------------------------------------------------------------


def test_encoding_round_trips() -> None:
    series = [
        (
            (("__name__", "a"), ("zone", "ü✓")),
            [(1_700_000_000_123, 1.5), (-5, -0.0), (0, math.inf)],
        ),
        ((("__name__", "b"),), []),
    ]
    decoded = decode_write_request(encode_write_request(series))
    assert [(tuple(d.labels.items()), d.samples) for d in decoded] == [
        (labels, list(samples)) for labels, samples in series
    ]
    # Known bytes: WriteRequest{timeseries{labels{name:"a" value:"b"} samples{value:1 timestamp:2}}}
    assert encode_write_request([((("a", "b"),), [(2, 1.0)])]) == bytes.fromhex(
        "0a150a060a0161120162120b09000000000000f03f1002"
    )


def test_same_millisecond_keeps_the_last_value(receiver_factory: Any) -> None:
    receiver = receiver_factory()
    writer = RemoteWriter(receiver.url, labels={})
    t = 1_700_000_000.0
    writer.write(
        "exp",
        RUN_ID,
        Phase.MEASURE,
        [Sample(t, "m", 1.0, "W", "rapl", "h"), Sample(t + 0.0001, "m", 2.0, "W", "rapl", "h")],
    )
    writer.close()
    ((series,),) = receiver.decoded()
    assert series.samples == [(1_700_000_000_000, 2.0)]


def test_names_are_sanitised() -> None:
    assert sanitize_metric_name("host.energy-joules") == "host_energy_joules"
    assert sanitize_metric_name("a:b_c9") == "a:b_c9"
    assert sanitize_metric_name("9lives") == "_9lives"
    assert sanitize_label_name("k8s:pod.name") == "k8s_pod_name"
    assert sanitize_label_name("") == "_"


def test_config_validates_and_builds_a_writer() -> None:
    """A config builds a writer; both refuse a bad value with its key and no credential."""
    config = RemoteWriteConfig(url="https://u:p@vm.example:8428/api/v1/write", labels={"lab": "x"})
    assert config.safe_url == "https://vm.example:8428/api/v1/write"
    writer = config.writer()
    assert writer.url == config.safe_url and writer.batch_size == 500
    writer.close()
    for bad, message in (
        (
            {"url": "ftp://u:secret@x/y"},
            r"^url: expected an http\(s\)://host\[:port\] URL, got 'ftp://x/y'$",
        ),
        ({"batch_size": 0}, r"^batch_size: expected an integer ≥ 1, got 0$"),
        ({"max_retries": 1.5}, r"^max_retries: expected an integer ≥ 0, got 1.5$"),
        ({"timeout_s": "10"}, r"^timeout_s: expected a number > 0, got '10'$"),
        (
            {"labels": {"run_id": "x"}},
            r"^labels: expected label names other than .*run_id.*, got 'run_id'$",
        ),
        (
            {"labels": {"bad-name": "x"}},
            r"^labels: expected Prometheus label names .*, got 'bad-name'$",
        ),
    ):
        with pytest.raises(ValueError, match=message):
            RemoteWriteConfig(**{"url": "http://x/api/v1/write", **bad})
        with pytest.raises(ValueError, match=message):
            RemoteWriter(**{"url": "http://x/api/v1/write", **bad})
    with pytest.raises(ValueError, match=r"^max_queued_batches: expected an integer ≥ 1, got 0$"):
        RemoteWriter("http://x/api/v1/write", max_queued_batches=0)
