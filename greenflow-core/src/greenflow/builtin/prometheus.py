"""The ``prometheus`` collector: any PromQL series over a window, as samples.

```toml
[[collectors]]
type = "prometheus"
name = "scaphandre"
url = "http://127.0.0.1:9090"
method = "scaphandre"
queries = { host_energy_joules = "scaph_host_energy_microjoules / 1e6" }
```

Each query is named after the metric it produces, unit last (``host_power_watts``,
``host_energy_joules``, ``broker_bytes_per_s``). Energy and power queries (``_joules``,
``_watts``, ``_joules_per_s``) get the collector's ``method`` — what the figures are, e.g.
``scaphandre`` or ``kepler`` — and must therefore name one; all other queries are
labelled ``prometheus``. A ``_joules`` query must return a cumulative counter (Sample's
contract); its resets are corrected the way Prometheus' ``increase()`` does.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import urlsplit, urlunsplit

import attrs
import structlog

from greenflow.api import Collector, CollectorContext, Sample, Window, wait_until
from greenflow.errors import CollectorError, ReadinessTimeout
from greenflow.plan.validators import positive

log = structlog.get_logger("greenflow.collectors.prometheus")

#: Units a query name may end with (before an optional ``_per_s`` and ``_total``).
UNITS = (
    "joules",
    "watts",
    "seconds",
    "bytes",
    "ratio",
    "percent",
    "celsius",
    "hertz",
    "messages",
    "records",
    "requests",
    "packets",
)
_NAME = re.compile(rf"^[a-z][a-z0-9_]*_(?P<unit>{'|'.join(UNITS)})(?P<rate>_per_s)?(?:_total)?$")
#: Prometheus refuses a range query of more than 11,000 points per series.
_MAX_POINTS = 10_000


def _unit(name: str) -> str:
    """``watts`` for ``host_power_watts``, ``bytes/s`` for ``in_bytes_per_s``."""
    m = _NAME.match(name)
    if m is None:  # Config validated every name
        raise ValueError(name)
    return m["unit"] + ("/s" if m["rate"] else "")


def _is_energy_or_power(unit: str) -> bool:
    return unit in ("joules", "watts", "joules/s")


def _check_url(_inst: Any, attribute: attrs.Attribute[Any], value: str) -> None:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        msg = f'{attribute.name}: expected http(s)://host:port of a Prometheus API, got "{value}"'
        raise ValueError(msg)


def _check_queries(_inst: Any, attribute: attrs.Attribute[Any], value: dict[str, str]) -> None:
    if not value:
        msg = f'{attribute.name}: empty; give at least one, e.g. {{ host_power_watts = "..." }}'
        raise ValueError(msg)
    for name, promql in value.items():
        if _NAME.match(name) is None:
            msg = (
                f"{attribute.name}: {name!r} does not end with its unit; name it like "
                f"host_power_watts or in_bytes_per_s (units: {', '.join(UNITS)})"
            )
            raise ValueError(msg)
        if not promql.strip():
            raise ValueError(f"{attribute.name}: {name!r} has an empty PromQL query")


def _strip_slash(url: str) -> str:
    return url.rstrip("/")


@attrs.frozen
class PrometheusConfig:
    """``[collectors.NAME] type = "prometheus"``."""

    #: Base URL of the Prometheus HTTP API (or anything that speaks it: VictoriaMetrics, Thanos).
    url: str = attrs.field(validator=_check_url, converter=_strip_slash)
    #: Metric name (unit last, e.g. ``host_power_watts``) → PromQL.
    queries: dict[str, str] = attrs.field(validator=_check_queries)
    #: Resolution of the range queries, in seconds.
    step_s: float = attrs.field(default=1.0, validator=positive)
    #: What the energy and power figures are: ``scaphandre``, ``kepler``, ``model:<name>``...
    method: str = "prometheus"
    #: Per request; also how long :meth:`PrometheusCollector.start` waits for the server.
    timeout_s: float = attrs.field(default=10.0, validator=positive)

    def __attrs_post_init__(self) -> None:
        energy = sorted(n for n in self.queries if _is_energy_or_power(_unit(n)))
        if energy and self.method.strip() in ("", "prometheus"):
            msg = (
                f"method: queries {', '.join(energy)} are energy or power figures; set "
                'method to how they were measured, e.g. method = "scaphandre"'
            )
            raise ValueError(msg)


def _safe_url(url: str) -> str:
    """``url`` without a password, for messages and provenance."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def _host(labels: Mapping[str, str]) -> str:
    """The host of a series: its ``instance`` label without the port, else ``prometheus``."""
    instance = labels.get("instance")
    if not instance:
        return "prometheus"
    m = re.fullmatch(r"\[(?P<h>[^\]]+)\](?::\d+)?|(?P<h2>[^:]+)(?::\d+)?", instance)
    return (m["h"] or m["h2"]) if m else instance


