"""The ``scaphandre`` collector: energy per node (``energy_joules``, Scaphandre's host counter)
and per pod (``pod_energy_joules``, the integral of its processes' sampled power), read from
the Prometheus that scrapes Scaphandre.

The method — what is read, how a counter drop is bridged, how pod energy is integrated, what
happens to duplicate and restarted exporters — is described in docs/measurement.md
("Scaphandre"); the plan keys are :class:`ScaphandreCollectorConfig`'s.
"""

from __future__ import annotations

import itertools
import math
import re
import time
from bisect import bisect_right
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, ClassVar

import attrs
import structlog

from greenflow.api import Collector, CollectorContext, Sample, Window
from greenflow.api.prometheus import PrometheusSource, parse_matrix, strip_slash
from greenflow.errors import CollectorError
from greenflow.plan.validators import http_url, label_matchers, label_name, positive

log = structlog.get_logger("greenflow.collectors.scaphandre")

#: Scaphandre's host energy counter (µJ).
HOST_ENERGY = "scaph_host_energy_microjoules"
#: Scaphandre's per-process power gauge (µW).
PROCESS_POWER = "scaph_process_power_consumption_microwatts"
METHOD = "scaphandre"
#: Samples are looked for this many ``step_s`` before and after the window.
PAD_STEPS = 3
#: One range selector covers at most this much time (bounds the size of one answer).
_CHUNK_S = 3600.0
#: Labels Scaphandre itself puts on series; every other label comes from the scrape.
_HOST_OWN = frozenset({"value_source"})
_PROCESS_OWN = frozenset({"pid", "exe", "cmdline", "vmname"})
_PROCESS_OWN_PREFIXES = ("container_", "kubernetes_")
_INSTANCE = re.compile(r"\[(?P<h>[^\]]+)\](?::\d+)?|(?P<h2>[^:]+)(?::\d+)?")

Labels = dict[str, str]
Points = list[tuple[float, float]]
_Target = tuple[tuple[str, str], ...]


@attrs.frozen
class ScaphandreCollectorConfig:
    """``[[collectors]] type = "scaphandre"``."""

    #: Base URL of the Prometheus HTTP API that scrapes Scaphandre.
    url: str = attrs.field(validator=http_url, converter=strip_slash)
    #: Label naming the node; series without it use ``instance`` (port dropped).
    node_label: str = attrs.field(default="node", validator=label_name)
    #: Label naming the pod on process series (Scaphandre ``--containers``).
    pod_label: str = attrs.field(default="kubernetes_pod_name", validator=label_name)
    #: Label naming the pod's namespace on process series.
    namespace_label: str = attrs.field(default="kubernetes_pod_namespace", validator=label_name)
    #: Extra PromQL label matchers for both metrics, without braces (``job="scaphandre"``).
    selector: str = attrs.field(default="", validator=label_matchers)
    #: Scaphandre's scrape interval or more, in seconds: how far past the window's ends
    #: samples are looked for (3×) and how long collect() waits for one after it (2×).
    step_s: float = attrs.field(default=15.0, validator=positive)
    #: Per request; also how long :meth:`ScaphandreCollector.start` waits for the server.
    timeout_s: float = attrs.field(default=10.0, validator=positive)


# -- labels ------------------------------------------------------------------------------


def _node(labels: Mapping[str, str], node_label: str) -> str | None:
    """The node of a series: ``node_label``, else ``instance`` without its port."""
    node = labels.get(node_label)
    if node:
        return node
    instance = labels.get("instance")
    if not instance:
        return None
    m = _INSTANCE.fullmatch(instance)
    return (m["h"] or m["h2"]) if m else instance


def _is_process_own(name: str) -> bool:
    return name in _PROCESS_OWN or name.startswith(_PROCESS_OWN_PREFIXES)


def _fmt(target: _Target) -> str:
    return "{" + ",".join(f'{k}="{v}"' for k, v in target) + "}"


# -- counters and power ------------------------------------------------------------------


