"""Reading a Prometheus HTTP API from a plugin, and writing the files Prometheus reads.

:class:`PrometheusSource` is what the ``prometheus`` and ``scaphandre`` collectors read
through (errors name the collector and the URL, its credentials left out); :func:`parse_matrix`
turns a range answer into points; :func:`write_targets_file` writes a ``file_sd_configs``
file for a service's own scrape targets (a local broker's metrics port, say).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog

from greenflow.api.context import wait_until
from greenflow.errors import CollectorError, ReadinessTimeout
from greenflow.store.redact import strip_userinfo

log = structlog.get_logger("greenflow.collectors")


def strip_slash(url: str) -> str:
    """``url`` without trailing slashes (a Config converter: ``url + "/api/v1"`` stays right)."""
    return url.rstrip("/")


#: ``url`` without its user part (``user:password@``, ``TOKEN@``), for messages and
#: provenance: :func:`greenflow.store.redact.strip_userinfo`, under the name plugins know.
safe_url = strip_userinfo


class PrometheusSource:
    """One Prometheus HTTP API as a collector reads it (shared by the PromQL collectors).

    The client is made on first use; failures come out as ``CollectorError`` naming the
    collector, what was asked and the URL (its password hidden).
    """

    def __init__(self, collector: str, url: str, timeout_s: float) -> None:
        self.collector = collector
        self.url = url
        self.safe_url = safe_url(url)
        self.timeout_s = timeout_s
        self._client: Any = None

    def reached(self, reach: Callable[[str], str]) -> PrometheusSource:
        """This source as this machine reaches it (``CollectorContext.reach``: a forwarded
        local port when the server is behind the platform's gateway); itself when the URL
        is reachable as it is. Errors then name the URL asked for and the one used."""
        url = reach(self.url)
        if url == self.url:
            return self
        source = PrometheusSource(self.collector, url, self.timeout_s)
        source.safe_url = f"{self.safe_url} (through {safe_url(url)})"
        log.info("prometheus.reached_through", collector=self.collector, url=source.safe_url)
        return source

    def client(self) -> Any:
        """The ``prometheus_api_client.PrometheusConnect``."""
        if self._client is None:
            # Imported here: requests and dateparser cost ~0.2 s, and `greenflow --help` or
            # `greenflow plugins` should not pay for a collector they don't run.
            from prometheus_api_client import PrometheusConnect
            from urllib3.util.retry import Retry

            # The client's default retries back off for ~6 s on a refused connection;
            # wait_until_answering() polls with its own deadline, so only retry briefly.
            retry = Retry(total=2, backoff_factor=0.1, status_forcelist=(429, 502, 503, 504))
            self._client = PrometheusConnect(url=self.url, retry=retry, timeout=self.timeout_s)
        return self._client

    def fail(self, what: str, exc: BaseException) -> CollectorError:
        text = str(exc).strip() or type(exc).__name__
        if len(text) > 500:
            text = text[:500] + "…"
        return CollectorError(
            f"collector {self.collector!r}: {what} at {self.safe_url} failed: {text}"
        )

    def call(self, what: str, method: str, *args: Any, **kwargs: Any) -> Any:
        """``client().<method>(...)``, its failures as :meth:`fail` errors about ``what``."""
        from prometheus_api_client.exceptions import PrometheusApiClientException

        try:
            return getattr(self.client(), method)(*args, **kwargs)
        except (OSError, ValueError, PrometheusApiClientException) as exc:
            # requests' errors are OSErrors, a body that is not JSON a ValueError.
            raise self.fail(what, exc) from exc

    def wait_until_answering(self) -> None:
        """Poll a trivial query until the server answers, up to ``timeout_s``."""
        client = self.client()

        def answers() -> tuple[bool, str]:
            client.custom_query("1")
            return True, "answered"

        try:
            wait_until(
                answers,
                what=f"Prometheus at {self.safe_url} to answer queries",
                timeout_s=self.timeout_s,
                interval_s=min(0.5, self.timeout_s / 4),
            )
        except ReadinessTimeout as exc:
            msg = (
                f"collector {self.collector!r}: Prometheus at {self.safe_url} does not "
                f"answer: {exc}. Check that it runs and that url is right."
            )
            raise CollectorError(msg) from exc

    def close(self) -> None:
        """Close the HTTP session. Idempotent."""
        client, self._client = self._client, None
        if client is not None and hasattr(client, "close"):  # close() is new in 0.6
            client.close()


def parse_matrix(result: Any) -> list[tuple[frozenset[tuple[str, str]], list[tuple[float, float]]]]:
    """A query_range result (a list of ``{"metric": labels, "values": [[t, "v"]...]}``)
    as (labels less ``__name__``, finite points) pairs; NaN and ±Inf points are dropped.
    Raises ValueError when the answer has another shape."""
    if not isinstance(result, list):
        raise ValueError(f"expected a list of series, got {type(result).__name__}")
    out = []
    for s in result:
        try:
            labels = frozenset(
                (str(k), str(v)) for k, v in s.get("metric", {}).items() if k != "__name__"
            )
            points = [(float(t), float(v)) for t, v in s["values"]]
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            msg = f"a series is not of the form {{metric, values}}: {exc!r}"
            raise ValueError(msg) from exc
        out.append((labels, [(t, v) for t, v in points if math.isfinite(v)]))
    return out


#: The customary name of a service's ``file_sd_configs`` file in its work directory.
PROMETHEUS_TARGETS_FILE = "prometheus-targets.json"


def write_targets_file(path: Path, content: object) -> None:
    """Write a Prometheus ``file_sd_configs`` file (JSON) atomically: Prometheus re-reads
    such files when they change and must never see half of one."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(content, indent=1))
    os.replace(tmp, path)


__all__ = [
    "PROMETHEUS_TARGETS_FILE",
    "PrometheusSource",
    "parse_matrix",
    "safe_url",
    "strip_slash",
    "write_targets_file",
]
