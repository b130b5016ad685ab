"""The report's figures: matplotlib, rendered to SVG text for inlining into the page.

Imported only when a report is written (matplotlib takes a while to import). No pyplot:
figures are plain :class:`~matplotlib.figure.Figure` objects drawn by the SVG canvas, so
nothing global (backend, open figures) is touched. Text stays text (``svg.fonttype =
none``): smaller files, searchable, and drawn in the page's own sans-serif font.
"""

from __future__ import annotations

import io
import itertools
import re
from collections.abc import Sequence

import attrs
import matplotlib
from matplotlib.axes import Axes
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

#: Shading of each run phase in the power plots (the page's legend uses the same).
PHASE_COLOURS = {
    "prepare": "#e3e3e3",
    "warmup": "#ffe3a3",
    "measure": "#bfe5c8",
    "cooldown": "#cfe0fa",
    "clean": "#efe3f5",
    "baseline": "#e6e0f8",
}
#: One colour per series, the same in every figure of an experiment.
SERIES_COLOURS = (
    "#1f77b4",
    "#d62728",
    "#2ca02c",
    "#9467bd",
    "#ff7f0e",
    "#8c564b",
    "#e377c2",
    "#17becf",
    "#7f7f7f",
    "#bcbd22",
)
#: Fixed colours for the parts of the energy breakdown that every run has.
PART_COLOURS = {"idle": "#c7c7c7", "other": "#8c8c8c"}

_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
# Series that lie exactly on top of each other (two message sizes at one asked rate) stay
# apart by their marker and line style, not only by a colour the top one hides.
_LINESTYLES = ("-", "--", ":", "-.")
#: How a 95 % interval that includes zero is marked (the page's captions name it).
CROSSES_ZERO = "95 % CI includes 0"
_ZERO_MARK = "#b3261e"
_counter = itertools.count()


@attrs.frozen
class Line:
    """A series of (x, y ± err) points; ``err`` None where there is no interval (n = 1).

    ``reps`` holds, per point, the repetitions' own values, drawn as small open markers
    around the mean."""

    label: str
    xs: Sequence[float]
    ys: Sequence[float]
    errs: Sequence[float | None]
    colour: str
    marker: str = "o"
    dashed: bool = False
    reps: Sequence[Sequence[float]] = ()
    linestyle: str | None = None


def series_colour(index: int) -> str:
    return SERIES_COLOURS[index % len(SERIES_COLOURS)]


def marker(index: int) -> str:
    return _MARKERS[index % len(_MARKERS)]


def linestyle(index: int) -> str:
    return _LINESTYLES[index % len(_LINESTYLES)]


def crosses_zero(y: float, err: float | None) -> bool:
    """Whether the interval y ± err includes zero (strictly on both sides)."""
    return err is not None and y - err < 0.0 < y + err


def si_scale(values: Sequence[float]) -> tuple[float, str]:
    """A factor and SI prefix that bring the largest |value| to between 1 and 1000 (for
    values below 1: J → mJ → µJ → nJ), so that tick labels read as plain numbers."""
    top = max((abs(v) for v in values if v == v), default=0.0)
    for factor, prefix in ((1.0, ""), (1e3, "m"), (1e6, "µ"), (1e9, "n")):
        if top * factor >= 1.0:
            return factor, prefix
    return (1.0, "") if top == 0.0 else (1e9, "n")


# -- SVG text --------------------------------------------------------------------------

_PROLOGUE = re.compile(r"<\?xml[^>]*\?>\s*|<!DOCTYPE[^>]*>\s*")
_METADATA = re.compile(r"\s*<metadata>.*?</metadata>", re.S)
# Namespace declarations are URIs, not links, but a page that should contain no http
# reference is easier to check without them; the HTML parser puts inline <svg> (and
# xlink:href) in the right namespaces by itself.
_XMLNS = re.compile(r'\s+xmlns(?::\w+)?="[^"]*"')
_REFS = re.compile(r'url\(#([^)]+)\)|href="#([^"]+)"')
_IDS = re.compile(r'\s+id="([^"]*)"')
_SVG = re.compile(r"<svg ")


