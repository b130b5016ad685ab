"""What every part of an experiment's section of the report draws on (:class:`Context`):
the series and their colours, the x axis and its unit, the attributed groups, and the
per-point figures read from greenflow.stats' summaries."""

from __future__ import annotations

import math
import tomllib
from collections.abc import Callable, Iterable, Sequence

from greenflow.report import plots
from greenflow.report.data import (
    LOAD_AXES,
    OTHER_PART,
    SHARE_SUFFIX,
    ExperimentData,
    Point,
    RunFigures,
    describe_finite,
    point_label,
    short_axis,
)
from greenflow.report.options import ReportOptions
from greenflow.report.text import Paths, escape, stat_text
from greenflow.stats import Stat, find
from greenflow.store.db import Store

#: Units of sweep axes by the end of their name, for axis labels.
AXIS_UNITS = (
    ("_bytes", "bytes"),
    ("size", "bytes"),
    ("_mib", "MiB"),
    ("_ms", "ms"),
    ("_s", "s"),
    ("_seconds", "s"),
    ("_per_s", "/s"),
    ("_watts", "W"),
)


def mean_of(values: Iterable[float]) -> float:
    data = list(values)
    return math.fsum(data) / len(data) if data else 0.0


def summary_stat(p: Point, column: str) -> Stat | None:
    return p.summary.stats.get(column) if p.summary is not None else None


def host_stat(p: Point, name: str, method: str | None) -> Stat | None:
    """greenflow.stats' figure ``name`` of the whole host scope (over all hosts)."""
    return find(p.summary, name, {"scope": "host"}, method) if p.summary is not None else None


def group_stat(p: Point, name: str, group: str, method: str | None) -> Stat | None:
    """An attributed group's figure ``name`` (over its hosts), by the attribution of the
    host ``method``."""
    if p.summary is None:
        return None
    scope = group.split(":", 1)[0] if ":" in group else OTHER_PART
    labels = {"scope": scope, "group": group} if ":" in group else {"scope": scope}
    return find(p.summary, name, labels, None if method is None else method + SHARE_SUFFIX)


def asked_rate(p: Point) -> Stat | None:
    # Not from the summary: the asked rate may come from the plan's load parameter.
    found = [r.asked for r in p.finished if r.asked is not None]
    return describe_finite((a.value for a in found), found[0].method) if found else None


def group_share(p: Point, group: str) -> Stat | None:
    """A group's share of its hosts' energy, mean ± CI over the point's finished runs."""
    shares = [r.groups[group] for r in p.finished if group in r.groups]
    values = [g.share for g in shares if g.share is not None]
    return describe_finite(values, shares[0].method) if values else None


def workload_type(plan_text: str) -> str | None:
    try:
        workload = tomllib.loads(plan_text).get("workload")
    except tomllib.TOMLDecodeError:
        return None
    kind = workload.get("type") if isinstance(workload, dict) else None
    return kind if isinstance(kind, str) else None


def run_order(r: RunFigures) -> int:
    return r.run.order


def joules_column(
    head: str, stats: Sequence[Stat | None], ns: Sequence[int]
) -> tuple[str, list[str]]:
    """A column of J figures in one SI unit (µJ per message rather than 1.2e-05):
    ``head`` has ``{}`` where the prefix goes; ``ns`` the points' finished runs."""
    factor, prefix = plots.si_scale([s.mean for s in stats if s is not None])
    cells = [escape(stat_text(s, factor, n)) for s, n in zip(stats, ns, strict=True)]
    return head.format(prefix), cells


def share_label(share: float | None) -> str:
    if share is None or not math.isfinite(share):
        return ""
    value = 100 * share
    return f"{value:.0f} %" if abs(value) >= 10 else f"{value:.1f} %"


