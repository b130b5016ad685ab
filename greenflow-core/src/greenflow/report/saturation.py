"""The saturation curve of a protocol experiment (``max-throughput``, ``proportionality``):
per point of the other sweep axes, the concluded maximum with its confirmation interval,
a figure of achieved rate, p99 latency and J per unit against the asked load, and each
probe's verdict. docs/report.md, "Saturation curve", says how to read it."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from greenflow.report import plots
from greenflow.report.conclusions import (
    Conclusion,
    CurvePoint,
    amount,
    base_label,
    bound_text,
    criterion_text,
    interval_text,
    maximum_text,
    ratio_text,
    read_conclusions,
    reasons_text,
    runs_text,
)
from greenflow.report.context import Context
from greenflow.report.data import RunFigures, Value
from greenflow.report.text import escape, methods_html, num, table

#: Marker of each role of a probe (filled when sustained, hollow when not).
ROLE_MARKERS = {"search": "o", "recheck": "^", "confirmation": "s", "level": "D"}
ACHIEVED_COLOUR = plots.series_colour(0)
LATENCY_COLOUR = plots.series_colour(3)
HOST_COLOUR = plots.series_colour(0)
SERVICE_COLOUR = plots.series_colour(4)
MAXIMUM_COLOUR = "#1e7b34"
UNSUSTAINED_COLOUR = "#b3261e"
#: The x axis turns logarithmic when the asked loads span more than this factor.
LOG_SPAN = 50.0


def conclusions(ctx: Context) -> list[Conclusion]:
    return read_conclusions(ctx.data.experiment.provenance)


def saturation(ctx: Context) -> str:
    """The section's body: one conclusion table, figure and probes table per point of the
    other axes; "" when the experiment stored no protocol conclusion."""
    found = conclusions(ctx)
    if not found:
        return ""
    runs = {r.run.run_id: r for r in ctx.data.runs}
    kind = found[0].protocol
    out = [
        f'<p class="meta">The <code>{escape(kind)}</code> protocol chose each asked load '
        "from the runs before it and judged each run against the criterion of "
        "docs/plan-reference.md, <i>What sustained means</i>. Filled markers: sustained; "
        "hollow: not sustained (the probes table says why).</p>"
    ]
    for c in found:
        label = base_label(c.base)
        if len(found) > 1 or label:
            out.append(f"<h4>{escape(label or 'all runs')}</h4>")
        out += [_conclusion_table(ctx, c), _figure(ctx, c, runs), _probes_table(ctx, c, runs)]
    return "".join(out)


def _rate(ctx: Context) -> str:
    return f"{ctx.unit}s/s"


def _conclusion_table(ctx: Context, c: Conclusion) -> str:
    rate = escape(_rate(ctx))
    what = "the maximum (100 %)" if c.protocol == "proportionality" else "highest sustained load"
    rows = [["protocol", escape(f"{c.protocol}, axis {c.axis or '?'}")]]
    top = maximum_text(c)
    rows.append(
        [
            escape(what),
            f"<b>{escape(top)}</b> {rate}"
            if c.maximum is not None
            else f'<span class="bad">{escape(top)}</span>',
        ]
    )
    conf = c.confirmation
    if conf is not None:
        interval = interval_text(conf)
        extra = []
        if conf.ratio_mean is not None:
            extra.append(f"achieved ÷ asked {conf.ratio_mean:.3f}")
        if conf.p99_ms_max is not None:
            extra.append(f"worst p99 {conf.p99_ms_max:.3g} ms")
        rows.append(
            [
                f"confirmation at {escape(amount(conf.value))}",
                f"achieved {escape(interval)} {rate} (mean and 95 % Student-t interval "
                f"of the confirmation runs); {escape(runs_text(c))}"
                + (f"; {escape(', '.join(extra))}" if extra else ""),
            ]
        )
    if c.first_unsustained is not None:
        rows.append(["first unsustained load", f"{escape(amount(c.first_unsustained))} {rate}"])
    if c.probes is not None:
        rows.append(["search probes", str(c.probes)])
    if c.levels:
        levels = ", ".join(f"{v:g}" for v in c.levels)
        rows.append(["levels", f"{escape(levels)} % of the maximum"])
    rows.append(["p99 bound", escape(bound_text(c))])
    criterion = criterion_text(c)
    if criterion:
        rows.append(["sustained means", escape(criterion)])
    return table(["conclusion", ""], rows, css="conclusion")


def _marks(
    label: str, pairs: Sequence[tuple[CurvePoint, float]], colour: str, factor: float = 1.0
) -> plots.Marks | None:
    """Probes as marks: filled when sustained, shaped by role."""
    if not pairs:
        return None
    return plots.Marks(
        label,
        [float(p.value or 0.0) for p, _ in pairs],
        [v * factor for _, v in pairs],
        [p.sustained for p, _ in pairs],
        [ROLE_MARKERS.get(p.role, "o") for p, _ in pairs],
        colour,
    )


def _values(
    points: Sequence[CurvePoint], y: Callable[[CurvePoint], float | None], positive: bool
) -> list[tuple[CurvePoint, float]]:
    """(probe, y) of the probes that have a y (a positive one on a log scale)."""
    return [(p, v) for p in points if (v := y(p)) is not None and (v > 0 or not positive)]


def _energy_marks(
    ctx: Context, c: Conclusion, runs: dict[str, RunFigures]
) -> tuple[list[plots.Marks], list[str], str]:
    """The J per unit series (host, then services; one per method), their methods, and
    the y label with its SI prefix."""
    series: dict[tuple[str, str], list[tuple[CurvePoint, float]]] = {}
    for p in c.curve:
        if p.value is None:
            continue
        run = runs.get(p.run_id or "")
        for scope, v in (("host", p.host_energy(run)), ("services", p.service_energy(run))):
            if v is not None:
                series.setdefault((scope, v.method), []).append((p, v.value))
    if not series:
        return [], [], ""
    factor, prefix = plots.si_scale([v for pairs in series.values() for _, v in pairs])
    marks = []
    for (scope, method), pairs in sorted(series.items(), key=lambda kv: kv[0][0] != "host"):
        colour = HOST_COLOUR if scope == "host" else SERVICE_COLOUR
        drawn = _marks(f"{scope} J per {ctx.unit} ({method})", pairs, colour, factor)
        if drawn is not None:
            marks.append(drawn)
    methods = list(dict.fromkeys(method for _, method in series))
    return marks, methods, f"{prefix}J per {ctx.unit}"


def _figure(ctx: Context, c: Conclusion, runs: dict[str, RunFigures]) -> str:
    curve = [p for p in c.curve if p.value is not None]
    if not curve:
        return '<p class="note">No probe with an asked load is stored for this point.</p>'
    rate = _rate(ctx)
    xs = sorted({float(p.value or 0.0) for p in curve})
    logx = xs[0] > 0 and xs[-1] / xs[0] > LOG_SPAN
    panels = []
    achieved = _marks(
        f"achieved ({rate})", _values(curve, lambda p: p.achieved, logx), ACHIEVED_COLOUR
    )
    panels.append(
        plots.Panel(
            f"achieved ({rate})",
            [achieved] if achieved else [],
            diagonal=True,
            band=c.tolerance,
            logy=logx,
        )
    )
    latency = _marks("p99", _values(curve, lambda p: p.p99_ms, True), LATENCY_COLOUR)
    if latency is not None:
        bound = c.p99_bound_ms
        ys = [*latency.ys, *([bound] if bound else [])]
        panels.append(
            plots.Panel(
                "p99 latency (ms)",
                [latency],
                hline=(bound, f"p99 bound {bound:.3g} ms") if bound is not None else None,
                logy=min(ys) > 0 and max(ys) / min(ys) > 30,
            )
        )
    energy, methods, ylabel = _energy_marks(ctx, c, runs)
    if energy:
        panels.append(plots.Panel(ylabel, energy))
    vlines = []
    top = "maximum" if c.protocol == "proportionality" else "confirmed maximum"
    if c.maximum is not None:
        vlines.append(plots.VLine(c.maximum, f"{top} {amount(c.maximum)}", MAXIMUM_COLOUR))
    elif c.candidate is not None:
        vlines.append(
            plots.VLine(
                c.candidate, f"candidate {amount(c.candidate)} (not confirmed)", "#777777", "--"
            )
        )
    if c.first_unsustained is not None:
        vlines.append(
            plots.VLine(
                c.first_unsustained,
                f"first unsustained {amount(c.first_unsustained)}",
                UNSUSTAINED_COLOUR,
                ":",
            )
        )
    roles = [r for r in ROLE_MARKERS if any(p.role == r for p in curve)]
    failed = [float(p.value or 0.0) for p in curve if p.achieved is None]
    label = base_label(c.base)
    svg = plots.saturation_figure(
        panels,
        xlabel=f"asked load ({rate})",
        alt=f"saturation curve{': ' + label if label else ''}",
        vlines=vlines,
        legend=[(r, ROLE_MARKERS[r]) for r in roles],
        logx=logx,
        failed=failed,
    )
    no_energy = (
        ""
        if energy
        else " No J per unit is stored for these probes (no energy collector, or failed runs)."
    )
    unit = escape(ctx.unit)
    caption = (
        f"<b>Saturation curve</b>: each probe (one run) at its asked load. Top: achieved "
        f"rate ({unit}s counted inside MEASURE ÷ its duration) against asked, with the "
        "dotted line achieved = asked and the shaded tolerance around it. "
        + (
            "Below it: p99 latency, with the p99 bound the criterion held it to. "
            if latency
            else ""
        )
        + (
            f"Bottom: energy per {unit} of the run — the hosts' (idle included) and, when "
            "energy was attributed, the services' — each with its method. "
            if energy
            else ""
        )
        + "The vertical lines mark the concluded maximum and the first unsustained load; "
        f"markers: {escape(', '.join(f'{r} {_shape(r)}' for r in roles))}; lines join the "
        "mean at each load."
        + (" A red cross at the foot marks a run that failed without figures." if failed else "")
        + f"{no_energy} {methods_html(['workload', *methods])}"
    )
    return f"<figure>{svg}<figcaption>{caption}</figcaption></figure>"


def _shape(role: str) -> str:
    return {"o": "●", "^": "▲", "s": "■", "D": "◆"}.get(ROLE_MARKERS.get(role, "o"), "●")


def _probes_table(ctx: Context, c: Conclusion, runs: dict[str, RunFigures]) -> str:
    if not c.curve:
        return ""
    schedule = any(p.schedule_lag_trend is not None for p in c.curve)
    lag = any(p.lag_trend is not None for p in c.curve)
    energy = [
        (p.host_energy(runs.get(p.run_id or "")), p.service_energy(runs.get(p.run_id or "")))
        for p in c.curve
    ]
    services = any(s is not None for _, s in energy)
    head = [
        "asked",
        "rep",
        "role",
        "status",
        f"achieved ({escape(_rate(ctx))})",
        "achieved ÷ asked",
        "p99 ms",
        *(["behind schedule s/s"] if schedule else []),
        *(["lag growth msg/s"] if lag else []),
        f"host J per {escape(ctx.unit)}",
        *([f"services J per {escape(ctx.unit)}"] if services else []),
        "sustained",
        "why not",
        "run",
    ]
    rows = []
    for p, (host, service) in zip(c.curve, energy, strict=True):
        rows.append(
            [
                escape(amount(p.value)),
                "" if p.repetition is None else str(p.repetition),
                escape(p.role),
                f'<span class="status-{escape(p.status)}">{escape(p.status)}</span>',
                escape(amount(p.achieved)),
                escape(ratio_text(p.ratio)),
                escape(num(p.p99_ms, ".3g")),
                *([escape(num(p.schedule_lag_trend, ".3g"))] if schedule else []),
                *([escape(num(p.lag_trend, ".3g"))] if lag else []),
                _joules(host),
                *([_joules(service)] if services else []),
                "yes" if p.sustained else '<span class="bad">no</span>',
                escape(reasons_text(p, details=True)),
                f"<code>{escape(p.run_id or '')}</code>",
            ]
        )
    numeric = [True, True, False, False, True, True, True]
    numeric += [True] * (schedule + lag + 1 + services)
    return table(head, rows, numeric=numeric, scroll=len(rows) > 20, css="wide")


def _joules(v: Value | None) -> str:
    return "" if v is None else f"{v.value:.3g} J <small>({escape(v.method)})</small>"
