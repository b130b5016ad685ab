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

import attrs
import structlog

from greenflow.api import Collector, CollectorContext, Sample, Window
from greenflow.api.prometheus import PrometheusSource, parse_matrix, strip_slash
from greenflow.plan.validators import http_url, positive

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


# Not in plan/validators.py: the rule (a metric name ending with one of this collector's
# UNITS) is what this collector's output needs, not a shape another Config would share.
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


@attrs.frozen
class PrometheusCollectorConfig:
    """``[collectors.NAME] type = "prometheus"``."""

    #: Base URL of the Prometheus HTTP API (or anything that speaks it: VictoriaMetrics, Thanos).
    url: str = attrs.field(validator=http_url, converter=strip_slash)
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


class PrometheusCollector(Collector):
    """Queries Prometheus over each window; see the module docstring for the plan section.

    Each point of the range query (every ``step_s`` over the window, plus the last point
    before it and the first after it) becomes a :class:`~greenflow.api.Sample` with the
    series' labels (less ``__name__``) and ``host`` from its ``instance`` label (port
    dropped).
    """

    Config: ClassVar[type] = PrometheusCollectorConfig
    # Its Prometheus may be the plan's own [[services]] prometheus.
    start_after_deploy: ClassVar[bool] = True
    config: PrometheusCollectorConfig

    def __init__(self, name: str, config: PrometheusCollectorConfig) -> None:
        super().__init__(name, config)
        self._source = PrometheusSource(name, config.url, config.timeout_s)

    def start(self, ctx: CollectorContext) -> None:
        """Wait (up to ``timeout_s``) for the server to answer, then check every query parses."""
        self._source = self._source.reached(ctx.reach)
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