class Context:
    """What every part of one experiment's section draws on: the store, the data, the
    options, the series and their colours, the x axis and the attributed groups."""

    def __init__(
        self,
        store: Store,
        data: ExperimentData,
        options: ReportOptions,
        anchor: str,
        paths: Paths,
    ) -> None:
        self.store = store
        self.data = data
        self.options = options
        self.anchor = anchor
        self.paths = paths
        series = list(dict.fromkeys(p.series for p in data.points))
        self.colours = {s: plots.series_colour(i) for i, s in enumerate(series)}
        self.series = series
        self.unit = data.unit or "unit"
        self.x_label = short_axis(data.x_axis) if data.x_axis else "series"
        self.services = data.groups("service")
        self.loadgens = data.groups("loadgen")
        deployments = list(dict.fromkeys(r.run.group for r in sorted(data.runs, key=run_order)))
        self.deployments = [g for g in deployments if g]

    def x(self) -> tuple[Callable[[Point], float], list[str] | None]:
        """x positions: the axis's numbers, or category indices (the axis's values in
        plan order; without an x axis, the series themselves)."""
        d = self.data
        if d.x_axis is not None and d.x_numeric:
            return (lambda p: float(p.x)), None
        if d.x_axis is not None:
            cats = d.x_categories
            return (lambda p: float(cats.index(str(p.x)))), cats
        return (lambda p: float(self.series.index(p.series))), self.series

    def xticks(self) -> list[float] | None:
        d = self.data
        if d.x_axis is None or not d.x_numeric:
            return None
        return sorted({float(p.x) for p in d.points if p.x is not None})

    def axis_unit(self, axis: str) -> str | None:
        short = axis.rsplit(".", 1)[-1]
        if short in LOAD_AXES:
            return f"{self.unit}s/s"
        for suffix, unit in AXIS_UNITS:
            if short.endswith(suffix):
                return unit
        return None

    def x_title(self) -> str:
        d = self.data
        if d.x_axis is None:
            return "series"
        if not d.x_numeric:
            return self.x_label
        return self.axis_title(d.x_axis)

    def axis_title(self, axis: str) -> str:
        """``load (messages/s)``: a sweep axis with its unit; non-numeric axes name things
        and have none; a numeric axis of unknown unit says its values are the plan's."""
        values = [r.run.params.get(axis) for r in self.data.runs]
        numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
        if not numeric:
            return short_axis(axis)
        unit = self.axis_unit(axis)
        return f"{short_axis(axis)} ({unit})" if unit else f"{short_axis(axis)} (as in the plan)"

    def series_lines(
        self,
        stat: Callable[[Point], Stat | None],
        rep: Callable[[RunFigures], float | None],
        suffix: str = "",
        marker_index: int | None = None,
        dashed: bool = False,
        factor: float = 1.0,
    ) -> list[plots.Line]:
        xpos, _ = self.x()
        lines = []
        for i, series in enumerate(self.series):
            xs, ys, errs, reps = [], [], [], []
            for p in self.data.points:
                if p.series != series:
                    continue
                st = stat(p)
                if st is None:
                    continue
                xs.append(xpos(p))
                ys.append(st.mean * factor)
                errs.append(None if st.half_width is None else st.half_width * factor)
                values = [rep(r) for r in p.finished]
                reps.append([v * factor for v in values if v is not None and math.isfinite(v)])
            if xs:
                lines.append(
                    plots.Line(
                        series + suffix,
                        xs,
                        ys,
                        errs,
                        self.colours[series],
                        plots.marker(i if marker_index is None else marker_index),
                        dashed,
                        reps,
                        plots.linestyle(i) if not dashed else "--",
                    )
                )
        return lines

    def crossing(self, lines: Sequence[plots.Line]) -> str:
        """A sentence naming the points whose interval includes zero, or ""."""
        _, cats = self.x()
        names = []
        for line in lines:
            for x, y, e in zip(line.xs, line.ys, line.errs, strict=True):
                if plots.crosses_zero(y, e):
                    where = cats[int(x)] if cats is not None else f"{self.x_label}={x:g}"
                    names.append(f"{line.label}, {where}")
        if not names:
            return ""
        return (
            f" <strong>Circled in red: the 95 % interval includes 0</strong> at "
            f"{escape('; '.join(names))}: these repetitions do not show that figure to "
            "differ from zero."
        )

    def point_label(self, r: RunFigures) -> str:
        axes = self.bar_axes()
        return point_label(axes, [r.run.params.get(a) for a in axes])

    def bar_label(self, p: Point) -> str:
        """A point's values only (``kafka · 100 · 5000``), in :meth:`_bar_axes` order."""
        run = p.runs[0].run
        return " · ".join(str(run.params.get(a, "—")) for a in self.bar_axes()) or "all runs"

    def bar_axes(self) -> list[str]:
        d = self.data
        return [*d.series_axes, *([d.x_axis] if d.x_axis else [])]

    def deployment(self, group: str) -> str:
        if not group:
            return "none deployed"
        if group in self.deployments:
            return f"{self.deployments.index(group) + 1} of {len(self.deployments)}"
        return group

    def plan_name(self) -> str:
        return self.paths.text(self.data.experiment.plan_path)
