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
from collections.abc import Mapping, Sequence

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
_counter = itertools.count()


@attrs.frozen
class Line:
    """A series of (x, y ± err) points; ``err`` None where there is no interval (n = 1)."""

    label: str
    xs: Sequence[float]
    ys: Sequence[float]
    errs: Sequence[float | None]
    colour: str
    marker: str = "o"
    dashed: bool = False


def series_colour(index: int) -> str:
    return SERIES_COLOURS[index % len(SERIES_COLOURS)]


def marker(index: int) -> str:
    return _MARKERS[index % len(_MARKERS)]


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


def to_svg(fig: Figure, alt: str) -> str:
    """The figure as an ``<svg>`` element for inline HTML, with ``alt`` as its title."""
    buf = io.StringIO()
    # A salt per figure keeps the ids of clip paths and markers unique across the page
    # (they would otherwise collide between figures) and the output reproducible.
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": f"gf{next(_counter)}"}):
        fig.savefig(buf, format="svg")
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


def power_figure(
    lines: Sequence[tuple[str, Sequence[tuple[float, float]]]],
    phases: Sequence[tuple[str, float, float]],
    alt: str,
) -> str:
    """Power (W) over seconds since the run started; ``phases`` are (name, start, end)
    in the same seconds, shaded; ``lines`` are (label, [(s, W)]), one per host. The
    title goes in the page (an HTML caption), not in the figure: placing a title makes
    matplotlib measure the whole axes, a third of a small plot's drawing time."""
    fig = _figure(4.4, 2.2)
    # A fixed axes box rather than tight/constrained layout, for the same reason.
    ax = fig.add_axes((0.13, 0.2, 0.84, 0.76))
    _style(ax, nbins=5)
    top = max((w for _, pts in lines for _, w in pts), default=1.0)
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
    if len(lines) > 1:
        ax.legend(fontsize=7, frameon=False, loc="lower right")
    starts = [a for _, a, _ in phases] + [p[0] for _, pts in lines for p in pts[:1]]
    ends = [b for _, _, b in phases] + [p[0] for _, pts in lines for p in pts[-1:]]
    if starts:
        ax.set_xlim(min(starts), max(ends))
    ax.set_ylim(0, top)
    ax.set_xlabel("seconds since the run started", fontsize=8)
    ax.set_ylabel("power (W)", fontsize=8)
    return to_svg(fig, alt)


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
) -> str:
    """Mean ± 95 % CI per point, one line per series. ``categories`` names the x
    positions 0, 1, ... when x is not a number; ``diagonal`` draws y = x (achieved =
    asked). With ``styles`` ((label, marker, dashed), e.g. one per latency percentile),
    the legend lists each colour once (the first line of that colour names it) and then
    the styles in grey, instead of one entry per line."""
    fig = _figure(8.4, 4.0)
    # Room under the axes for slanted category names.
    ax = fig.add_axes(
        (
            0.09,
            0.2 if categories is not None else 0.13,
            0.55,
            0.73 if categories is not None else 0.8,
        )
    )
    _style(ax)
    named: set[str] = set()
    for line in lines:
        errs = [e if e is not None else 0.0 for e in line.errs]
        label = line.label
        if styles:
            label = line.label if line.colour not in named else "_nolegend_"
            named.add(line.colour)
        ax.errorbar(
            line.xs,
            line.ys,
            yerr=errs,
            label=label,
            color=line.colour,
            marker=line.marker,
            markersize=5,
            capsize=3,
            linewidth=1.3,
            # Categories have no order between them: no line joins them.
            linestyle="none" if categories is not None else "--" if line.dashed else "-",
        )
    for label, mark, dashed in styles:
        ax.plot(
            [], [], color="#666666", marker=mark, linestyle="--" if dashed else "-", label=label
        )
    if diagonal:
        xs = [x for line in lines for x in line.xs]
        ys = [y for line in lines for y in line.ys]
        if xs:
            top = max(max(xs), max(ys))
            ax.plot(
                [0, top],
                [0, top],
                color="#999999",
                linewidth=0.8,
                linestyle=":",
                label="achieved = asked",
            )
            ax.set_xlim(left=0)
            ax.set_ylim(bottom=0)
    if categories is not None:
        ax.set_xticks(range(len(categories)), list(categories), rotation=20, ha="right")
        ax.set_xlim(-0.5, len(categories) - 0.5)
    if logy:
        ax.set_yscale("log")
    elif not diagonal:
        ax.set_ylim(bottom=0)
    ax.set_xlabel(xlabel, fontsize=9)
    ax.set_ylabel(ylabel, fontsize=9)
    handles, labels = ax.get_legend_handles_labels()
    # Series first, then the styles (matplotlib lists plain lines before error bars).
    style_names = {s[0] for s in styles}
    order = sorted(range(len(labels)), key=lambda i: labels[i] in style_names)
    ax.legend(
        [handles[i] for i in order],
        [labels[i] for i in order],
        fontsize=8,
        frameon=False,
        loc="upper left",
        bbox_to_anchor=(1.02, 1.0),
    )
    return to_svg(fig, alt)


def breakdown_figure(
    labels: Sequence[str],
    parts: Mapping[str, Sequence[float]],
    colours: Mapping[str, str],
    ylabel: str,
    alt: str,
) -> str:
    """Stacked bars, one per label: positive parts stack up from 0, negative ones (an
    "other" below zero under noise) down, so no segment hides another."""
    width = min(12.0, max(6.0, 0.25 * len(labels) + 3.0))
    fig = _figure(width, 4.2)
    # Margins in inches, whatever the width: 0.8 for the y labels, 2.2 for the legend.
    ax = fig.add_axes((0.8 / width, 0.27, 1.0 - 3.0 / width, 0.66))
    _style(ax)
    n = len(labels)
    up, down = [0.0] * n, [0.0] * n
    half = 0.4
    handles = []
    for part, values in parts.items():
        boxes = []
        for i, v in enumerate(values):
            base = up[i] if v >= 0 else down[i]
            boxes.append(
                ((i - half, base), (i + half, base), (i + half, base + v), (i - half, base + v))
            )
            if v >= 0:
                up[i] += v
            else:
                down[i] += v
        colour = colours.get(part, "#777777")
        # One collection per part: ax.bar makes a patch per bar and re-scales the axes
        # after each, which costs seconds for a few hundred bars.
        ax.add_collection(PolyCollection(boxes, facecolors=colour, linewidths=0), autolim=False)
        handles.append(Patch(facecolor=colour, label=part))
    ax.set_xlim(-0.7, n - 0.3)
    low, high = min(down, default=0.0), max(up, default=0.0)
    span = (high - low) or 1.0
    ax.set_ylim(low - 0.03 * span if low < 0 else 0.0, high + 0.05 * span)
    ax.axhline(0, color="#555555", linewidth=0.6)
    step = -(-n // 30)  # at most 30 tick labels stay legible
    xs = list(range(n))
    ax.set_xticks(xs[::step], list(labels)[::step], rotation=35, ha="right", fontsize=7)
    ax.set_ylabel(ylabel, fontsize=9)
    ax.legend(
        handles=handles, fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0)
    )
    return to_svg(fig, alt)