def _monotonic(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Counter values with resets undone: a drop means the counter restarted from zero."""
    out: list[tuple[float, float]] = []
    offset, prev = 0.0, -math.inf
    for t, v in points:
        if v < prev:
            offset += prev
        prev = v
        out.append((t, v + offset))
    return out


class PrometheusSource:
    """One Prometheus HTTP API as a collector reads it (shared by the PromQL collectors).

    The client is made on first use; failures come out as ``CollectorError`` naming the
    collector, what was asked and the URL (its password hidden).
    """

    def __init__(self, collector: str, url: str, timeout_s: float) -> None:
        self.collector = collector
        self.url = url
        self.safe_url = _safe_url(url)
        self.timeout_s = timeout_s
        self._client: Any = None

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


class PrometheusCollector(Collector):
    """Queries Prometheus over each window; see the module docstring for the plan section.

    Each point of the range query (every ``step_s`` over the window, plus the last point
    before it and the first after it) becomes a :class:`~greenflow.api.Sample` with the
    series' labels (less ``__name__``) and ``host`` from its ``instance`` label (port
    dropped).
    """

    Config: ClassVar[type] = PrometheusConfig
    # Its Prometheus may be the plan's own [[services]] prometheus.
    start_after_deploy: ClassVar[bool] = True
    config: PrometheusConfig

    def __init__(self, name: str, config: PrometheusConfig) -> None:
        super().__init__(name, config)
        self._source = PrometheusSource(name, config.url, config.timeout_s)

    def start(self, ctx: CollectorContext) -> None:
        """Wait (up to ``timeout_s``) for the server to answer, then check every query parses."""
        self._source.wait_until_answering()
        for name, promql in self.config.queries.items():
            self._source.call(f"query {name} = {promql!r}", "custom_query", promql)
        log.info(
            "collector.prometheus.ready",
            collector=self.name,
            url=self._source.safe_url,
            queries=len(self.config.queries),
        )

    def collect(self, window: Window) -> Sequence[Sample]:
        """Every query's points over ``window``, plus the last before and the first after it.

        The range asked for is padded by one step on both sides. Waits until that padded
        end has passed (at most ``step_s`` plus a second), so that the point after the
        window exists; never asks for future points, which Prometheus would fill with the
        last value it has.
        """
        step = self.config.step_s
        # Whole seconds: the client rounds the range to them anyway.
        start = math.floor(window.start - step)
        end = math.ceil(window.end + step)
        wait_s = end - time.time()
        if 0 < wait_s <= step + 1:
            time.sleep(wait_s)
        end = min(end, math.floor(time.time()))
        samples: list[Sample] = []
        for name, promql in self.config.queries.items():
            samples.extend(self._query(name, promql, start, end, window))
        return samples

    def _query(self, name: str, promql: str, start: int, end: int, window: Window) -> list[Sample]:
        what = f"query {name} = {promql!r}"
        step = self.config.step_s
        chunk_s = max(1, math.floor(_MAX_POINTS * step))
        series: dict[frozenset[tuple[str, str]], dict[float, float]] = {}
        for lo in range(start, end + 1, chunk_s):
            result = self._source.call(
                what,
                "custom_query_range",
                promql,
                start_time=datetime.fromtimestamp(lo, UTC),
                end_time=datetime.fromtimestamp(min(end, lo + chunk_s), UTC),
                step=f"{step:g}",
            )
            try:
                parsed = parse_matrix(result)
            except ValueError as exc:
                raise self._source.fail(what, exc) from exc
            for key, points in parsed:
                series.setdefault(key, {}).update(points)
        unit = _unit(name)
        energy_or_power = _is_energy_or_power(unit)
        method = self.config.method if energy_or_power else "prometheus"
        samples: list[Sample] = []
        for key, by_time in series.items():
            labels = dict(key)
            points = _trim(sorted(by_time.items()), window)
            if unit == "joules":
                points = _monotonic(points)
            host = _host(labels)
            samples.extend(
                Sample(
                    timestamp=t,
                    metric=name,
                    value=v,
                    unit=unit,
                    method=method,
                    host=host,
                    labels=labels,
                )
                for t, v in points
            )
        return samples

    def stop(self) -> None:
        """Close the HTTP session. Idempotent."""
        self._source.close()

    def describe(self) -> Mapping[str, Any]:
        return {
            "url": self._source.safe_url,
            "queries": dict(self.config.queries),
            "step_s": self.config.step_s,
            "method": self.config.method,
        }


def _trim(points: list[tuple[float, float]], window: Window) -> list[tuple[float, float]]:
    """Points inside ``window`` plus the last one before it and the first one after it."""
    before = [p for p in points if p[0] < window.start][-1:]
    after = [p for p in points if p[0] > window.end][:1]
    return before + [p for p in points if window.contains(p[0])] + after


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