def unwrap_counter(points: Sequence[tuple[float, float]]) -> Points:
    """A counter's ``(t, value)`` points (time order) made non-decreasing.

    Rises count as they are. A drop (wrap, reboot, restart) between two samples is
    replaced by that interval's duration × the mean rate of the neighbouring intervals
    that have no drop; with no such neighbour, by the new value (``increase()``'s rule).
    The first value is kept as is, so that series read at different times agree until
    their first drop.
    """
    if not points:
        return []
    ts = [t for t, _ in points]
    vs = [v for _, v in points]
    rises = [b - a for a, b in itertools.pairwise(vs)]
    spans = [b - a for a, b in itertools.pairwise(ts)]

    def rate(i: int) -> float | None:
        if 0 <= i < len(rises) and rises[i] >= 0 and spans[i] > 0:
            return rises[i] / spans[i]
        return None

    out = [(ts[0], vs[0])]
    total = vs[0]
    for i, rise in enumerate(rises):
        if rise < 0:
            around = [r for r in (rate(i - 1), rate(i + 1)) if r is not None]
            rise = sum(around) / len(around) * spans[i] if around else max(vs[i + 1], 0.0)
        total += rise
        out.append((ts[i + 1], total))
    return out


def _trim(points: Points, window: Window) -> Points:
    """Points inside ``window`` plus the last before it and the first after it."""
    before = [p for p in points if p[0] < window.start][-1:]
    after = [p for p in points if p[0] > window.end][:1]
    return before + [p for p in points if window.contains(p[0])] + after


def _lerp(a: tuple[float, float], b: tuple[float, float], t: float) -> float:
    (t0, v0), (t1, v1) = a, b
    return v0 if t1 == t0 else v0 + (v1 - v0) * (t - t0) / (t1 - t0)


def integrate_power(points: Sequence[tuple[float, float]], window: Window) -> Points:
    """Cumulative energy ``(t, joules)`` of power points ``(t, watts)`` within ``window``.

    The trapezoid rule over the points inside the window; at each end, when points lie on
    both sides of it, the power there is interpolated between them and the integral runs
    to the end exactly; otherwise it starts at the first (ends at the last) point inside.
    Nothing outside the window is integrated. Returns ``[]`` when fewer than two points
    remain.
    """
    inside = [p for p in points if window.contains(p[0])]
    before = [p for p in points if p[0] < window.start][-1:]
    after = [p for p in points if p[0] > window.end][:1]
    clipped: Points = []
    if before and (inside or after) and not (inside and inside[0][0] == window.start):
        clipped.append((window.start, _lerp(before[0], (inside or after)[0], window.start)))
    clipped += inside
    if after and (inside or before) and not (inside and inside[-1][0] == window.end):
        clipped.append((window.end, _lerp((inside or before)[-1], after[0], window.end)))
    if len(clipped) < 2:
        return []
    out = [(clipped[0][0], 0.0)]
    for (t0, p0), (t1, p1) in itertools.pairwise(clipped):
        out.append((t1, out[-1][1] + (p0 + p1) / 2 * (t1 - t0)))
    return out


def _cumulative_at(points: Points, times: list[float], t: float) -> float:
    """A cumulative series (``times`` are its timestamps) at ``t``: 0 before it starts, its
    total after it ends, linear in between."""
    if t < times[0]:
        return 0.0
    i = bisect_right(times, t)
    if i >= len(points):
        return points[-1][1]
    return _lerp(points[i - 1], points[i], t)


# -- the collector -----------------------------------------------------------------------


