"""``greenflow report``: one self-contained HTML page per results store.

Importing this package is cheap; matplotlib (the ``report`` extra) is imported only by
:func:`write_report` and :func:`render_report`, which first check that it is installed.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING

from greenflow.errors import GreenFlowError
from greenflow.report.options import ReportOptions, ReportSummary

if TYPE_CHECKING:
    from greenflow.store import Store

#: What to install when matplotlib is missing.
INSTALL_HINT = "pip install 'greenflow-core[report]'"


def require_matplotlib() -> None:
    """Raise a :class:`GreenFlowError` with the install command when matplotlib is missing."""
    if importlib.util.find_spec("matplotlib") is None:
        msg = (
            "greenflow report draws its plots with matplotlib, which is not installed; "
            f"{INSTALL_HINT}"
        )
        raise GreenFlowError(msg)


def write_report(
    output_dir: str | Path, out: str | Path, options: ReportOptions | None = None
) -> ReportSummary:
    """Write the report of the store in ``output_dir`` (its ``greenflow.sqlite``) to ``out``."""
    require_matplotlib()
    from greenflow.report import render

    return render.write_report(output_dir, out, options)


def render_report(store: Store, options: ReportOptions | None = None) -> str:
    """The report of an open store as HTML text."""
    require_matplotlib()
    from greenflow.report import render

    return render.render_report(store, options)


__all__ = [
    "INSTALL_HINT",
    "ReportOptions",
    "ReportSummary",
    "render_report",
    "require_matplotlib",
    "write_report",
]
