"""The ``kwollect`` collector: each node's wall power from Grid'5000's Kwollect, integrated
into a cumulative energy counter per node (method ``kwollect:wattmeter`` or
``kwollect:bmc``), so that the runner takes its energy over each MEASURE window and the
baseline like any other.

What is read: ``wattmetre_power_watt`` where the node's cluster has wattmeters (1 sample/s
by default), else ``bmc_node_power_watt`` (the node's BMC, one sample every 5 s), chosen per
cluster from the reference API (``metric = "auto"``) or fixed by the plan. Kwollect stores
samples a few seconds after they are taken: :meth:`KwollectCollector.collect` polls until
every node has a sample at or after the window's end (or ``wait`` has passed). Energy is the
trapezoidal integral of power between samples; a gap (no sample for more than 3 periods) is
bridged linearly and reported, and a node whose gaps cover more than ``max_gap_share`` of
the window fails the run (``energy missing``: a re-run redoes it). docs/g5k.md,
"Kwollect", and docs/measurement.md say more.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

import attrs
import structlog

from greenflow.api import Collector, CollectorContext, Sample, Window
from greenflow.errors import CollectorError, GreenFlowError
from greenflow.plan.durations import Duration
from greenflow.plan.validators import fraction, http_url, positive
from greenflow_g5k import oar
from greenflow_g5k.config import DEFAULT_API_URL, DEFAULT_CREDENTIALS_FILE

log = structlog.get_logger("greenflow.collectors.kwollect")

WATTMETER = "wattmetre_power_watt"
BMC = "bmc_node_power_watt"
#: Kwollect metric → the method its energy carries.
METHODS = {WATTMETER: "kwollect:wattmeter", BMC: "kwollect:bmc"}
#: Marks whole-machine energy measured at the plug (the cross-check's denominator).
SOURCE_WALL = {"source": "wall"}
#: Samples are read this many periods before and after the window.
PAD_PERIODS = 3
#: No sample for more than this many periods is a gap.
GAP_PERIODS = 3.0


@attrs.frozen
class KwollectCollectorConfig:
    """``[[collectors]] type = "kwollect"``."""

    #: The nodes' site; default: from the hosts' names (``nova-1.lyon.grid5000.fr``) —
    #: set it when the inventory has short names only.
    site: str | None = None
    #: ``"auto"``: wattmeters where the cluster has them, else the BMC; or a Kwollect
    #: metric name ending in ``_power_watt``.
    metric: str = attrs.field(default="auto")
    #: The nodes to read (short names); default: every host of the platform.
    nodes: tuple[str, ...] = ()
    #: The Grid'5000 API (as the g5k platform's key).
    api_url: str = attrs.field(default=DEFAULT_API_URL, validator=http_url)
    #: python-grid5000's credentials file (as the g5k platform's key).
    credentials_file: str = DEFAULT_CREDENTIALS_FILE
    #: How long after a window's end samples may still arrive in Kwollect.
    wait: Duration = attrs.field(default=Duration(120), validator=positive)
    #: Pause between polls while waiting for the samples.
    poll: Duration = attrs.field(default=Duration(5), validator=positive)
    #: A node whose gaps cover more of a window than this fails the run.
    max_gap_share: float = attrs.field(default=0.2, validator=fraction)

    @metric.validator
    def _metric(self, attribute: attrs.Attribute[Any], value: str) -> None:
        if value != "auto" and not (isinstance(value, str) and value.endswith("_power_watt")):
            raise ValueError(
                f'{attribute.name}: expected "auto" or a Kwollect power metric such as '
                f"{WATTMETER!r} or {BMC!r}, got {value!r}"
            )


def _parse_time(text: str) -> float:
    return datetime.fromisoformat(str(text)).timestamp()


def energy_counter(
    points: Sequence[tuple[float, float]], period_s: float
) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    """Cumulative joules at each power sample (trapezoids from the first), and the gaps:
    intervals between samples longer than :data:`GAP_PERIODS` periods (bridged linearly
    in the counter)."""
    counter: list[tuple[float, float]] = []
    gaps: list[tuple[float, float]] = []
    total = 0.0
    for i, (t, watts) in enumerate(points):
        if i:
            t0, w0 = points[i - 1]
            total += (t - t0) * (w0 + watts) / 2
            if t - t0 > GAP_PERIODS * period_s:
                gaps.append((t0, t))
        counter.append((t, total))
    return counter, gaps


def _overlap(gaps: Sequence[tuple[float, float]], window: Window) -> float:
    return sum(max(0.0, min(b, window.end) - max(a, window.start)) for a, b in gaps)


class KwollectCollector(Collector):
    """Wall power per node from Kwollect, as energy counters (module docstring)."""

    Config: ClassVar[type] = KwollectCollectorConfig
    config: KwollectCollectorConfig

    def __init__(self, name: str, config: KwollectCollectorConfig) -> None:
        super().__init__(name, config)
        self._site: Any = None
        self._site_name: str | None = None
        #: Kwollect metric → the nodes read with it.
        self._metrics: dict[str, list[str]] = {}
        self._periods: dict[str, float] = {}
        self._secrets: tuple[str | None, ...] = ()

    # -- lifecycle --

    def start(self, ctx: CollectorContext) -> None:
        """Reach the API, find the nodes' site and, per cluster, the power metric."""
        cfg = self.config
        hosts = [h.name for h in ctx.inventory.hosts]
        addresses = [h.address for h in ctx.inventory.hosts]
        nodes = list(cfg.nodes) or sorted({oar.short(h) for h in hosts})
        site = cfg.site or _site_of([*hosts, *addresses])
        if site is None:
            raise CollectorError(
                f"collector {self.name!r}: cannot tell the nodes' site from the hosts "
                f"({', '.join(hosts)}); set site"
            )
        credentials = oar.load_credentials(Path(cfg.credentials_file).expanduser())
        self._secrets = (credentials.password, credentials.sslkey)
        client = oar.connect(cfg.api_url, credentials)
        try:
            self._site = client.sites[site]
            self._site_name = site
            self._choose_metrics(nodes)
        except GreenFlowError:
            raise
        except Exception as exc:
            raise CollectorError(
                str(oar.api_error(f"collector {self.name!r}", exc, self._secrets))
            ) from None
        log.info(
            "collector.kwollect.ready",
            collector=self.name,
            site=site,
            metrics={m: len(n) for m, n in self._metrics.items()},
        )

    def _choose_metrics(self, nodes: Sequence[str]) -> None:
        by_cluster: dict[str, list[str]] = {}
        for node in nodes:
            by_cluster.setdefault(oar.cluster_of(node), []).append(node)
        for cluster, members in sorted(by_cluster.items()):
            catalogue = {
                m.get("name"): m for m in getattr(self._site.clusters[cluster], "metrics", []) or []
            }
            wanted = self.config.metric
            if wanted == "auto":
                wanted = WATTMETER if WATTMETER in catalogue else BMC
            if wanted not in catalogue:
                raise CollectorError(
                    f"collector {self.name!r}: cluster {cluster} has no {wanted} in Kwollect "
                    f"(its power metrics: {', '.join(sorted(str(m) for m in catalogue if str(m).endswith('_power_watt'))) or 'none'})"
                )
            self._metrics.setdefault(wanted, []).extend(members)
            period_ms = catalogue[wanted].get("period") or 1000
            self._periods[wanted] = max(self._periods.get(wanted, 0.0), period_ms / 1000)

    def collect(self, window: Window) -> Sequence[Sample]:
        """Per node, ``energy_joules`` (domain ``host``, ``source=wall``) at each power
        sample around ``window``, once samples reach its end (or ``wait`` passed)."""
        samples: list[Sample] = []
        for metric, nodes in sorted(self._metrics.items()):
            period = self._periods[metric]
            points = self._wait_for(metric, nodes, window, period)
            for node in nodes:
                series = points.get(node, [])
                if len(series) < 2:
                    raise CollectorError(
                        f"collector {self.name!r}: Kwollect has {len(series)} {metric} "
                        f"sample(s) of {node} around {window.start:.0f}–{window.end:.0f}"
                    )
                counter, gaps = energy_counter(series, period)
                missing = _overlap(gaps, window)
                if gaps:
                    log.warning(
                        "kwollect.gap",
                        collector=self.name,
                        node=node,
                        gaps_s=[round(b - a, 1) for a, b in gaps],
                        in_window_s=round(missing, 1),
                    )
                if window.duration_s and missing / window.duration_s > self.config.max_gap_share:
                    raise CollectorError(
                        f"collector {self.name!r}: {node}'s {metric} has no sample for "
                        f"{missing:.0f} s of a {window.duration_s:.0f} s window "
                        f"(more than max_gap_share = {self.config.max_gap_share:g})"
                    )
                samples.extend(
                    Sample(
                        timestamp=t,
                        metric="energy_joules",
                        value=joules,
                        unit="joules",
                        method=METHODS.get(metric, f"kwollect:{metric}"),
                        host=node,
                        labels={"domain": "host", **SOURCE_WALL},
                    )
                    for t, joules in counter
                )
        return samples

    def _wait_for(
        self, metric: str, nodes: Sequence[str], window: Window, period: float
    ) -> dict[str, list[tuple[float, float]]]:
        """Node → (time, watts) from ``PAD_PERIODS`` periods before the window to as many
        after, polled until each node has a sample at or after the window's end."""
        lo = window.start - PAD_PERIODS * period
        hi = window.end + PAD_PERIODS * period
        deadline = time.time() + float(self.config.wait)
        while True:
            points = self._read(metric, nodes, lo, hi)
            done = all(points.get(n) and points[n][-1][0] >= window.end for n in nodes)
            if done or time.time() >= deadline:
                return points
            time.sleep(min(float(self.config.poll), max(0.0, deadline - time.time())))

    def _read(
        self, metric: str, nodes: Sequence[str], lo: float, hi: float
    ) -> dict[str, list[tuple[float, float]]]:
        try:
            found = self._site.metrics.list(
                nodes=",".join(nodes),
                metrics=metric,
                start_time=int(lo),
                end_time=int(hi) + 1,
            )
        except Exception as exc:
            raise CollectorError(
                str(oar.api_error(f"collector {self.name!r}: reading Kwollect", exc, self._secrets))
            ) from None
        out: dict[str, dict[float, float]] = {}
        for m in found:
            value = getattr(m, "value", None)
            if getattr(m, "metric_id", metric) != metric or value is None:
                continue
            out.setdefault(str(m.device_id), {})[_parse_time(m.timestamp)] = float(value)
        return {node: sorted(by_time.items()) for node, by_time in out.items()}

    def stop(self) -> None:
        self._site = None

    def describe(self) -> Mapping[str, Any]:
        return {
            "site": self._site_name,
            "metrics": {m: sorted(n) for m, n in self._metrics.items()},
            "periods_s": dict(self._periods),
            "methods": {m: METHODS.get(m, f"kwollect:{m}") for m in self._metrics},
        }


def _site_of(names: Sequence[str]) -> str | None:
    for name in names:
        parts = name.split(".")
        if len(parts) >= 4 and parts[-2:] == ["grid5000", "fr"]:
            return parts[1]
    return None