class ScaphandreCollector(Collector):
    """Energy per node and per pod from Scaphandre through Prometheus; the method, and what
    a counter drop means, are in docs/measurement.md ("Scaphandre")."""

    Config: ClassVar[type] = ScaphandreCollectorConfig
    # Its Prometheus is often the plan's own [[services]] prometheus.
    start_after_deploy: ClassVar[bool] = True
    config: ScaphandreCollectorConfig

    def __init__(self, name: str, config: ScaphandreCollectorConfig) -> None:
        super().__init__(name, config)
        self._source = PrometheusSource(name, config.url, config.timeout_s)

    def _selector(self, metric: str) -> str:
        matchers = [self.config.selector.strip()] if self.config.selector.strip() else []
        if metric == PROCESS_POWER:
            matchers.insert(0, f'{self.config.pod_label}!=""')
        return f"{metric}{{{', '.join(matchers)}}}"

    def _read(self, metric: str, lo: float, hi: float) -> list[tuple[Labels, Points]]:
        """Raw samples of ``metric`` in [lo, hi], per series (labels less ``__name__``),
        finite values only (stale markers are never returned by a range selector)."""
        selector = self._selector(metric)
        series: dict[frozenset[tuple[str, str]], dict[float, float]] = {}
        start = lo
        while start < hi:
            end = min(hi, start + _CHUNK_S)
            # +1 ms: a range selector is left-open from Prometheus 3 on.
            promql = f"{selector}[{math.ceil((end - start) * 1000) + 1}ms]"
            what = f"query {promql!r}"
            result = self._source.call(what, "custom_query", promql, params={"time": f"{end:.3f}"})
            try:
                parsed = parse_matrix(result)
            except ValueError as exc:
                raise self._source.fail(what, exc) from exc
            for key, points in parsed:
                series.setdefault(key, {}).update(points)
            start = end
        return [(dict(key), sorted(by_time.items())) for key, by_time in series.items()]

    # -- lifecycle --

    def start(self, ctx: CollectorContext) -> None:
        """Wait (up to ``timeout_s``) for Prometheus to answer, then check both selectors parse."""
        self._source = self._source.reached(ctx.reach)
        self._source.wait_until_answering()
        found = {}
        for metric in (HOST_ENERGY, PROCESS_POWER):
            promql = f"count({self._selector(metric)})"
            found[metric] = bool(self._source.call(f"query {promql!r}", "custom_query", promql))
        if not found[HOST_ENERGY]:
            log.warning(
                "scaphandre.no_series_yet",
                collector=self.name,
                url=self._source.safe_url,
                query=self._selector(HOST_ENERGY),
                hint="is Scaphandre running and scraped by this Prometheus?",
            )
        log.info(
            "collector.scaphandre.ready",
            collector=self.name,
            url=self._source.safe_url,
            nodes_seen=found[HOST_ENERGY],
            pods_seen=found[PROCESS_POWER],
        )

    def collect(self, window: Window) -> Sequence[Sample]:
        """Per-node ``energy_joules`` and per-pod ``pod_energy_joules`` over ``window``.

        Raises :class:`CollectorError` when Prometheus fails or holds no
        ``scaph_host_energy_microjoules`` series around the window.
        """
        step = self.config.step_s
        lo = window.start - PAD_STEPS * step
        hi = window.end + PAD_STEPS * step
        deadline = window.end + 2 * step
        while True:
            hosts = self._read(HOST_ENERGY, lo, hi)
            done = bool(hosts) and all(pts and pts[-1][0] >= window.end for _, pts in hosts)
            now = time.time()
            if done or now >= deadline:
                break
            time.sleep(min(1.0, step / 4, deadline - now))
        if not hosts:
            msg = (
                f"collector {self.name!r}: no {self._selector(HOST_ENERGY)} samples at "
                f"{self._source.safe_url} from {lo:.3f} to {hi:.3f}; is Scaphandre scraped "
                "by this Prometheus (and does selector match its series)?"
            )
            raise CollectorError(msg)
        samples = self._host_samples(hosts, window)
        samples += self._pod_samples(self._read(PROCESS_POWER, lo, hi), window)
        return samples

    def _host_samples(self, hosts: list[tuple[Labels, Points]], window: Window) -> list[Sample]:
        kept = self._dedupe(HOST_ENERGY, hosts, lambda name: name in _HOST_OWN, by_node_only=True)
        samples: list[Sample] = []
        for node, labels, points in kept:
            cumulative = _trim(unwrap_counter(points), window)
            extra = {"value_source": labels["value_source"]} if labels.get("value_source") else {}
            samples.extend(
                Sample(
                    timestamp=t,
                    metric="energy_joules",
                    value=v / 1e6,
                    unit="joules",
                    method=METHOD,
                    host=node,
                    labels={"domain": "host", **extra},
                )
                for t, v in cumulative
            )
        return samples

    def _pod_samples(self, processes: list[tuple[Labels, Points]], window: Window) -> list[Sample]:
        kept = self._dedupe(PROCESS_POWER, processes, _is_process_own, by_node_only=False)
        pods: dict[tuple[str, str, str], list[Points]] = {}
        for node, labels, points in kept:
            energy = integrate_power([(t, v / 1e6) for t, v in points], window)
            if energy:
                key = (
                    node,
                    labels.get(self.config.namespace_label, ""),
                    labels[self.config.pod_label],
                )
                pods.setdefault(key, []).append(energy)
        samples: list[Sample] = []
        for (node, namespace, pod), series in sorted(pods.items()):
            times = sorted({window.start, window.end, *(t for s in series for t, _ in s)})
            stamps = [[t for t, _ in s] for s in series]
            labels = {"pod": pod, "node": node, **({"namespace": namespace} if namespace else {})}
            samples.extend(
                Sample(
                    timestamp=t,
                    metric="pod_energy_joules",
                    value=sum(
                        _cumulative_at(s, ts, t) for s, ts in zip(series, stamps, strict=True)
                    ),
                    unit="joules",
                    method=METHOD,
                    host=node,
                    labels=labels,
                )
                for t in times
            )
        return samples

    def _dedupe(
        self,
        metric: str,
        series: Iterable[tuple[Labels, Points]],
        is_own: Callable[[str], bool],
        *,
        by_node_only: bool,
    ) -> list[tuple[str, Labels, Points]]:
        """One series per node (host energy) or per node and process (process power).

        Series of one node (and process) that differ only by labels the scrape added
        (``job``, ``instance``, the exporter's ``pod``...) either follow one another — a
        restarted exporter pod has a new name and address — and are joined, or overlap in
        time — two targets scrape the same exporter — and are duplicates. Taken in the
        order of their ``job`` label (then their other labels), a series is kept unless it
        overlaps one already kept; a warning names the kept and dropped targets, once per
        node.
        """
        groups: dict[
            tuple[str, _Target], list[tuple[tuple[str, _Target, _Target], Labels, Points]]
        ] = {}
        unnamed = 0
        for labels, points in series:
            node = _node(labels, self.config.node_label)
            if node is None or not points:
                unnamed += node is None
                continue
            own = tuple(sorted((k, v) for k, v in labels.items() if is_own(k)))
            target = tuple(sorted((k, v) for k, v in labels.items() if not is_own(k)))
            identity: _Target = () if by_node_only else own
            order = (labels.get("job", ""), target, own)
            groups.setdefault((node, identity), []).append((order, labels, points))
        if unnamed:
            log.warning(
                "scaphandre.no_node",
                collector=self.name,
                metric=metric,
                series=unnamed,
                reason=f"neither {self.config.node_label!r} nor 'instance' label; ignored",
            )
        kept: list[tuple[str, Labels, Points]] = []
        duplicates: dict[str, tuple[set[_Target], set[_Target]]] = {}
        for (node, _identity), members in sorted(groups.items()):
            members.sort(key=lambda m: m[0])
            chosen: list[tuple[tuple[str, _Target, _Target], Labels, Points]] = []
            for member in members:
                first, last = member[2][0][0], member[2][-1][0]
                if any(first <= c[2][-1][0] and c[2][0][0] <= last for c in chosen):
                    entry = duplicates.setdefault(node, (set(), set()))
                    entry[1].add(member[0][1])
                    entry[0].update(
                        c[0][1] for c in chosen if first <= c[2][-1][0] and c[2][0][0] <= last
                    )
                else:
                    chosen.append(member)
            points = sorted(p for c in chosen for p in c[2])
            kept.append((node, chosen[0][1], points))
        for node, (kept_targets, dropped) in sorted(duplicates.items()):
            log.warning(
                "scaphandre.duplicate_series",
                collector=self.name,
                metric=metric,
                node=node,
                kept=[_fmt(t) for t in sorted(kept_targets)],
                dropped=[_fmt(t) for t in sorted(dropped - kept_targets)],
                reason="several scrape targets export the same node's series at the same "
                "time; kept the first by job label, never summed",
            )
        return kept

    def stop(self) -> None:
        """Close the HTTP session. Idempotent."""
        self._source.close()

    def describe(self) -> Mapping[str, Any]:
        return {
            "url": self._source.safe_url,
            "host_energy": self._selector(HOST_ENERGY),
            "process_power": self._selector(PROCESS_POWER),
            "node_label": self.config.node_label,
            "pod_label": self.config.pod_label,
            "namespace_label": self.config.namespace_label,
            "step_s": self.config.step_s,
            "method": METHOD,
            "counter_drops": "bridged by the mean power of the neighbouring intervals",
            "pod_energy": "trapezoid integral of sampled process power within the window",
        }
