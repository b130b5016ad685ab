"""The report's HTML text: escaping, numbers, tables, method labels, and paths shown
relative to the output directory (a report is shared; its reader's machine is not ours)."""

from __future__ import annotations

import html
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from greenflow.stats import Stat

SHARE_SUFFIX = "+cpu-share"
#: Keys left out of the provenance shown: process ids mean nothing once the run is over.
HIDDEN_KEYS = frozenset({"pid", "pids"})


def escape(value: object) -> str:
    return html.escape(str(value), quote=True)


def num(value: float | None, spec: str = ".4g") -> str:
    if value is None or not math.isfinite(value):
        return ""
    return format(value, spec)


def pm(mean: float, half: float | None) -> str:
    """``mean ± half``: the half-width to two significant digits and the mean to the same
    decimal place (``999.7 ± 4.2``); the mean alone (4 digits) without a half-width."""
    if half is None or not math.isfinite(half):
        return f"{mean:.4g}"
    if half == 0:
        return f"{mean:.4g} ± 0"
    decimals = 1 - math.floor(math.log10(abs(half)))
    if decimals > 6 or abs(mean) >= 1e7:  # read better in exponent notation
        return f"{mean:.3g} ± {half:.2g}"
    decimals = max(decimals, 0)
    return f"{mean:.{decimals}f} ± {half:.{decimals}f}"


def stat_text(st: Stat | None, factor: float = 1.0, n: int | None = None) -> str:
    """``mean ± half-width (n=N)`` of the 95 % CI, values × ``factor``; ``(n=N)`` is left
    out when it is ``n`` (a table that says n elsewhere)."""
    if st is None:
        return ""
    half = None if st.half_width is None else st.half_width * factor
    suffix = "" if n is not None and st.n == n else f" (n={st.n})"
    return pm(st.mean * factor, half) + suffix


def percent(st: Stat | None, n: int | None = None) -> str:
    """A share as ``mean ± half-width %``."""
    if st is None:
        return ""
    half = None if st.half_width is None else 100 * st.half_width
    suffix = "" if n is not None and st.n == n else f" (n={st.n})"
    return f"{pm(100 * st.mean, half)} %{suffix}"


def when(ts: float | None) -> str:
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


def methods_html(methods: Iterable[str]) -> str:
    found = list(dict.fromkeys(methods))
    if not found:
        return '<span class="method">method: none stored</span>'
    return " ".join(f'<span class="method">{escape(describe_method(m))}</span>' for m in found)


def table(
    head: Sequence[str],
    rows: Iterable[Sequence[str]],
    numeric: Sequence[bool] = (),
    row_classes: Sequence[str] = (),
    scroll: bool = False,
    css: str = "",
) -> str:
    """HTML table; cells are HTML already (escape them before)."""
    num_ = list(numeric) + [False] * (len(head) - len(numeric))
    cls_attr = f' class="{css}"' if css else ""
    out = [f"<table{cls_attr}><thead><tr>", *(f"<th>{h}</th>" for h in head)]
    out.append("</tr></thead><tbody>")
    for i, row in enumerate(rows):
        cls = row_classes[i] if i < len(row_classes) and row_classes[i] else ""
        out.append(f'<tr class="{cls}">' if cls else "<tr>")
        out += [
            f'<td class="num">{c}</td>' if num_[j] else f"<td>{c}</td>" for j, c in enumerate(row)
        ]
        out.append("</tr>")
    out.append("</tbody></table>")
    text = "".join(out)
    if scroll:
        return f'<div class="scroll">{text}</div>'
    return f'<div class="wide-wrap">{text}</div>' if "wide" in css.split() else text


def flatten(value: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(value, Mapping):
        out: list[tuple[str, Any]] = []
        for k, v in value.items():
            out += flatten(v, f"{prefix}.{k}" if prefix else str(k))
        return out
    if isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
        out = []
        for i, v in enumerate(value):
            out += flatten(v, f"{prefix}[{i}]")
        return out
    return [(prefix, value)]


def hidden(key: str) -> bool:
    """Whether a flattened provenance key names a process id (``software.pid``)."""
    parts = re.split(r"[.\[\]]", key)
    return any(p in HIDDEN_KEYS for p in parts)


# An absolute path of at least two parts (`/a/b`), not inside a URL or a word: `msg/s`
# and `http://host/x` are left alone.
_ABSOLUTE = re.compile(r"(?<![\w.~/:%-])/(?:[\w.+@%=-]+/)+[\w.+@%=-]*")


class Paths:
    """Shows absolute paths relative to the output directory: inside it as ``logs/x``,
    beside it as ``../x``, under the home directory as ``~/x``, elsewhere as the relative
    path from the output directory (``../../usr/lib/jvm/...``)."""

    def __init__(self, output_dir: Path, home: Path | None = None) -> None:
        self.out = Path(os.path.abspath(output_dir))
        try:
            self.home: Path | None = home or Path.home()
        except RuntimeError:  # no home directory known (no HOME, no passwd entry)
            self.home = None

    def path(self, text: str) -> str:
        path = Path(os.path.normpath(text))
        if path == self.out:
            return self.out.name
        if path.is_relative_to(self.out) or path.is_relative_to(self.out.parent):
            return os.path.relpath(path, self.out)
        if self.home is not None and self.home != Path("/") and path.is_relative_to(self.home):
            return "~/" + str(path.relative_to(self.home))
        return os.path.relpath(path, self.out)

    def text(self, text: str) -> str:
        """``text`` with every absolute path in it shown relative (see the class)."""
        return _ABSOLUTE.sub(lambda m: self.path(m.group(0)), text)
