"""Real parts for integration tests: a Prometheus server and an exporter it scrapes."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import NamedTuple

import pytest

from greenflow.testing.prometheus import INSTALL_HINT, PrometheusServer, find_prometheus

#: How often the test Prometheus scrapes; the tests' tolerances are stated in it.
SCRAPE_INTERVAL_S = 0.5


class EnergyExporter:
    """Serves ``test_energy_joules_total``, a counter rising at exactly ``rate_w`` J/s.

    The value is computed from the clock at each scrape, so the only error in what
    Prometheus stores is when it scrapes, which is what the tests' tolerances are about.
    :meth:`reset` makes the counter start again from zero, like a restarted exporter.
    """

    rate_w = 50.0

    def __init__(self) -> None:
        self._t0 = time.time() - 1000.0  # the counter has been running for a while
        self._lock = threading.Lock()
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path != "/metrics":
                    self.send_error(404)
                    return
                body = (
                    "# HELP test_energy_joules_total Energy of a pretend host.\n"
                    "# TYPE test_energy_joules_total counter\n"
                    f'test_energy_joules_total{{domain="package"}} {exporter.value_at(time.time()):.6f}\n'
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, fmt: str, *args: object) -> None:
                pass  # one line per scrape would drown the test output

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def target(self) -> str:
        host, port = self._server.server_address[:2]
        return f"{host!s}:{port}"

    def value_at(self, t: float) -> float:
        with self._lock:
            return self.rate_w * (t - self._t0)

    def reset(self) -> float:
        """Restart the counter from zero now; return when."""
        with self._lock:
            self._t0 = time.time()
            return self._t0

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


@pytest.fixture(scope="session")
def prometheus_binary() -> str:
    binary = find_prometheus()
    if binary is None:
        pytest.skip(f"the prometheus binary is not installed; install it with: {INSTALL_HINT}")
    return binary


class Scraped(NamedTuple):
    """A Prometheus scraping two exporters: ``steady`` is never reset, ``restarting`` may be."""

    server: PrometheusServer
    steady: EnergyExporter
    restarting: EnergyExporter


def _serve(work_dir: Path, binary: str) -> Iterator[Scraped]:
    steady, restarting = EnergyExporter(), EnergyExporter()
    server = PrometheusServer(
        work_dir,
        targets=[steady.target, restarting.target],
        scrape_interval_s=SCRAPE_INTERVAL_S,
        binary=binary,
    )
    try:
        server.start()
        yield Scraped(server, steady, restarting)
    finally:
        server.stop()
        steady.close()
        restarting.close()


@pytest.fixture(scope="module")
def scraped(prometheus_binary: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scraped]:
    """A real Prometheus scraping two :class:`EnergyExporter`, shared by a module's tests.

    Prometheus 2.x applies a new scrape configuration in ticks of 5 s, so its first
    scrape comes about 5 s after it is ready: sharing one server saves that per test.
    """
    yield from _serve(tmp_path_factory.mktemp("prometheus"), prometheus_binary)


@pytest.fixture
def own_scraped(prometheus_binary: str, tmp_path: Path) -> Iterator[Scraped]:
    """Like ``scraped`` but for one test, which may stop the server."""
    yield from _serve(tmp_path / "prometheus", prometheus_binary)


@pytest.fixture
def test_plugins() -> None:
    """The test fixture greenflow-test-plugins (plugins that misbehave on purpose), or a
    skip saying how to install it."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        version("greenflow-test-plugins")
    except PackageNotFoundError:
        pytest.skip(
            "the test fixture greenflow-test-plugins is not installed: "
            "pip install -e greenflow-core/tests/fixtures/test-plugins"
        )