def to_svg(fig: Figure, alt: str, tight: bool = False) -> str:
    """The figure as an ``<svg>`` element for inline HTML, with ``alt`` as its title.
    ``tight`` grows or crops the canvas to everything drawn (legends and labels outside
    the axes are never cut off); it costs a layout pass, so the small, many power plots
    keep their fixed box instead."""
    buf = io.StringIO()
    # A salt per figure keeps the ids of clip paths and markers unique across the page
    # (they would otherwise collide between figures) and the output reproducible.
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": f"gf{next(_counter)}"}):
        fig.savefig(buf, format="svg", bbox_inches="tight" if tight else None, pad_inches=0.08)
    text = _METADATA.sub("", _PROLOGUE.sub("", buf.getvalue()))
    text = _XMLNS.sub("", text)
    used = {a or b for a, b in _REFS.findall(text)}
    text = _IDS.sub(lambda m: m.group(0) if m.group(1) in used else "", text)
    title = alt.replace("&", "&amp;").replace("<", "&lt;")
    return _SVG.sub('<svg role="img" class="plot" ', text, count=1).replace(
        ">", f"><title>{title}</title>", 1
    )


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height))
    fig.patch.set_alpha(0.0)
    return fig


def _style(ax: Axes, nbins: int = 6) -> None:
    ax.spines[["top", "right"]].set_visible(False)
    ax.grid(True, color="#e6e6e6", linewidth=0.6)
    ax.set_axisbelow(True)
    ax.xaxis.set_major_locator(MaxNLocator(nbins))
    ax.yaxis.set_major_locator(MaxNLocator(nbins))
    ax.tick_params(labelsize=8)


# -- figures --------------------------------------------------------------------------


@attrs.frozen
class IdleLine:
    """A horizontal idle-power line on a power plot: ``series`` is the index of the host's
    line (its colour); ``closing`` draws it dotted rather than dashed."""

    label: str
    watts: float
    series: int
    closing: bool = False


def power_figure(
    lines: Sequence[tuple[str, Sequence[tuple[float, float]]]],
    phases: Sequence[tuple[str, float, float]],
    alt: str,
    idle: Sequence[IdleLine] = (),
    top: float | None = None,
) -> str:
    """Power (W) over seconds since the run started; ``phases`` are (name, start, end)
    in the same seconds, shaded; ``lines`` are (label, [(s, W)]), one per host; ``idle``
    the hosts' idle power as horizontal lines; ``top`` the y axis's upper limit, shared by
    every power plot of an experiment so that they compare at a glance. The title goes in
    the page (an HTML caption), not in the figure: placing a title makes matplotlib
    measure the whole axes, a third of a small plot's drawing time."""
    fig = _figure(4.4, 2.2)
    # A fixed axes box rather than tight/constrained layout, for the same reason.
    ax = fig.add_axes((0.13, 0.2, 0.84, 0.76))
    _style(ax, nbins=5)
    if top is None:
        top = max([w for _, pts in lines for _, w in pts] + [i.watts for i in idle], default=1.0)
        top = top * 1.12 if top > 0 else 1.0
    # One collection for all phases (axvspan adds a patch each and re-scales per patch).
    spans = [((a, 0.0), (b, 0.0), (b, 1.0), (a, 1.0)) for _, a, b in phases]
    ax.add_collection(
        PolyCollection(
            spans,
            facecolors=[PHASE_COLOURS.get(n, "#f2f2f2") for n, _, _ in phases],
            linewidths=0,
            transform=ax.get_xaxis_transform(),
        ),
        autolim=False,
    )
    for i, (label, pts) in enumerate(lines):
        ax.plot(
            [p[0] for p in pts],
            [p[1] for p in pts],
            color=series_colour(i),
            linewidth=1.2,
            marker="." if len(pts) < 30 else None,
            markersize=3,
            label=label,
        )
    for line in idle:
        ax.axhline(
            line.watts,
            color=series_colour(line.series),
            linewidth=0.9,
            linestyle=":" if line.closing else "--",
            alpha=0.8,
            label=line.label,
        )
    if len(lines) > 1 or idle:
        # Upper right, on a light box: the load's power is at the left (start-up) and
        # the idle lines at the bottom, so this hides the least.
        ax.legend(
            fontsize=6,
            loc="upper right",
            handlelength=2.2,
            frameon=True,
            framealpha=0.8,
            edgecolor="none",
            borderpad=0.3,
            labelspacing=0.25,
        )
    starts = [a for _, a, _ in phases] + [p[0] for _, pts in lines for p in pts[:1]]
    ends = [b for _, _, b in phases] + [p[0] for _, pts in lines for p in pts[-1:]]
    if starts:
        ax.set_xlim(min(starts), max(ends))
    ax.set_ylim(0, top)
    ax.set_xlabel("time since the start (s)", fontsize=8)
    ax.set_ylabel("power (W)", fontsize=8)
    return to_svg(fig, alt)


