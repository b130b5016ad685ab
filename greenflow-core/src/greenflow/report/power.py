"""Power over time: the idle baselines and the runs, on one power axis, with the idle
power drawn as a line."""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from greenflow.report import plots
from greenflow.report.context import (
    Context,
)
from greenflow.report.data import (
    PowerLine,
    baseline_samples,
    power_lines,
    select_power_runs,
)
from greenflow.report.text import (
    escape,
    methods_html,
)
from greenflow.store.db import BaselineRow, RunStatus


@attrs.frozen
class _PowerPlot:
    title: str
    css: str  # the figure's class: baseline, run-finished, run-failed
    lines: list[PowerLine]
    t0: float  # time zero of the plot, Unix s
    spans: list[tuple[str, float, float]]  # shaded phases, s since t0
    idle: list[plots.IdleLine]


def _idle_lines(ctx: Context, group: str, hosts: Sequence[str]) -> list[plots.IdleLine]:
    out = []
    for i in ctx.data.idle:
        if i.group != group or i.host not in hosts:
            continue
        index = hosts.index(i.host)
        who = f"{i.host} " if len(hosts) > 1 else ""
        if i.opening is not None:
            out.append(
                plots.IdleLine(
                    f"{who}idle, opening {i.opening.mean_watts:.3g} W",
                    i.opening.mean_watts,
                    index,
                )
            )
        if i.closing is not None:
            out.append(
                plots.IdleLine(
                    f"{who}idle, closing {i.closing.mean_watts:.3g} W",
                    i.closing.mean_watts,
                    index,
                    closing=True,
                )
            )
    return out


def _baselines(ctx: Context) -> list[tuple[str, str, list[BaselineRow]]]:
    """(title, group, each host's row) of each baseline window, in time order."""
    found: dict[tuple[str, str], list[BaselineRow]] = {}
    for i in ctx.data.idle:
        for b in (i.services_down, i.opening, i.closing):
            if b is not None:
                found.setdefault((i.group, b.kind), []).append(b)
    out = []
    for (group, kind), rows in found.items():
        where = f"deployment {ctx.deployment(group)}" if len(ctx.deployments) > 1 else ""
        out.append((f"{kind} baseline {where}".strip(), group, rows))
    return sorted(out, key=lambda t: t[2][0].start)


def power(ctx: Context) -> tuple[str, int]:
    d = ctx.data
    chosen = select_power_runs(d.points, ctx.options.power_plots)
    candidates = sum(r.run.status in (RunStatus.FINISHED, RunStatus.FAILED) for r in d.runs)
    drawn: list[_PowerPlot] = []
    methods, empty = [], []
    baselines = _baselines(ctx) if ctx.options.power_plots else []
    if baselines:
        every = ctx.store.samples(d.experiment.id, None, "energy_joules")
        every += ctx.store.samples(d.experiment.id, None, "host_energy_joules")
        for title, _, rows in baselines:
            first = rows[0]
            lines = power_lines(baseline_samples(every, first))
            if not lines:
                empty.append(f"{title} (no energy samples)")
                continue
            hosts = [line.host for line in lines]
            means = {b.host: b.mean_watts for b in rows}
            idle = [
                plots.IdleLine(
                    f"{h + ' ' if len(hosts) > 1 else ''}mean {means[h]:.3g} W",
                    means[h],
                    k,
                    closing=first.kind == "closing",
                )
                for k, h in enumerate(hosts)
                if h in means
            ]
            methods += [line.method for line in lines]
            spans = [("baseline", 0.0, first.end - first.start)]
            drawn.append(_PowerPlot(title, "baseline", lines, first.start, spans, idle))
    for r in chosen:
        samples = [
            *ctx.store.samples(d.experiment.id, r.run.run_id, "energy_joules"),
            *ctx.store.samples(d.experiment.id, r.run.run_id, "host_energy_joules"),
        ]
        lines = power_lines(samples)
        title = (
            f"#{r.run.order} rep {r.run.repetition} · {ctx.point_label(r)} · {r.run.status.value}"
        )
        if not lines:
            empty.append(f"{title} ({len(samples)} energy samples)")
            continue
        starts = list(r.run.phases.values())
        t0 = min(starts) if starts else min(p[0] for line in lines for p in line.points)
        bounds = sorted(r.run.phases.items(), key=lambda kv: kv[1])
        last = max(p[0] for line in lines for p in line.points)
        spans = [
            (name, start - t0, (bounds[i + 1][1] if i + 1 < len(bounds) else last) - t0)
            for i, (name, start) in enumerate(bounds)
            if name != "end"
        ]
        methods += [line.method for line in lines]
        idle = _idle_lines(ctx, r.run.group, [line.host for line in lines])
        drawn.append(_PowerPlot(title, f"run-{r.run.status.value}", lines, t0, spans, idle))
    # One y scale for every power plot of the experiment, baselines included: they
    # compare at a glance, and the idle lines sit where the baselines are.
    top = max(
        [w for f in drawn for line in f.lines for _, w in line.points]
        + [i.watts for f in drawn for i in f.idle],
        default=1.0,
    )
    top = top * 1.12 if top > 0 else 1.0
    figures = []
    for f in drawn:
        svg = plots.power_figure(
            [
                (f"{line.host} ({line.method})", [(t - f.t0, w) for t, w in line.points])
                for line in f.lines
            ],
            f.spans,
            f"power over time: {f.title}",
            idle=f.idle,
            top=top,
        )
        figures.append(
            f'<figure class="{f.css}"><figcaption class="run-title">'
            f"{escape(f.title)}</figcaption>{svg}</figure>"
        )
    legend = "".join(
        f'<span><i style="background:{c}"></i>{escape(n)}</span>'
        for n, c in plots.PHASE_COLOURS.items()
    )
    n_runs = sum(1 for f in drawn if f.css != "baseline")
    if candidates > len(chosen):
        scope = (
            f"Showing {len(chosen)} of the {candidates} runs with samples: the first "
            "repetition of each point first, then further repetitions, in run order "
            "(<code>--power-plots N</code> shows more; each plot costs tens of "
            "milliseconds to draw)."
        )
    else:
        scope = f"All {candidates} runs with samples (aborted runs keep none)."
    if baselines:
        scope += " The idle baselines come first."
    notes = "".join(f"<li>{escape(t)}</li>" for t in empty)
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
        "up host energy. Time is from the run's (or baseline's) start; shading shows the "
        "phases, and energy figures use MEASURE only. Dashed: the deployment's idle "
        "power from its opening baseline (subtracted from the run's energy for the "
        "dynamic figures); dotted: the closing baseline's. Every plot has the same power "
        f"axis, baselines included. {methods_html(methods)}</figcaption></figure>",
        n_runs,
    )
