"""The HTML report: one self-contained file (inline CSS, plots as inline SVG, no script).

:func:`write_report` reads a store and writes the page; :func:`render_report` returns it.
This module imports matplotlib: import it through :mod:`greenflow.report`, which says
what to install when matplotlib is missing. docs/report.md describes the page.
"""

from __future__ import annotations

import html
import json
import math
import string
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

from greenflow import __version__
from greenflow.errors import GreenFlowError, StoreError
from greenflow.report import plots
from greenflow.report.data import (
    IDLE_PART,
    OTHER_PART,
    SHARE_SUFFIX,
    ExperimentData,
    Point,
    RunFigures,
    describe_finite,
    load_experiment,
    point_label,
    power_lines,
    select_power_runs,
    short_axis,
)
from greenflow.report.options import ReportOptions, ReportSummary
from greenflow.stats import Stat, find
from greenflow.store.db import RunStatus, Store

#: Latency keys drawn, in this order, when the workload reports them.
LATENCY_KEYS = ("p50", "p95", "p99", "p999", "max")


def write_report(
    output_dir: str | Path, out: str | Path, options: ReportOptions | None = None
) -> ReportSummary:
    """Write the report of the store in ``output_dir`` to ``out``."""
    options = options or ReportOptions()
    started = time.perf_counter()
    with Store.open(output_dir, create=False) as store:
        page, experiments, runs, shown = _render(store, options)
    out = Path(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(page, encoding="utf-8")
    except OSError as exc:
        raise GreenFlowError(f"cannot write the report to {out}: {exc}") from exc
    return ReportSummary(out, experiments, runs, shown, time.perf_counter() - started)


def render_report(store: Store, options: ReportOptions | None = None) -> str:
    """The report of ``store`` as HTML text."""
    return _render(store, options or ReportOptions())[0]


def _render(store: Store, options: ReportOptions) -> tuple[str, int, int, int]:
    experiments = store.experiments()
    if options.experiment is not None:
        chosen = [e for e in experiments if e.name == options.experiment]
        if not chosen:
            known = ", ".join(e.name for e in experiments) or "none"
            msg = f"no experiment {options.experiment!r} in {store.path}; stored: {known}"
            raise StoreError(msg)
        experiments = chosen
    sections, toc, runs, shown = [], [], 0, 0
    for i, exp in enumerate(experiments):
        data = load_experiment(store, exp, options.x_axis)
        body, n_power = _Section(store, data, options, f"e{i}").render()
        sections.append(body)
        toc.append(f'<li><a href="#e{i}">{_e(exp.name)}</a> — {len(data.runs)} runs</li>')
        runs += len(data.runs)
        shown += n_power
    if not experiments:
        sections.append(f'<p class="note">No experiment is stored in {_e(store.path)} yet.</p>')
    title = (
        ("GreenFlow report: " + experiments[0].name)
        if len(experiments) == 1
        else "GreenFlow report"
    )
    template = string.Template(
        resources.files("greenflow.report").joinpath("template.html").read_text("utf-8")
    )
    page = template.substitute(
        title=_e(title),
        version=_e(__version__),
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        store=_e(store.path),
        toc=f"<nav><ul>{''.join(toc)}</ul></nav>" if len(toc) > 1 else "",
        body="\n".join(sections),
    )
    return page, len(experiments), runs, shown


# -- formatting -----------------------------------------------------------------------


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _num(value: float | None, spec: str = ".4g") -> str:
    if value is None or not math.isfinite(value):
        return ""
    return format(value, spec)


def _stat(st: Stat | None, spec: str = ".4g") -> str:
    if st is None:
        return ""
    if st.half_width is None:
        return f"{st.mean:{spec}} (n=1)"
    return f"{st.mean:{spec}} ± {st.half_width:{spec}} (n={st.n})"


def _when(ts: float | None) -> str:
    if ts is None:
        return ""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def describe_method(method: str) -> str:
    """``method: X — what kind of figure that is``, for figure captions."""
    base = method.removesuffix(SHARE_SUFFIX)
    if base == "rapl":
        kind = "measured by the CPU's RAPL counters (package and DRAM, not the wall plug)"
    elif base.startswith("model:"):
        kind = "an estimate from a CPU-utilisation power model, not a measurement"
    elif base.startswith("workload"):
        kind = "counted or reported by the workload"
    elif base.startswith("plan"):
        kind = "as asked in the plan"
    else:
        kind = f"measured ({base})"
    if method.endswith(SHARE_SUFFIX):
        kind += (
            "; split between services, load generators and the rest by CPU-time share, "
            "itself an estimate"
        )
    return f"method: {method} — {kind}"


def _methods(methods: Iterable[str]) -> str:
    found = list(dict.fromkeys(methods))
    if not found:
        return '<span class="method">method: none stored</span>'
    return " ".join(f'<span class="method">{_e(describe_method(m))}</span>' for m in found)


def _table(
    head: Sequence[str],
    rows: Iterable[Sequence[str]],
    numeric: Sequence[bool] = (),
    row_classes: Sequence[str] = (),
    scroll: bool = False,
) -> str:
    """HTML table; cells are HTML already (escape them before)."""
    num = list(numeric) + [False] * (len(head) - len(numeric))
    out = ["<table><thead><tr>", *(f"<th>{h}</th>" for h in head), "</tr></thead><tbody>"]
    for i, row in enumerate(rows):
        cls = row_classes[i] if i < len(row_classes) and row_classes[i] else ""
        out.append(f'<tr class="{cls}">' if cls else "<tr>")
        out += [
            f'<td class="num">{c}</td>' if num[j] else f"<td>{c}</td>" for j, c in enumerate(row)
        ]
        out.append("</tr>")
    out.append("</tbody></table>")
    text = "".join(out)
    return f'<div class="scroll">{text}</div>' if scroll else text


def _flatten(value: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(value, Mapping):
        out: list[tuple[str, Any]] = []
        for k, v in value.items():
            out += _flatten(v, f"{prefix}.{k}" if prefix else str(k))
        return out
    if isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
        out = []
        for i, v in enumerate(value):
            out += _flatten(v, f"{prefix}[{i}]")
        return out
    return [(prefix, value)]


# -- one experiment ---------------------------------------------------------------------


class _Section:
    """The HTML of one experiment."""

    def __init__(
        self, store: Store, data: ExperimentData, options: ReportOptions, anchor: str
    ) -> None:
        self.store = store
        self.data = data
        self.options = options
        self.anchor = anchor
        series = list(dict.fromkeys(p.series for p in data.points))
        self.colours = {s: plots.series_colour(i) for i, s in enumerate(series)}
        self.series = series
        self.unit = data.unit or "unit"
        self.x_label = short_axis(data.x_axis) if data.x_axis else "series"

    # x positions: the axis's numbers, or category indices (the axis's values in plan
    # order; without an x axis, the series themselves).
    def _x(self) -> tuple[Callable[[Point], float], list[str] | None]:
        d = self.data
        if d.x_axis is not None and d.x_numeric:
            return (lambda p: float(p.x)), None
        if d.x_axis is not None:
            cats = d.x_categories
            return (lambda p: float(cats.index(str(p.x)))), cats
        return (lambda p: float(self.series.index(p.series))), self.series

    def render(self) -> tuple[str, int]:
        d, a = self.data, self.anchor
        power, n_power = self._power()
        parts = [
            f'<section id="{a}">',
            self._header(),
            f'<h3 id="{a}-per-unit">Energy per {_e(self.unit)}</h3>',
            self._per_unit(),
            f'<h3 id="{a}-throughput">Achieved vs asked throughput</h3>',
            self._throughput(),
            f'<h3 id="{a}-breakdown">Where the energy went</h3>',
            self._breakdown(),
            f'<h3 id="{a}-latency">Latency</h3>',
            self._latency(),
            f'<h3 id="{a}-power">Power over time</h3>',
            power,
            f'<h3 id="{a}-points">Points</h3>',
            self._points_table(),
            f'<h3 id="{a}-runs">Runs</h3>',
            self._runs_table(),
            f'<h3 id="{a}-provenance">Provenance</h3>',
            self._provenance(),
            f'<h3 id="{a}-plan">Plan</h3>',
            f'<p class="meta">{_e(d.experiment.plan_path)} (secrets redacted)</p>',
            f"<pre>{_e(d.experiment.plan_text)}</pre>",
            "</section>",
        ]
        return "\n".join(parts), n_power

    def _header(self) -> str:
        d, a = self.data, self.anchor
        counts = d.counts()
        spans = "".join(f'<span class="status-{k}">{n} {k}</span>' for k, n in counts.items() if n)
        axes = ", ".join(_e(short_axis(x)) for x in d.axes) or "none"
        series = ", ".join(_e(short_axis(x)) for x in d.series_axes) or "none (one series)"
        links = " · ".join(
            f'<a href="#{a}-{k}">{t}</a>'
            for k, t in (
                ("per-unit", f"energy per {_e(self.unit)}"),
                ("throughput", "throughput"),
                ("breakdown", "breakdown"),
                ("latency", "latency"),
                ("power", "power"),
                ("points", "points"),
                ("runs", "runs"),
                ("provenance", "provenance"),
                ("plan", "plan"),
            )
        )
        problems = ""
        if counts["failed"] or counts["aborted"]:
            problems = (
                f'<p class="note">{counts["failed"]} failed and {counts["aborted"]} '
                "aborted runs are left out of every figure except power over time; "
                'the <a href="#' + a + '-runs">runs table</a> lists them with their error.</p>'
            )
        return (
            f"<h2>Experiment {_e(d.experiment.name)}</h2>"
            f'<p class="meta">plan <code>{_e(d.experiment.plan_path)}</code> · first stored '
            f"{_when(d.experiment.created_at)} · seed {d.experiment.seed}</p>"
            f'<p class="counts">{len(d.runs)} run{"" if len(d.runs) == 1 else "s"}: '
            f"{spans or 'none'}</p>"
            f'<p class="meta">sweep axes: {axes} · x axis: '
            f"{_e(self.x_label) if d.x_axis else 'none (no numeric axis)'} · series by: {series}"
            " · error bars: 95 % confidence interval of the mean (Student t) over the "
            f'finished repetitions of each point</p><p class="meta">{links}</p>{problems}'
        )

    def _series_lines(
        self,
        stat: Callable[[Point], Stat | None],
        suffix: str = "",
        marker_index: int | None = None,
        dashed: bool = False,
    ) -> list[plots.Line]:
        xpos, _ = self._x()
        lines = []
        for i, series in enumerate(self.series):
            xs, ys, errs = [], [], []
            for p in self.data.points:
                if p.series != series:
                    continue
                st = stat(p)
                if st is None:
                    continue
                xs.append(xpos(p))
                ys.append(st.mean)
                errs.append(st.half_width)
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
                    )
                )
        return lines

    def _per_unit_of(self, method: str | None) -> Callable[[Point], Stat | None]:
        name = self.data.per_unit_name
        return lambda p: _host_stat(p, name, method) if name is not None else None

    def _per_unit(self) -> str:
        d = self.data
        methods = d.methods("per_unit")
        lines = []
        for i, method in enumerate(methods):
            suffix = f" ({method})" if len(methods) > 1 else ""
            lines += self._series_lines(self._per_unit_of(method), suffix, dashed=i > 0)
        if not lines:
            return (
                '<p class="note">No finished run has an energy-per-unit figure (no finished '
                "run, or no energy samples: see the runs table).</p>"
            )
        _, cats = self._x()
        svg = plots.errorbar_figure(
            lines,
            xlabel=self.x_label,
            ylabel=f"host energy per {self.unit} (J)",
            categories=cats,
            alt=f"energy per {self.unit} vs {self.x_label}",
        )
        drawn = {line.label.removesuffix(f" ({m})") for line in lines for m in methods}
        absent = [s for s in self.series if s not in drawn]
        note = (
            f'<p class="note">No finished run with energy figures, so nothing to draw, '
            f"for: {_e(', '.join(absent))} (see the runs table).</p>"
            if absent
            else ""
        )
        return (
            f"<figure>{svg}<figcaption>Host energy over MEASURE ÷ {_e(self.unit)}s the "
            "workload counted inside MEASURE, per point: mean of the finished repetitions, "
            f"error bars 95 % CI. {_methods(methods)}</figcaption></figure>{note}"
        )

    def _throughput(self) -> str:
        d = self.data
        asked_methods = [r.asked.method for r in d.runs if r.finished and r.asked is not None]
        if not any(r.result is not None and r.result.achieved_rate is not None for r in d.runs):
            return '<p class="note">No finished run reports an achieved rate.</p>'
        lines = []
        xpos, _ = self._x()
        for i, series in enumerate(self.series):
            xs, ys, errs = [], [], []
            for p in d.points:
                if p.series != series:
                    continue
                asked = _asked(p)
                got = _summary_stat(p, "achieved_rate")
                if got is None or (asked_methods and asked is None):
                    continue
                xs.append(asked.mean if asked is not None else xpos(p))
                ys.append(got.mean)
                errs.append(got.half_width)
            if xs:
                lines.append(
                    plots.Line(series, xs, ys, errs, self.colours[series], plots.marker(i))
                )
        rate = f"{self.unit}s/s"
        method = _methods(["workload"])
        if asked_methods:
            svg = plots.errorbar_figure(
                lines,
                xlabel=f"asked ({rate})",
                ylabel=f"achieved ({rate})",
                diagonal=True,
                alt="achieved vs asked throughput",
            )
            sources = ", ".join(dict.fromkeys(asked_methods))
            return (
                f"<figure>{svg}<figcaption>Achieved: {_e(self.unit)}s counted inside MEASURE"
                f" ÷ its duration, mean ± 95 % CI; asked: {_e(sources)}. Points under the "
                f"dotted line did not sustain what was asked. {method}</figcaption></figure>"
            )
        _, cats = self._x()
        svg = plots.errorbar_figure(
            lines,
            xlabel=self.x_label,
            ylabel=f"achieved ({rate})",
            categories=cats,
            alt="achieved throughput",
        )
        return (
            '<p class="note">The workload reports no asked rate (no asked_*_per_s figure) '
            "and there is no load axis: achieved throughput is shown alone.</p>"
            f"<figure>{svg}<figcaption>{_e(self.unit)}s counted inside MEASURE ÷ its "
            f"duration, mean ± 95 % CI. {method}</figcaption></figure>"
        )

    def _part_colours(self, names: Sequence[str]) -> dict[str, str]:
        colours = dict(plots.PART_COLOURS)
        palette = iter(plots.SERIES_COLOURS)
        for n in names:
            if n not in colours:
                colours[n] = next(palette, "#777777")
        return colours

    def _breakdown(self) -> str:
        d = self.data
        finished = [r for r in d.runs if r.finished and r.parts]
        if not finished:
            return '<p class="note">No finished run has energy figures to break down.</p>'
        names = list(dict.fromkeys(n for r in finished for n in r.parts))
        # Services first, then load generators, other, idle: the order of the stack.
        rank = {"service": 0, "loadgen": 1}
        names.sort(
            key=lambda n: (rank.get(n.split(":", 1)[0], 2), n == OTHER_PART, n == IDLE_PART, n)
        )
        per_run = len(finished) <= self.options.per_run_bars
        if per_run:
            finished.sort(key=lambda r: r.run.order)
            labels = [f"#{r.run.order} {self._point_label(r)}" for r in finished]
            values = {n: [r.parts.get(n, 0.0) for r in finished] for n in names}
            what = "one bar per finished run (#order, then its point)"
        else:
            points = [p for p in d.points if any(r.parts for r in p.finished)]
            labels = [self._bar_label(p) for p in points]
            values = {
                n: [_mean(r.parts.get(n, 0.0) for r in p.finished if r.parts) for p in points]
                for n in names
            }
            named = " · ".join(short_axis(a) for a in self._bar_axes())
            what = (
                f"one bar per point ({_e(named)}), the mean of its finished runs "
                f"({len(finished)} runs are more than {self.options.per_run_bars}, the "
                "limit for one bar per run)"
            )
        svg = plots.breakdown_figure(
            labels, values, self._part_colours(names), "energy over MEASURE (J)", "energy breakdown"
        )
        idle = all(r.idle_measured for r in finished)
        idle_text = (
            "Idle: the baseline's idle power × MEASURE duration."
            if idle
            else "Idle power was not measured for some runs (no baseline): their idle "
            "energy is inside the other parts."
        )
        methods = [*d.methods("parts"), *(m for m in d.methods("energy"))]
        return (
            f"<figure>{svg}<figcaption>Host energy over MEASURE split into services "
            "(service:…), load generators (loadgen:…), the rest of the host (other) and "
            f"idle; {what}. {idle_text} A part can be slightly negative under noise "
            f"(drawn below zero). {_methods(methods)}</figcaption></figure>"
        )

    def _latency(self) -> str:
        d = self.data
        keys = [
            k
            for k in LATENCY_KEYS
            if any(r.result is not None and k in r.result.latency_ms for r in d.runs if r.finished)
        ]
        if not keys:
            return '<p class="note">The workload reports no latency.</p>'
        lines = []
        for j, key in enumerate(keys):
            lines += self._series_lines(_latency_of(key), marker_index=j, dashed=key == "max")
        styles = [(k, plots.marker(j), k == "max") for j, k in enumerate(keys)]
        ys = [y for line in lines for y in line.ys if y > 0]
        logy = bool(ys) and max(ys) / min(ys) > 30
        _, cats = self._x()
        svg = plots.errorbar_figure(
            lines,
            xlabel=self.x_label,
            ylabel="latency (ms)",
            categories=cats,
            logy=logy,
            styles=styles,
            alt="latency percentiles",
        )
        return (
            f"<figure>{svg}<figcaption>Latency percentiles ({', '.join(keys)}) as the "
            "workload's load generator reports them for MEASURE, mean ± 95 % CI over "
            f"repetitions{'; logarithmic scale' if logy else ''}. "
            f"{_methods(['workload'])}</figcaption></figure>"
        )

    def _power(self) -> tuple[str, int]:
        d = self.data
        chosen = select_power_runs(d.points, self.options.power_plots)
        candidates = sum(r.run.status in (RunStatus.FINISHED, RunStatus.FAILED) for r in d.runs)
        figures, methods, empty = [], [], []
        for r in chosen:
            samples = [
                *self.store.samples(d.experiment.id, r.run.run_id, "energy_joules"),
                *self.store.samples(d.experiment.id, r.run.run_id, "host_energy_joules"),
            ]
            lines = power_lines(samples)
            title = f"#{r.run.order} rep {r.run.repetition} · {self._point_label(r)} · {r.run.status.value}"
            if not lines:
                empty.append(f"{title} ({len(samples)} energy samples)")
                continue
            starts = [t for t in r.run.phases.values()]
            t0 = min(starts) if starts else min(p[0] for line in lines for p in line.points)
            bounds = sorted(r.run.phases.items(), key=lambda kv: kv[1])
            last = max(p[0] for line in lines for p in line.points)
            spans = [
                (name, start - t0, (bounds[i + 1][1] if i + 1 < len(bounds) else last) - t0)
                for i, (name, start) in enumerate(bounds)
                if name != "end"
            ]
            methods += [line.method for line in lines]
            svg = plots.power_figure(
                [
                    (f"{line.host} ({line.method})", [(t - t0, w) for t, w in line.points])
                    for line in lines
                ],
                spans,
                f"power over time: {title}",
            )
            status = r.run.status.value
            figures.append(
                f'<figure class="run-{status}"><figcaption class="run-title">'
                f"{_e(title)}</figcaption>{svg}</figure>"
            )
        legend = "".join(
            f'<span><i style="background:{c}"></i>{_e(n)}</span>'
            for n, c in plots.PHASE_COLOURS.items()
        )
        shown = len(figures)
        if candidates > len(chosen):
            scope = (
                f"Showing {len(chosen)} of the {candidates} runs with samples: the first "
                "repetition of each point first, then further repetitions, in run order "
                "(<code>--power-plots N</code> shows more; each plot costs tens of "
                "milliseconds to draw)."
            )
        else:
            scope = f"All {candidates} runs with samples (aborted runs keep none)."
        notes = "".join(f"<li>{_e(t)}</li>" for t in empty)
        missing = (
            f'<div class="meta">Too few energy samples to draw power for: <ul>{notes}</ul></div>'
            if empty
            else ""
        )
        return (
            f'<p class="meta">{scope}</p><figure><p class="legend">{legend}</p>'
            f'<div class="grid">{"".join(figures)}</div>{missing}'
            "<figcaption>Power = the growth of the host's cumulative energy counter "
            "between consecutive samples ÷ the time between them (a mean over each "
            "sampling interval, plotted at its middle), summed over the counters that make "
            "up host energy. Time is from the run's first phase; shading shows the phases, "
            f"and energy figures use MEASURE only. {_methods(methods)}</figcaption></figure>",
            shown,
        )

    def _point_label(self, r: RunFigures) -> str:
        axes = self._bar_axes()
        return point_label(axes, [r.run.params.get(a) for a in axes])

    def _bar_label(self, p: Point) -> str:
        """A point's values only (``kafka · 100 · 5000``), in :meth:`_bar_axes` order."""
        run = p.runs[0].run
        return " · ".join(str(run.params.get(a, "—")) for a in self._bar_axes()) or "all runs"

    def _bar_axes(self) -> list[str]:
        d = self.data
        return [*d.series_axes, *([d.x_axis] if d.x_axis else [])]

    def _points_table(self) -> str:
        d = self.data
        rows, head = (
            [],
            [
                "series",
                _e(self.x_label),
                "finished / runs",
                f"J per {_e(self.unit)}",
                "host energy J",
                f"achieved {_e(self.unit)}s/s",
                "asked /s",
                "latency p99 ms",
            ],
        )
        for p in d.points:
            fin = p.finished
            rows.append(
                [
                    _e(p.series),
                    _e("" if p.x is None else p.x),
                    f"{len(fin)} / {len(p.runs)}",
                    _e(_stat(self._per_unit_of(None)(p))),
                    _e(_stat(_host_stat(p, "energy_joules", None))),
                    _e(_stat(_summary_stat(p, "achieved_rate"))),
                    _e(_stat(_asked(p))),
                    _e(_stat(_summary_stat(p, "latency_ms.p99"))),
                ]
            )
        return (
            '<p class="meta">Mean ± half-width of the 95 % CI (n = finished repetitions).'
            "</p>"
            + _table(
                head,
                rows,
                numeric=[False, True, True, True, True, True, True, True],
                scroll=len(rows) > 25,
            )
        )

    def _runs_table(self) -> str:
        d = self.data
        axes = d.axes
        head = [
            "#",
            "rep",
            *(_e(short_axis(a)) for a in axes),
            "status",
            "attempts",
            f"{_e(self.unit)}s",
            "rate /s",
            "energy J",
            f"J per {_e(self.unit)}",
            "method",
            "run id",
            "error (first line)",
        ]
        rows, classes = [], []
        for r in sorted(d.runs, key=lambda r: r.run.order):
            run, res = r.run, r.result
            status = run.status.value
            error = (run.error or "").strip().splitlines()
            rows.append(
                [
                    str(run.order),
                    str(run.repetition),
                    *(
                        _e(
                            json.dumps(run.params[a])
                            if isinstance(run.params.get(a), list | dict)
                            else run.params.get(a, "")
                        )
                        for a in axes
                    ),
                    f'<span class="status-{status}">{status}</span>',
                    str(run.attempts),
                    _num(res.units, ".6g") if res is not None else "",
                    _num(res.achieved_rate) if res is not None else "",
                    _num(r.energy.value) if r.energy is not None else "",
                    _num(r.per_unit.value) if r.per_unit is not None else "",
                    _e(r.energy.method) if r.energy is not None else "",
                    f"<code>{_e(run.run_id)}</code>",
                    f'<span class="error">{_e(error[0])}</span>' if error else "",
                ]
            )
            classes.append(f"run-{status}")
        n = len(axes)
        return _table(
            head,
            rows,
            numeric=[True, True, *([False] * n), False, True, True, True, True, True],
            row_classes=classes,
            scroll=len(rows) > 25,
        )

    def _provenance(self) -> str:
        prov = dict(self.data.experiment.provenance)
        order = prov.pop("order", None)
        rows = []
        for key, value in _flatten(prov):
            text = value if isinstance(value, str) else json.dumps(value)
            cell = _e(text)
            if len(text) > 160:
                cell = f"<details><summary>{_e(text[:80])}…</summary>{cell}</details>"
            rows.append([f"<code>{_e(key)}</code>", cell])
        if isinstance(order, list):
            rows.append(
                [
                    "<code>order</code>",
                    f"{len(order)} run ids in execution order (the # column of the runs table)",
                ]
            )
        if not rows:
            return '<p class="note">No provenance was recorded.</p>'
        return _table(["what", "value"], rows)


def _summary_stat(p: Point, column: str) -> Stat | None:
    return p.summary.stats.get(column) if p.summary is not None else None


def _host_stat(p: Point, name: str, method: str | None) -> Stat | None:
    """greenflow.stats' figure ``name`` of the whole host scope (over all hosts)."""
    return find(p.summary, name, {"scope": "host"}, method) if p.summary is not None else None


def _asked(p: Point) -> Stat | None:
    # Not from the summary: the asked rate may come from the plan's load parameter.
    found = [r.asked for r in p.finished if r.asked is not None]
    return describe_finite((a.value for a in found), found[0].method) if found else None


def _latency_of(key: str) -> Callable[[Point], Stat | None]:
    return lambda p: _summary_stat(p, f"latency_ms.{key}")


def _mean(values: Iterable[float]) -> float:
    data = list(values)
    return math.fsum(data) / len(data) if data else 0.0