def _dodge(index: int, count: int, step: float) -> float:
    """Sideways shift of series ``index`` of ``count``, so that points at one x (two series
    with the same asked rate) do not hide each other."""
    return (index - (count - 1) / 2.0) * step


def errorbar_figure(
    lines: Sequence[Line],
    *,
    xlabel: str,
    ylabel: str,
    alt: str,
    categories: Sequence[str] | None = None,
    logy: bool = False,
    diagonal: bool = False,
    styles: Sequence[tuple[str, str, bool]] = (),
    xticks: Sequence[float] | None = None,
    dodge: bool = True,
) -> str:
    """Mean ± 95 % CI per point, one line per series, and each repetition as a small open
    marker. ``categories`` names the x positions 0, 1, ... when x is not a number;
    ``xticks`` puts the ticks at those x values (the swept ones); ``diagonal`` draws y = x
    (achieved = asked). With ``styles`` ((label, marker, dashed)), the legend lists each
    colour once and then the styles in grey, instead of one entry per line.

    The y axis is never cut at zero: an interval reaching below it is drawn whole, and
    one that includes zero is circled in red (legend: :data:`CROSSES_ZERO`). With
    ``dodge``, series are shifted sideways by a small step so that equal points stay
    visible."""
    fig = _figure(8.4, 4.0)
    ax = fig.add_axes((0.09, 0.13, 0.6, 0.8))
    _style(ax)
    xs_all = sorted({x for line in lines for x in line.xs})
    logx = (
        categories is None
        and not diagonal
        and len(xs_all) > 2
        and xs_all[0] > 0
        and xs_all[-1] / xs_all[0] > 50
    )
    if categories is not None:
        step = 0.08
    elif logx:
        step = 0.0
    else:
        span = (xs_all[-1] - xs_all[0]) if len(xs_all) > 1 else abs(xs_all[0] or 1.0)
        step = 0.012 * span
    named: set[str] = set()
    lows: list[float] = []
    highs: list[float] = []
    crossing: list[tuple[float, float]] = []
    for k, line in enumerate(lines):
        shift = _dodge(k, len(lines), step) if dodge else 0.0
        factor = 1.0 + _dodge(k, len(lines), 0.025) if logx and dodge else 1.0
        xs = [x * factor + shift for x in line.xs]
        errs = [e if e is not None else 0.0 for e in line.errs]
        label = line.label
        if styles:
            label = line.label if line.colour not in named else "_nolegend_"
            named.add(line.colour)
        style = line.linestyle or ("--" if line.dashed else "-")
        ax.errorbar(
            xs,
            line.ys,
            yerr=errs,
            label=label,
            color=line.colour,
            marker=line.marker,
            markersize=5,
            capsize=3,
            linewidth=1.3,
            # Categories have no order between them: no line joins them.
            linestyle="none" if categories is not None else style,
            zorder=3,
        )
        dots = [(x, v) for x, reps in zip(xs, line.reps, strict=False) for v in reps]
        if dots:
            # One line of markers per series: a plot call per point costs a lot for
            # sweeps of a hundred points.
            ax.plot(
                [d[0] for d in dots],
                [d[1] for d in dots],
                linestyle="none",
                marker=line.marker,
                markersize=3.5,
                markerfacecolor="none",
                markeredgecolor=line.colour,
                markeredgewidth=0.8,
                alpha=0.7,
                zorder=2,
            )
            lows += [v for _, v in dots]
            highs += [v for _, v in dots]
        for x, y, e in zip(xs, line.ys, line.errs, strict=True):
            lows.append(y - (e or 0.0))
            highs.append(y + (e or 0.0))
            if crosses_zero(y, e):
                crossing.append((x, y))
    if crossing:
        ax.plot(
            [c[0] for c in crossing],
            [c[1] for c in crossing],
            linestyle="none",
            marker="o",
            markersize=11,
            markerfacecolor="none",
            markeredgecolor=_ZERO_MARK,
            markeredgewidth=1.2,
            label=CROSSES_ZERO,
            zorder=4,
        )
    if any(line.reps for line in lines):
        ax.plot(
            [],
            [],
            linestyle="none",
            marker="o",
            markersize=3.5,
            markerfacecolor="none",
            markeredgecolor="#666666",
            label="repetitions",
        )
    for label, mark, dashed in styles:
        ax.plot(
            [], [], color="#666666", marker=mark, linestyle="--" if dashed else "-", label=label
        )
    if diagonal:
        xs = [x for line in lines for x in line.xs]
        if xs:
            top = max(max(xs), max(highs, default=0.0))
            ax.plot(
                [0, top],
                [0, top],
                color="#999999",
                linewidth=0.8,
                linestyle=":",
                label="achieved = asked",
            )
            ax.set_xlim(left=0)
    if categories is not None:
        ax.set_xticks(range(len(categories)), list(categories), rotation=20, ha="right")
        ax.set_xlim(-0.5, len(categories) - 0.5)
    elif logx:
        ax.set_xscale("log")
    if categories is None and xticks is not None and 0 < len(xticks) <= 12:
        ax.set_xticks(list(xticks), [f"{v:g}" for v in xticks])
        ax.minorticks_off()
    if logy:
        ax.set_yscale("log")
    else:
        low = min(lows, default=0.0)
        high = max(highs, default=1.0)
        span = (high - min(low, 0.0)) or 1.0
        # Zero stays in view, and so does the lowest end of every interval below it.
        ax.set_ylim(min(0.0, low - 0.06 * span), high + 0.06 * span)
        if low < 0:
            ax.axhline(0, color="#555555", linewidth=0.7, zorder=1)
    ax.set_xlabel(xlabel, fontsize=9)
    ax.set_ylabel(ylabel, fontsize=9)
    handles, labels = ax.get_legend_handles_labels()
    # Series first, then the styles and marks (matplotlib lists plain lines first).
    extras = {s[0] for s in styles} | {CROSSES_ZERO, "repetitions", "achieved = asked"}
    order = sorted(range(len(labels)), key=lambda i: labels[i] in extras)
    ax.legend(
        [handles[i] for i in order],
        [labels[i] for i in order],
        fontsize=8,
        frameon=False,
        loc="upper left",
        bbox_to_anchor=(1.02, 1.0),
    )
    return to_svg(fig, alt, tight=True)


