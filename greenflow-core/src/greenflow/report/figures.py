"""The report's figures against the sweep: energy per unit of work (the system under
test's own, the host's, the dynamic one), the energy breakdown by point, throughput
and latency."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import TypeVar

from greenflow.report import plots
from greenflow.report.context import (
    Context,
    asked_rate,
    group_stat,
    host_stat,
    mean_of,
    share_label,
    summary_stat,
    workload_type,
)
from greenflow.report.data import (
    IDLE_PART,
    OTHER_PART,
    SHARE_SUFFIX,
    Point,
    RunFigures,
    describe_finite,
    short_axis,
)
from greenflow.report.text import (
    escape,
    methods_html,
)
from greenflow.stats import Stat

T = TypeVar("T")
R = TypeVar("R")

#: The latency percentiles drawn, one panel each, when the workload reports them.
LATENCY_PANELS = ("p50", "p99")
#: The window each workload's latency covers, for the latency captions: (workload type,
#: a result metric that marks the variant, or "" for any, caption). The first match
#: wins; a workload not listed gets a caption saying that the report does not know it.
#: kafka-ingest with Kafka's perf tool reports its steady-state summary; its own load
#: generator (which stores ``latency_samples``) reports the intervals inside MEASURE.
LATENCY_WINDOWS = (
    (
        "kafka-ingest",
        "latency_samples",
        "from each message's due time to its acknowledgement, over the load generators' "
        "report intervals inside MEASURE, merged over generators (docs/kafka.md, What is "
        "measured)",
    ),
    (
        "kafka-ingest",
        "",
        "producer send → acknowledgement, from each producer's steady-state summary: "
        "every record it sent after its warm-up records (rate × <code>warmup</code>), "
        "i.e. the <code>settle</code> wait, MEASURE and the <code>tail</code> after it — "
        "not MEASURE alone; the value is the worst producer's percentile, an upper bound "
        "(docs/kafka.md, What is measured)",
    ),
)


def _by_method(f: Callable[[T, str], R], method: str, x: T) -> R:
    return f(x, method)


def _group_per_unit(name: str, group: str, p: Point, method: str) -> Stat | None:
    return group_stat(p, name, group, method)


def _run_group_per_unit(group: str, r: RunFigures, method: str) -> float | None:
    g = r.groups.get(group)
    if g is None or r.energy is None or r.energy.method != method:
        return None
    return g.per_unit


def _latency_stat(key: str, p: Point) -> Stat | None:
    return summary_stat(p, f"latency_ms.{key}")


def _run_latency(key: str, r: RunFigures) -> float | None:
    return r.result.latency_ms.get(key) if r.result is not None else None


def _panel(
    ctx: Context,
    *,
    stat: Callable[[Point, str], Stat | None],
    rep: Callable[[RunFigures, str], float | None],
    methods: Sequence[str],
    quantity: str,
    alt: str,
    caption: str,
    method_labels: Sequence[str],
) -> str:
    """One figure of a per-unit figure against the x axis: one line per series and
    method (dashed for methods after the first), values scaled to an SI prefix."""
    raw: list[float] = []
    for m in methods:
        for p in ctx.data.points:
            st = stat(p, m)
            if st is not None:
                raw += [st.mean, st.mean + (st.half_width or 0.0)]
    if not raw:
        return ""
    factor, prefix = plots.si_scale(raw)
    lines = []
    for i, m in enumerate(methods):
        suffix = f" ({m})" if len(methods) > 1 else ""
        lines += ctx.series_lines(
            functools.partial(_by_method, stat, m),
            functools.partial(_by_method, rep, m),
            suffix,
            dashed=i > 0,
            factor=factor,
        )
    if not lines:
        return ""
    _, cats = ctx.x()
    svg = plots.errorbar_figure(
        lines,
        xlabel=ctx.x_title(),
        ylabel=f"{quantity} ({prefix}J per {ctx.unit})",
        categories=cats,
        xticks=ctx.xticks(),
        alt=alt,
    )
    return (
        f"<figure>{svg}<figcaption>{caption}{ctx.crossing(lines)} "
        f"{methods_html(method_labels)}</figcaption></figure>"
    )


def per_unit(ctx: Context) -> str:
    d = ctx.data
    name = d.per_unit_name
    methods = d.methods("per_unit")
    if name is None or not methods:
        return (
            '<p class="note">No finished run has an energy-per-unit figure (no finished '
            "run, or no energy samples: see the runs table).</p>"
        )
    u = escape(ctx.unit)
    figures = []
    for group in ctx.services:
        label = group.split(":", 1)[-1]
        figures.append(
            _panel(
                ctx,
                stat=functools.partial(_group_per_unit, name, group),
                rep=functools.partial(_run_group_per_unit, group),
                methods=methods,
                quantity=f"{label}'s energy",
                alt=f"service {label} energy per {ctx.unit} vs {ctx.x_label}",
                caption=(
                    f"<b>The system under test's own J per {u}</b>: the energy attributed "
                    f"to <code>{escape(group)}</code> (its share of the host's busy CPU "
                    f"time × the dynamic energy) over MEASURE ÷ {u}s counted inside "
                    "MEASURE. Idle power is not attributed: it is in the host's figure "
                    "below."
                ),
                method_labels=[m + SHARE_SUFFIX for m in methods],
            )
        )
    figures.append(
        _panel(
            ctx,
            stat=lambda p, m: host_stat(p, name, m),
            rep=lambda r, m: (
                r.per_unit.value if r.per_unit is not None and r.per_unit.method == m else None
            ),
            methods=methods,
            quantity="host energy",
            alt=f"energy per {ctx.unit} vs {ctx.x_label}",
            caption=(
                f"<b>Host J per {u}</b>: host energy over MEASURE (summed over hosts, idle "
                f"included) ÷ {u}s the workload counted inside MEASURE, per point. A curve "
                "that falls with load shows idle power being amortised."
            ),
            method_labels=methods,
        )
    )
    figures.append(
        _panel(
            ctx,
            stat=lambda p, m: host_stat(p, f"active_{name}", m),
            rep=lambda r, m: (
                r.active_per_unit.value
                if r.active_per_unit is not None and r.active_per_unit.method == m
                else None
            ),
            methods=methods,
            quantity="dynamic energy",
            alt=f"dynamic energy per {ctx.unit} vs {ctx.x_label}",
            caption=(
                f"<b>Dynamic J per {u}</b>: host energy minus idle power × MEASURE "
                f"(<code>active_{escape(name)}</code>), what the load itself cost. Its "
                "interval adds the idle power's uncertainty, which is common to all "
                "repetitions of a deployment and does not shrink with them."
            ),
            method_labels=methods,
        )
    )
    if not figures[-1]:
        figures[-1] = '<p class="note">No dynamic figure: no idle baseline was measured.</p>'
    model = [m for m in methods if m.startswith("model:")]
    model_note = (
        '<p class="note">Under <code>model:&lt;name&gt;</code> most of the fall of the host '
        "J/unit with load is the modelled idle power amortised over more units: idle power "
        "is the model's input (<code>idle_watts</code>), not a measurement. Model figures "
        "are computed from CPU time, so systems compared under the model are compared by "
        "CPU-seconds: the same CPU-seconds give the same joules.</p>"
        if model
        else ""
    )
    drawn = {p.series for p in d.points if host_stat(p, name, None) is not None}
    absent = [s for s in ctx.series if s not in drawn]
    note = (
        f'<p class="note">No finished run with energy figures, so nothing to draw, '
        f"for: {escape(', '.join(absent))} (see the runs table).</p>"
        if absent
        else ""
    )
    no_service = (
        ""
        if ctx.services
        else '<p class="note">No energy was attributed to a service (no process '
        "collector, or no service process seen): only the host's figures exist.</p>"
    )
    return (
        '<p class="meta">Lower is better. Overlapping error bars mean the difference is '
        "not established by these repetitions.</p>"
        + no_service
        + "".join(figures)
        + model_note
        + note
    )


def _part_colours(ctx: Context, names: Sequence[str]) -> dict[str, str]:
    colours = dict(plots.PART_COLOURS)
    palette = iter(plots.SERIES_COLOURS)
    for n in names:
        if n not in colours:
            colours[n] = next(palette, "#777777")
    return colours


def breakdown(ctx: Context) -> str:
    d = ctx.data
    finished = [r for r in d.runs if r.finished and r.parts]
    if not finished:
        return '<p class="note">No finished run has energy figures to break down.</p>'
    names = list(dict.fromkeys(n for r in finished for n in r.parts))
    # Services first, then load generators, other, idle.
    rank = {"service": 0, "loadgen": 1}
    names.sort(key=lambda n: (rank.get(n.split(":", 1)[0], 2), n == IDLE_PART, n == OTHER_PART, n))
    points = [p for p in d.points if any(r.parts for r in p.finished)]
    labels = [ctx.bar_label(p) for p in points]
    raw = [v for r in finished for v in r.parts.values()]
    factor, prefix = plots.si_scale(raw)
    colours = _part_colours(ctx, names)
    bars = []
    for n in names:
        means: list[float | None] = []
        errs: list[float | None] = []
        reps: list[list[float]] = []
        shares: list[str] = []
        for p in points:
            runs = [r for r in p.finished if r.parts]
            values = [r.parts[n] for r in runs if n in r.parts]
            st = describe_finite(values, "")
            whole = mean_of(r.energy.value for r in runs if r.energy is not None)
            means.append(None if st is None else st.mean * factor)
            errs.append(None if st is None or st.half_width is None else st.half_width * factor)
            reps.append([v * factor for v in values])
            share = st.mean / whole if st is not None and whole else None
            shares.append(share_label(share))
        bars.append(plots.Bars(n, means, errs, reps, shares, colours[n]))
    svg = plots.grouped_bars_figure(
        labels,
        bars,
        f"energy over MEASURE ({prefix}J)",
        "energy breakdown by point",
        xlabel=" · ".join(ctx.axis_title(a) for a in ctx.bar_axes()) or "all runs",
    )
    idle = all(r.idle_measured for r in finished)
    idle_text = (
        "Idle: the baseline's idle power × MEASURE duration."
        if idle
        else "Idle power was not measured for some runs (no baseline): their idle "
        "energy is inside the other parts."
    )
    named = " · ".join(short_axis(a) for a in ctx.bar_axes())
    methods = [*d.methods("parts"), *(m for m in d.methods("energy"))]
    if len(points) * len(names) <= plots.BAR_DETAIL_LIMIT:
        detail = "dots = the repetitions; the label is the part's share of the host's energy"
    else:
        detail = (
            f"with more than {plots.BAR_DETAIL_LIMIT} bars, the repetitions and the shares "
            "are left out of the figure (the shares are in the points table)"
        )
    return (
        f"<figure>{svg}<figcaption>Host energy over MEASURE split into services "
        "(service:…), load generators (loadgen:…), the rest of the host (other) and "
        f"idle, side by side for each point ({escape(named or 'all runs')}): bar = mean "
        f"of the finished repetitions, whisker = 95 % CI; {detail}. The split of the "
        "dynamic energy "
        f"is by CPU-time share. {idle_text} A part can be slightly negative under noise "
        f"(drawn below zero). {methods_html(methods)}</figcaption></figure>"
    )


def throughput(ctx: Context) -> str:
    d = ctx.data
    asked_methods = [r.asked.method for r in d.runs if r.finished and r.asked is not None]
    if not any(r.result is not None and r.result.achieved_rate is not None for r in d.runs):
        return '<p class="note">No finished run reports an achieved rate.</p>'
    lines = []
    xpos, _ = ctx.x()
    for i, series in enumerate(ctx.series):
        xs, ys, errs, reps = [], [], [], []
        for p in d.points:
            if p.series != series:
                continue
            asked = asked_rate(p)
            got = summary_stat(p, "achieved_rate")
            if got is None or (asked_methods and asked is None):
                continue
            xs.append(asked.mean if asked is not None else xpos(p))
            ys.append(got.mean)
            errs.append(got.half_width)
            reps.append(
                [
                    r.result.achieved_rate
                    for r in p.finished
                    if r.result is not None and r.result.achieved_rate is not None
                ]
            )
        if xs:
            lines.append(
                plots.Line(
                    series,
                    xs,
                    ys,
                    errs,
                    ctx.colours[series],
                    plots.marker(i),
                    reps=reps,
                    linestyle=plots.linestyle(i),
                )
            )
    rate = f"{ctx.unit}s/s"
    method = methods_html(["workload"])
    apart = (
        " Series at the same asked rate are shifted sideways a little, and differ by "
        "marker and line style, so that none hides another."
        if len(lines) > 1
        else ""
    )
    if asked_methods:
        ticks = sorted({x for line in lines for x in line.xs})
        svg = plots.errorbar_figure(
            lines,
            xlabel=f"asked ({rate})",
            ylabel=f"achieved ({rate})",
            diagonal=True,
            xticks=ticks,
            alt="achieved vs asked throughput",
        )
        sources = ", ".join(dict.fromkeys(asked_methods))
        return (
            f"<figure>{svg}<figcaption>Achieved: {escape(ctx.unit)}s counted inside "
            f"MEASURE ÷ its duration, mean ± 95 % CI; asked: {escape(sources)}. Points "
            f"under the dotted line did not sustain what was asked.{apart} {method}"
            "</figcaption></figure>"
        )
    _, cats = ctx.x()
    svg = plots.errorbar_figure(
        lines,
        xlabel=ctx.x_title(),
        ylabel=f"achieved ({rate})",
        categories=cats,
        xticks=ctx.xticks(),
        alt="achieved throughput",
    )
    return (
        '<p class="note">The workload reports no asked rate (no asked_*_per_s figure) '
        "and there is no load axis: achieved throughput is shown alone.</p>"
        f"<figure>{svg}<figcaption>{escape(ctx.unit)}s counted inside MEASURE ÷ its "
        f"duration, mean ± 95 % CI.{apart} {method}</figcaption></figure>"
    )


def _latency_window(ctx: Context) -> str:
    kind = workload_type(ctx.data.experiment.plan_text)
    stored = {
        k for r in ctx.data.runs if r.finished and r.result is not None for k in r.result.metrics
    }
    for workload, marker, text in LATENCY_WINDOWS:
        if workload == kind and (not marker or marker in stored):
            return f"The <code>{escape(kind)}</code> workload's latency is {text}."
    return (
        "As the workload reports it; the report does not know which window the workload "
        "measured it over (see the workload's documentation): it may be more than MEASURE."
    )


def latency(ctx: Context) -> str:
    d = ctx.data
    keys = [
        k
        for k in LATENCY_PANELS
        if any(r.result is not None and k in r.result.latency_ms for r in d.runs if r.finished)
    ]
    if not keys:
        return '<p class="note">The workload reports no latency.</p>'
    window = _latency_window(ctx)
    out = []
    for key in keys:
        lines = ctx.series_lines(
            functools.partial(_latency_stat, key), functools.partial(_run_latency, key)
        )
        ys = [y for line in lines for y in line.ys if y > 0]
        logy = bool(ys) and max(ys) / min(ys) > 30
        _, cats = ctx.x()
        svg = plots.errorbar_figure(
            lines,
            xlabel=ctx.x_title(),
            ylabel=f"{key} latency (ms)",
            categories=cats,
            xticks=ctx.xticks(),
            logy=logy,
            alt=f"latency {key}",
        )
        out.append(
            f"<figure>{svg}<figcaption><b>{key} latency</b>, mean ± 95 % CI over the "
            f"repetitions{'; logarithmic scale' if logy else ''}. {window}"
            f"{ctx.crossing(lines)} {methods_html(['workload'])}</figcaption></figure>"
        )
    others = [
        k
        for k in ("avg", "p95", "p999", "max")
        if any(r.result is not None and k in r.result.latency_ms for r in d.runs if r.finished)
    ]
    rest = (
        f'<p class="meta">Also reported, in the exports: {", ".join(others)}.</p>' if others else ""
    )
    return "".join(out) + rest
