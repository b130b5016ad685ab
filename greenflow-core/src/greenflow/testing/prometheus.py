"""A real Prometheus server for tests: Debian's (or any) ``prometheus`` binary on loopback.

For plugin tests that read figures back through PromQL (Scaphandre, Kepler, the
``prometheus`` collector)::

    binary = find_prometheus()
    if binary is None:
        pytest.skip(f"no prometheus binary; install it with: {INSTALL_HINT}")
    with PrometheusServer(tmp_path, targets=["127.0.0.1:9100"], binary=binary) as prom:
        collector = PrometheusCollector("p", PrometheusConfig(url=prom.url, queries=...))

The server listens on a free port of 127.0.0.1, keeps its data in ``work_dir`` and
scrapes the given targets every ``scrape_interval_s``. :meth:`PrometheusServer.start`
returns once ``/-/ready`` answers, and fails at once with the log's tail if the process
exits. Its log is ``work_dir/prometheus.log``.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from greenflow.api import wait_until
from greenflow.errors import ServiceError

#: How to get the binary on Debian and Ubuntu (the repository's setup does it for you).
INSTALL_HINT = "apt-get install prometheus (or: bash scripts/setup-system)"
#: Set to the path of a prometheus binary to use that one instead of PATH's.
BINARY_ENV = "GREENFLOW_PROMETHEUS"


def find_prometheus() -> str | None:
    """Path of the prometheus binary: ``$GREENFLOW_PROMETHEUS``, else PATH, else None."""
    configured = os.environ.get(BINARY_ENV)
    if configured:
        return configured if os.access(configured, os.X_OK) else None
    return shutil.which("prometheus") or shutil.which("prometheus", path="/usr/bin:/usr/sbin")


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


class PrometheusServer:
    """One Prometheus process; a context manager (start on enter, stop on exit)."""

    def __init__(
        self,
        work_dir: Path,
        targets: Sequence[str] = (),
        *,
        scrape_interval_s: float = 1.0,
        scrape_configs: Sequence[Mapping[str, Any]] = (),
        binary: str | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        """``targets`` (``host:port``) form one job named ``targets``; ``scrape_configs``
        are added as they are (Prometheus' own ``scrape_config`` schema)."""
        self.work_dir = Path(work_dir)
        self.targets = list(targets)
        self.scrape_interval_s = scrape_interval_s
        self.scrape_configs = [dict(c) for c in scrape_configs]
        self.binary = binary or find_prometheus()
        self.host = host
        self.port = 0
        self.log_path = self.work_dir / "prometheus.log"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Base URL of the HTTP API, e.g. ``http://127.0.0.1:40123``."""
        return f"http://{self.host}:{self.port}"

    def config(self) -> dict[str, Any]:
        """The configuration the server is started with (written as JSON, which is YAML)."""
        interval = f"{round(self.scrape_interval_s * 1000)}ms"
        jobs = list(self.scrape_configs)
        if self.targets:
            jobs.insert(0, {"job_name": "targets", "static_configs": [{"targets": self.targets}]})
        return {
            "global": {"scrape_interval": interval, "evaluation_interval": interval},
            "scrape_configs": jobs,
        }

    def start(self, timeout_s: float = 60.0) -> None:
        """Start the server and wait until it is ready; raise ``ServiceError`` if it dies."""
        if self.binary is None:
            raise ServiceError(f"no prometheus binary found; install it with: {INSTALL_HINT}")
        self.work_dir.mkdir(parents=True, exist_ok=True)
        config_path = self.work_dir / "prometheus.yml"
        config_path.write_text(json.dumps(self.config(), indent=2), encoding="utf-8")
        # The port is free when chosen but another process may take it before Prometheus
        # binds it; that shows as "address already in use" and is retried with a new port.
        for attempt in range(3):
            self.port = _free_port(self.host)
            with self.log_path.open("ab") as log:
                self._proc = subprocess.Popen(
                    [
                        self.binary,
                        f"--config.file={config_path}",
                        f"--storage.tsdb.path={self.work_dir / 'data'}",
                        f"--web.listen-address={self.host}:{self.port}",
                        "--storage.tsdb.retention.time=1d",
                        "--log.level=info",
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )
            try:
                self._wait_ready(timeout_s)
                return
            except ServiceError:
                if attempt == 2 or "address already in use" not in self._log_tail():
                    self.stop()
                    raise
                self.stop()

    def _wait_ready(self, timeout_s: float) -> None:
        proc = self._proc
        assert proc is not None

        def ready() -> tuple[bool, str]:
            if proc.poll() is not None:
                return True, "exited"  # stop polling; reported below
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as resp:
                return resp.status == 200, f"HTTP {resp.status}"

        wait_until(ready, what=f"prometheus at {self.url}/-/ready", timeout_s=timeout_s,
                   interval_s=0.1)
        if proc.poll() is not None:
            msg = (f"prometheus exited with code {proc.returncode} before it was ready; "
                   f"log {self.log_path}:\n{self._log_tail()}")
            raise ServiceError(msg)

    def query(self, promql: str) -> list[dict[str, Any]]:
        """The result of an instant query (``/api/v1/query``): a list of series."""
        url = f"{self.url}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
        with urllib.request.urlopen(url, timeout=10) as resp:
            result: list[dict[str, Any]] = json.load(resp)["data"]["result"]
            return result

    def wait_for_series(self, promql: str, timeout_s: float = 30.0) -> None:
        """Wait until ``promql`` returns at least one series (e.g. a target was scraped)."""

        def found() -> tuple[bool, str]:
            result = self.query(promql)
            return bool(result), f"{len(result)} series"

        wait_until(found, what=f"{promql!r} on {self.url}", timeout_s=timeout_s, interval_s=0.1)

    def _log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout_s: float = 10.0) -> None:
        """Terminate the server (then kill it after ``timeout_s``). Idempotent."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def __enter__(self) -> PrometheusServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