@attrs.frozen
class Bars:
    """One part of a grouped bar chart: per group, the mean, its CI half-width (None:
    n = 1), the repetitions' values, and the label written on the bar."""

    name: str
    means: Sequence[float | None]
    errs: Sequence[float | None]
    reps: Sequence[Sequence[float]]
    labels: Sequence[str]
    colour: str


#: Above this many bars, the breakdown leaves out the repetitions' dots and the labels:
#: hundreds of each cost seconds to draw and megabytes of SVG, and cannot be read.
BAR_DETAIL_LIMIT = 60


def grouped_bars_figure(
    groups: Sequence[str], parts: Sequence[Bars], ylabel: str, alt: str, xlabel: str = ""
) -> str:
    """Bars side by side per group (one per part), each with its 95 % CI, and, up to
    :data:`BAR_DETAIL_LIMIT` bars, its repetitions as dots and its label (a share) above
    it, or below when negative. The y axis keeps zero and every interval; labels are
    inside the canvas (tight layout)."""
    n, k = len(groups), max(1, len(parts))
    detail = n * k <= BAR_DETAIL_LIMIT
    width = min(14.0, max(6.0, 0.32 * n * k + 2.5))
    fig = _figure(width, 4.2)
    ax = fig.add_axes((0.8 / width, 0.22, 1.0 - 3.0 / width, 0.7))
    _style(ax)
    bar = 0.8 / k
    half = bar * 0.46
    lows, highs = [0.0], [0.0]
    handles = []
    for j, part in enumerate(parts):
        xs = [i + (j - (k - 1) / 2.0) * bar for i in range(n)]
        present = [
            (x, m, e) for x, m, e in zip(xs, part.means, part.errs, strict=True) if m is not None
        ]
        if not present:
            continue
        # One collection per part: ax.bar makes a patch per bar and re-scales the axes
        # after each, which costs seconds for a few hundred bars.
        boxes = [
            ((x - half, 0.0), (x + half, 0.0), (x + half, m), (x - half, m)) for x, m, _ in present
        ]
        ax.add_collection(
            PolyCollection(boxes, facecolors=part.colour, linewidths=0, zorder=2), autolim=False
        )
        handles.append(Patch(facecolor=part.colour, label=part.name))
        ax.errorbar(
            [p[0] for p in present],
            [p[1] for p in present],
            yerr=[p[2] or 0.0 for p in present],
            fmt="none",
            ecolor="#333333",
            elinewidth=0.9,
            capsize=2.5 if detail else 0.0,
            zorder=3,
        )
        dots = [(x, v) for x, reps in zip(xs, part.reps, strict=True) for v in reps]
        lows += [v for _, v in dots]
        highs += [v for _, v in dots]
        if dots and detail:
            ax.plot(
                [d[0] for d in dots],
                [d[1] for d in dots],
                linestyle="none",
                marker="o",
                markersize=2.5,
                markerfacecolor="white",
                markeredgecolor="#333333",
                markeredgewidth=0.6,
                zorder=4,
            )
        for _, m, e in present:
            lows.append(m - (e or 0.0))
            highs.append(m + (e or 0.0))
        if not detail:
            continue
        tops = {x: (m, e) for x, m, e in present}
        for x, text in zip(xs, part.labels, strict=True):
            if x not in tops or not text:
                continue
            m, e = tops[x]
            end = m + (e or 0.0) if m >= 0 else m - (e or 0.0)
            ax.annotate(
                text,
                (x, end),
                xytext=(0, 3 if m >= 0 else -3),
                textcoords="offset points",
                ha="center",
                va="bottom" if m >= 0 else "top",
                fontsize=6.5,
                rotation=90 if k * n > 24 else 0,
                annotation_clip=False,
            )
    low, high = min(lows), max(highs)
    span = (high - low) or 1.0
    # Room above (and below) the bars for their labels.
    ax.set_ylim(low - 0.12 * span if low < 0 else 0.0, high + 0.16 * span)
    ax.axhline(0, color="#555555", linewidth=0.6)
    ax.set_xlim(-0.6, n - 0.4)
    rotate = n > 6 or max((len(g) for g in groups), default=0) * n > 60
    step = -(-n // 30)  # at most 30 tick labels stay legible
    ax.set_xticks(
        list(range(n))[::step],
        list(groups)[::step],
        rotation=30 if rotate else 0,
        ha="right" if rotate else "center",
        fontsize=7.5,
    )
    ax.set_ylabel(ylabel, fontsize=9)
    if xlabel:
        ax.set_xlabel(xlabel, fontsize=9)
    ax.legend(
        handles=handles, fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0)
    )
    return to_svg(fig, alt, tight=True)


