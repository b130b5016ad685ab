"""One experiment's part of the report, as HTML: its parts in reading order.

Warnings and idle power come before any figure (a reader should know what to distrust
before reading a number), then a protocol's conclusion and saturation curve when there is
one, then the system under test's own J per unit, the host's, the dynamic one.
docs/report.md describes each part.
"""

from __future__ import annotations

from greenflow.report.context import Context
from greenflow.report.data import short_axis
from greenflow.report.figures import breakdown, latency, per_unit, throughput
from greenflow.report.power import power
from greenflow.report.saturation import saturation
from greenflow.report.tables import (
    idle,
    points_table,
    provenance,
    runs_table,
    wall_checks,
    warnings,
)
from greenflow.report.text import escape, when


def render(ctx: Context) -> tuple[str, int]:
    """The section's HTML and how many power plots of runs it drew."""
    d, a = ctx.data, ctx.anchor
    power_html, n_power = power(ctx)
    curve = saturation(ctx)
    walls = wall_checks(ctx)
    parts = [
        f'<section id="{a}">',
        header(ctx, saturation=bool(curve)),
        f'<h3 id="{a}-warnings">Warnings</h3>',
        warnings(ctx),
        f'<h3 id="{a}-idle">Idle power</h3>',
        idle(ctx),
        *([f'<h3 id="{a}-wall">Instruments against the wall</h3>', walls] if walls else []),
        *([f'<h3 id="{a}-saturation">Saturation curve</h3>', curve] if curve else []),
        f'<h3 id="{a}-per-unit">Energy per {escape(ctx.unit)}</h3>',
        per_unit(ctx),
        f'<h3 id="{a}-breakdown">Where the energy went</h3>',
        breakdown(ctx),
        f'<h3 id="{a}-throughput">Achieved vs asked throughput</h3>',
        throughput(ctx),
        f'<h3 id="{a}-latency">Latency</h3>',
        latency(ctx),
        f'<h3 id="{a}-power">Power over time</h3>',
        power_html,
        f'<h3 id="{a}-points">Points</h3>',
        points_table(ctx),
        f'<h3 id="{a}-runs">Runs</h3>',
        runs_table(ctx),
        f'<h3 id="{a}-provenance">Provenance</h3>',
        provenance(ctx),
        f'<h3 id="{a}-plan">Plan</h3>',
        f'<p class="meta">{escape(ctx.plan_name())}, as stored (secrets redacted)</p>',
        f"<pre>{escape(d.experiment.plan_text)}</pre>",
        "</section>",
    ]
    return "\n".join(parts), n_power


def header(ctx: Context, saturation: bool = False) -> str:
    d, a = ctx.data, ctx.anchor
    counts = d.counts()
    spans = "".join(f'<span class="status-{k}">{n} {k}</span>' for k, n in counts.items() if n)
    axes = ", ".join(escape(short_axis(x)) for x in d.axes) or "none"
    series = ", ".join(escape(short_axis(x)) for x in d.series_axes) or "none (one series)"
    n_warn = len(d.warnings)
    links = " · ".join(
        f'<a href="#{a}-{k}">{t}</a>'
        for k, t in (
            ("warnings", f"warnings ({n_warn})"),
            ("idle", "idle power"),
            *([("saturation", "saturation curve")] if saturation else []),
            ("per-unit", f"energy per {escape(ctx.unit)}"),
            ("breakdown", "breakdown"),
            ("throughput", "throughput"),
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
    warned = ""
    if n_warn:
        warned = (
            f'<p class="note">{n_warn} warning{"" if n_warn == 1 else "s"}: read '
            f'<a href="#{a}-warnings">them</a> before the figures.</p>'
        )
    return (
        f"<h2>Experiment {escape(d.experiment.name)}</h2>"
        f'<p class="meta">plan <code>{escape(ctx.plan_name())}</code> · first stored '
        f"{when(d.experiment.created_at)} · seed {d.experiment.seed}</p>"
        f'<p class="counts">{len(d.runs)} run{"" if len(d.runs) == 1 else "s"}: '
        f"{spans or 'none'}</p>"
        f'<p class="meta">sweep axes: {axes} · x axis: '
        f"{escape(ctx.x_label) if d.x_axis else 'none (no numeric axis)'} · series by: "
        f"{series} · error bars: 95 % confidence interval of the mean (Student t) over "
        "the finished repetitions of each point, widened by the idle power's "
        "uncertainty for dynamic figures; open markers: the repetitions themselves</p>"
        f'<p class="meta">{links}</p>{problems}{warned}'
    )
