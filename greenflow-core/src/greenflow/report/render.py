"""The HTML report: one self-contained file (inline CSS, plots as inline SVG, no script).

:func:`write_report` reads a store and writes the page; :func:`render_report` returns it.
Each experiment's part is :func:`greenflow.report.section.render`'s. This module imports
matplotlib (through the plots): import it through :mod:`greenflow.report`, which says
what to install when matplotlib is missing. docs/report.md describes the page.
"""

from __future__ import annotations

import string
import time
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

from greenflow import __version__
from greenflow.errors import GreenFlowError, StoreError
from greenflow.report import section
from greenflow.report.context import Context
from greenflow.report.data import load_experiment
from greenflow.report.options import ReportOptions, ReportSummary
from greenflow.report.text import Paths, escape
from greenflow.store.db import Store


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
    # Paths on the page are relative to the output directory: the page is shared, and
    # the machine it was made on is not the reader's.
    paths = Paths(store.path.parent)
    source = f"{paths.out.name}/{store.path.name}"
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
        body, n_power = section.render(Context(store, data, options, f"e{i}", paths))
        sections.append(body)
        toc.append(f'<li><a href="#e{i}">{escape(exp.name)}</a> — {len(data.runs)} runs</li>')
        runs += len(data.runs)
        shown += n_power
    if not experiments:
        sections.append(f'<p class="note">No experiment is stored in {escape(source)} yet.</p>')
    title = (
        ("GreenFlow report: " + experiments[0].name)
        if len(experiments) == 1
        else "GreenFlow report"
    )
    template = string.Template(
        resources.files("greenflow.report").joinpath("template.html").read_text("utf-8")
    )
    page = template.substitute(
        title=escape(title),
        version=escape(__version__),
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        store=escape(source),
        toc=f"<nav><ul>{''.join(toc)}</ul></nav>" if len(toc) > 1 else "",
        body="\n".join(sections),
    )
    return page, len(experiments), runs, shown