# -- saturation curve -------------------------------------------------------------------


@attrs.frozen
class Marks:
    """Points drawn one by one, each with its own marker and filled or hollow, joined by a
    thin line through the mean at each x (repeated runs at one load)."""

    label: str
    xs: Sequence[float]
    ys: Sequence[float]
    filled: Sequence[bool]
    markers: Sequence[str]
    colour: str


@attrs.frozen
class Panel:
    """One panel of a figure of panels sharing their x axis."""

    ylabel: str
    marks: Sequence[Marks]
    #: A horizontal line: (y, label), e.g. a bound.
    hline: tuple[float, str] | None = None
    #: Draw y = x, and shade x × (1 ± ``band``) around it when given.
    diagonal: bool = False
    band: float | None = None
    logy: bool = False


@attrs.frozen
class VLine:
    """A vertical line across every panel: ``style`` is ``-``, ``--`` or ``:``."""

    x: float
    label: str
    colour: str
    style: str = "-"


def saturation_figure(
    panels: Sequence[Panel],
    *,
    xlabel: str,
    alt: str,
    vlines: Sequence[VLine] = (),
    legend: Sequence[tuple[str, str]] = (),
    logx: bool = False,
    failed: Sequence[float] = (),
) -> str:
    """Panels stacked over one shared x axis. Each :class:`Marks` point is filled or
    hollow; ``legend`` adds (label, marker) entries that explain the markers, with
    "filled"/"hollow" entries after them; ``vlines`` cross every panel and are named in
    the first panel's legend; ``failed`` are loads whose runs have no figure to draw,
    marked with a cross at the foot of the first panel."""
    n = max(1, len(panels))
    fig = _figure(8.4, 0.8 + 2.3 * n)
    axes = fig.subplots(n, 1, sharex=True, squeeze=False)[:, 0]
    fig.subplots_adjust(left=0.1, right=0.68, top=0.97, bottom=0.55 / (0.8 + 2.3 * n), hspace=0.1)
    xs_all = sorted({x for p in panels for m in p.marks for x in m.xs} | set(failed))
    for i, (ax, panel) in enumerate(zip(axes, panels, strict=True)):
        _style(ax)
        highs: list[float] = []
        for m in panel.marks:
            _marks(ax, m)
            highs += list(m.ys)
        if panel.diagonal and xs_all:
            low, top = (xs_all[0], xs_all[-1]) if logx else (0.0, xs_all[-1])
            if panel.band is not None:
                # A tolerance of 1 reaches zero, which a log scale cannot show.
                under = max(1 - panel.band, 1e-3 if panel.logy else 0.0)
                ax.fill_between(
                    [low, top],
                    [low * under, top * under],
                    [low * (1 + panel.band), top * (1 + panel.band)],
                    color="#999999",
                    alpha=0.15,
                    linewidth=0,
                    label=f"asked ± {panel.band:g}",
                )
            ax.plot(
                [low, top],
                [low, top],
                color="#777777",
                linewidth=0.8,
                linestyle=":",
                label="achieved = asked",
            )
            highs.append(top * (1 + (panel.band or 0.0)))
        if panel.hline is not None:
            y, label = panel.hline
            ax.axhline(y, color=_ZERO_MARK, linewidth=0.9, linestyle="--", label=label)
            highs.append(y)
        for v in vlines:
            ax.axvline(
                v.x,
                color=v.colour,
                linewidth=1.1,
                linestyle=v.style,
                label=v.label if i == 0 else "_nolegend_",
                zorder=1,
            )
        if panel.logy:
            ax.set_yscale("log")
            # Limits from the points and the bound, not from a wide tolerance band.
            shown = [y for m in panel.marks for y in m.ys if y > 0]
            shown += [panel.hline[0]] if panel.hline is not None and panel.hline[0] > 0 else []
            if shown:
                ax.set_ylim(min(shown) / 1.6, max(shown) * 1.6)
        else:
            top = max(highs, default=1.0)
            ax.set_ylim(0.0, (top or 1.0) * 1.08)
        ax.set_ylabel(panel.ylabel, fontsize=8.5)
        if i == 0 and failed:
            ax.plot(
                list(failed),
                [0.04] * len(failed),
                transform=ax.get_xaxis_transform(),
                linestyle="none",
                marker="x",
                markersize=6,
                markeredgewidth=1.4,
                color=_ZERO_MARK,
                label="failed run (no figures)",
                zorder=4,
            )
        if i == 0:
            for label, mark in legend:
                ax.plot([], [], color="#666666", marker=mark, linestyle="none", label=label)
            if legend:
                ax.plot(
                    [], [], color="#666666", marker="o", linestyle="none", label="filled: sustained"
                )
                ax.plot(
                    [],
                    [],
                    color="#666666",
                    marker="o",
                    markerfacecolor="none",
                    linestyle="none",
                    label="hollow: not sustained",
                )
        ax.legend(fontsize=7.5, frameon=False, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    bottom = axes[-1]
    # Ticks by the locator, not at the asked loads: a bisection's loads crowd together
    # (3000, 3125, 3250) and their labels would overlap; the probes table has them all.
    if logx:
        bottom.set_xscale("log")
    elif xs_all:
        bottom.set_xlim(left=0.0, right=xs_all[-1] * 1.05)
    bottom.set_xlabel(xlabel, fontsize=9)
    return to_svg(fig, alt, tight=True)


def _marks(ax: Axes, m: Marks) -> None:
    by_x: dict[float, list[float]] = {}
    for x, y in zip(m.xs, m.ys, strict=True):
        by_x.setdefault(x, []).append(y)
    xs = sorted(by_x)
    ax.plot(
        xs,
        [sum(by_x[x]) / len(by_x[x]) for x in xs],
        color=m.colour,
        linewidth=1.0,
        alpha=0.7,
        label=m.label,
        zorder=2,
    )
    # One call per (marker, fill) rather than one per point.
    kinds: dict[tuple[str, bool], list[tuple[float, float]]] = {}
    for x, y, mark, filled in zip(m.xs, m.ys, m.markers, m.filled, strict=True):
        kinds.setdefault((mark, filled), []).append((x, y))
    for (mark, filled), pts in kinds.items():
        ax.plot(
            [p[0] for p in pts],
            [p[1] for p in pts],
            linestyle="none",
            marker=mark,
            markersize=5.5,
            markeredgewidth=1.1,
            markeredgecolor=m.colour,
            markerfacecolor=m.colour if filled else "white",
            zorder=3,
        )
