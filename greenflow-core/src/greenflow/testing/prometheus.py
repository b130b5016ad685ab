"""A real Prometheus server for tests: Debian's (or any) ``prometheus`` binary on loopback.

For plugin tests that read figures back through PromQL (Scaphandre, Kepler, the
``prometheus`` collector)::

    binary = find_prometheus()
    if binary is None:
        pytest.skip(f"no prometheus binary; install it with: {INSTALL_HINT}")
    with PrometheusServer(tmp_path, targets=["127.0.0.1:9100"], binary=binary) as prom:
        collector = PrometheusCollector("p", PrometheusCollectorConfig(url=prom.url, queries=...))

The server listens on a free port of 127.0.0.1, keeps its data in ``work_dir`` and
scrapes the given targets every ``scrape_interval_s``. :meth:`PrometheusServer.start`
returns once ``/-/ready`` answers, and fails at once with the log's tail if the process
exits. Its log is ``work_dir/prometheus.log``.

``PrometheusServer(..., remote_write_receiver=True)`` also accepts remote write at
``{url}/api/v1/write`` (``--web.enable-remote-write-receiver``). :class:`VictoriaMetricsServer`
is the same for Debian's ``victoria-metrics``: a remote-write target (``{url}/api/v1/write``)
with a Prometheus-compatible query API and ``/api/v1/export`` for raw samples::

    binary = find_victoria_metrics()
    if binary is None:
        pytest.skip(f"no victoria-metrics binary; install it with: {VM_INSTALL_HINT}")
    with VictoriaMetricsServer(tmp_path, binary=binary) as vm:
        ...  # write to vm.write_url, then vm.export('{experiment="e"}')
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from greenflow.api import wait_until
from greenflow.api.net import free_ports
from greenflow.api.processes import tail
from greenflow.errors import ServiceError

#: How to get the binary on Debian and Ubuntu (the repository's setup does it for you).
INSTALL_HINT = "apt-get install prometheus (or: bash scripts/setup-system)"
#: Set to the path of a prometheus binary to use that one instead of PATH's.
BINARY_ENV = "GREENFLOW_PROMETHEUS"
#: How to get VictoriaMetrics on Debian and Ubuntu.
VM_INSTALL_HINT = "apt-get install victoria-metrics (or: bash scripts/setup-system)"
#: Set to the path of a victoria-metrics binary to use that one instead of PATH's.
VM_BINARY_ENV = "GREENFLOW_VICTORIA_METRICS"


def _find_binary(name: str, env: str) -> str | None:
    configured = os.environ.get(env)
    if configured:
        return configured if os.access(configured, os.X_OK) else None
    return shutil.which(name) or shutil.which(name, path="/usr/bin:/usr/sbin")


def find_prometheus() -> str | None:
    """Path of the prometheus binary: ``$GREENFLOW_PROMETHEUS``, else PATH, else None."""
    return _find_binary("prometheus", BINARY_ENV)


def find_victoria_metrics() -> str | None:
    """Path of the victoria-metrics binary: ``$GREENFLOW_VICTORIA_METRICS``, else PATH
    (Debian installs ``/usr/bin/victoria-metrics``), else None."""
    return _find_binary("victoria-metrics", VM_BINARY_ENV)


class _LoopbackServer:
    """A server process on a free port of ``host``, its log in ``work_dir``; a context
    manager (start on enter, stop on exit). Subclasses say how to start it and which
    path answers 200 once it is ready."""

    #: Name in messages and of the log file (``work_dir/<name>.log``).
    name = "server"
    #: Path that answers 200 once the server is ready.
    ready_path = "/"
    install_hint = ""

    def __init__(self, work_dir: Path, *, binary: str | None, host: str) -> None:
        self.work_dir = Path(work_dir)
        self.binary = binary
        self.host = host
        self.port = 0
        self.log_path = self.work_dir / f"{self.name}.log"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Base URL of the HTTP API, e.g. ``http://127.0.0.1:40123``."""
        return f"http://{self.host}:{self.port}"

    def _prepare(self) -> None:
        """Write what the command needs (configuration files) into ``work_dir``."""

    def _command(self, binary: str) -> list[str]:
        raise NotImplementedError

    def start(self, timeout_s: float = 60.0) -> None:
        """Start the server and wait until it is ready; raise ``ServiceError`` if it dies."""
        if self.binary is None:
            raise ServiceError(f"no {self.name} binary found; install it with: {self.install_hint}")
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self._prepare()
        # The port is free when chosen but another process may take it before the server
        # binds it; that shows as "address already in use" and is retried with a new port.
        for attempt in range(3):
            (self.port,) = free_ports(self.host, 1)
            with self.log_path.open("ab") as log:
                self._proc = subprocess.Popen(
                    self._command(self.binary),
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
            with urllib.request.urlopen(f"{self.url}{self.ready_path}", timeout=2) as resp:
                return resp.status == 200, f"HTTP {resp.status}"

        wait_until(
            ready,
            what=f"{self.name} at {self.url}{self.ready_path}",
            timeout_s=timeout_s,
            interval_s=0.1,
        )
        if proc.poll() is not None:
            msg = (
                f"{self.name} exited with code {proc.returncode} before it was ready; "
                f"log {self.log_path}:\n{self._log_tail()}"
            )
            raise ServiceError(msg)

    def _get_json(self, path: str, params: Mapping[str, str | Sequence[str]]) -> Any:
        url = f"{self.url}{path}?{urllib.parse.urlencode(params, doseq=True)}"
        with urllib.request.urlopen(url, timeout=10) as resp:
            return json.load(resp)

    def query(self, promql: str, at: float | None = None) -> list[dict[str, Any]]:
        """The result of an instant query (``/api/v1/query``), now or ``at`` (Unix seconds):
        a list of series, each ``{"metric": labels, "value": [t, "v"]}``."""
        params = {"query": promql} if at is None else {"query": promql, "time": f"{at:.3f}"}
        result: list[dict[str, Any]] = self._get_json("/api/v1/query", params)["data"]["result"]
        return result

    def query_range(
        self, promql: str, start: float, end: float, step_s: float
    ) -> list[dict[str, Any]]:
        """The result of a range query (``/api/v1/query_range``): a list of series, each
        with ``values`` as ``[unix seconds, "value"]`` pairs."""
        params = {
            "query": promql,
            "start": f"{start:.3f}",
            "end": f"{end:.3f}",
            "step": f"{step_s:g}s",
        }
        result: list[dict[str, Any]] = self._get_json("/api/v1/query_range", params)["data"][
            "result"
        ]
        return result

    def wait_for_series(self, promql: str, timeout_s: float = 30.0) -> None:
        """Wait until ``promql`` returns at least one series (e.g. a target was scraped)."""

        def found() -> tuple[bool, str]:
            result = self.query(promql)
            return bool(result), f"{len(result)} series"

        wait_until(found, what=f"{promql!r} on {self.url}", timeout_s=timeout_s, interval_s=0.1)

    def _log_tail(self, lines: int = 20) -> str:
        return "\n".join(tail(self.log_path, lines)) or "(no log)"

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

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class PrometheusServer(_LoopbackServer):
    """One Prometheus process; a context manager (start on enter, stop on exit)."""

    name = "prometheus"
    ready_path = "/-/ready"
    install_hint = INSTALL_HINT

    def __init__(
        self,
        work_dir: Path,
        targets: Sequence[str] = (),
        *,
        scrape_interval_s: float = 1.0,
        scrape_configs: Sequence[Mapping[str, Any]] = (),
        binary: str | None = None,
        host: str = "127.0.0.1",
        remote_write_receiver: bool = False,
    ) -> None:
        """``targets`` (``host:port``) form one job named ``targets``; ``scrape_configs``
        are added as they are (Prometheus' own ``scrape_config`` schema).
        ``remote_write_receiver`` accepts remote write at :attr:`write_url`."""
        super().__init__(work_dir, binary=binary or find_prometheus(), host=host)
        self.targets = list(targets)
        self.scrape_interval_s = scrape_interval_s
        self.scrape_configs = [dict(c) for c in scrape_configs]
        self.remote_write_receiver = remote_write_receiver

    @property
    def write_url(self) -> str:
        """Where remote write goes (only accepted with ``remote_write_receiver=True``)."""
        return f"{self.url}/api/v1/write"

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

    def _prepare(self) -> None:
        config_path = self.work_dir / "prometheus.yml"
        config_path.write_text(json.dumps(self.config(), indent=2), encoding="utf-8")

    def _command(self, binary: str) -> list[str]:
        command = [
            binary,
            f"--config.file={self.work_dir / 'prometheus.yml'}",
            f"--storage.tsdb.path={self.work_dir / 'data'}",
            f"--web.listen-address={self.host}:{self.port}",
            "--storage.tsdb.retention.time=1d",
            "--log.level=info",
        ]
        if self.remote_write_receiver:
            command.append("--web.enable-remote-write-receiver")
        return command


class VictoriaMetricsServer(_LoopbackServer):
    """One single-node VictoriaMetrics process; a context manager (start on enter, stop
    on exit).

    Started with ``-search.latencyOffset=0s`` and the response cache off, so what was
    written is queryable as soon as it is flushed (see :meth:`export`), not 30 s later.
    Retention is 100 years: tests may write samples with any timestamp of this century.
    """

    name = "victoria-metrics"
    ready_path = "/health"
    install_hint = VM_INSTALL_HINT

    def __init__(
        self, work_dir: Path, *, binary: str | None = None, host: str = "127.0.0.1"
    ) -> None:
        super().__init__(work_dir, binary=binary or find_victoria_metrics(), host=host)

    @property
    def write_url(self) -> str:
        """Where Prometheus remote write goes."""
        return f"{self.url}/api/v1/write"

    def _command(self, binary: str) -> list[str]:
        return [
            binary,
            f"-httpListenAddr={self.host}:{self.port}",
            f"-storageDataPath={self.work_dir / 'data'}",
            "-retentionPeriod=100y",
            "-search.latencyOffset=0s",
            "-search.disableCache",
            "-loggerLevel=INFO",
        ]

    def force_flush(self) -> None:
        """Make everything received so far searchable (``/internal/force_flush``)."""
        with urllib.request.urlopen(f"{self.url}/internal/force_flush", timeout=10) as resp:
            resp.read()

    def export(
        self, match: str, start: float | None = None, end: float | None = None
    ) -> list[dict[str, Any]]:
        """Raw samples of the series matching ``match`` (``/api/v1/export``), after a
        :meth:`force_flush`: one dict per series with ``metric`` (its labels),
        ``values`` and ``timestamps`` (Unix milliseconds), as VictoriaMetrics stored them.
        """
        self.force_flush()
        params: dict[str, str] = {"match[]": match}
        if start is not None:
            params["start"] = f"{start:.3f}"
        if end is not None:
            params["end"] = f"{end:.3f}"
        url = f"{self.url}/api/v1/export?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=10) as resp:
            lines = resp.read().decode("utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]
