"""What a report contains, and what writing one did."""

from __future__ import annotations

from pathlib import Path

import attrs


@attrs.frozen
class ReportOptions:
    """What goes into the report.

    ``experiment`` limits it to one experiment (default: every one in the store).
    ``x_axis`` is the sweep axis the load plots use (default: the first numeric axis).
    ``power_plots`` caps the per-run power plots, which cost tens of milliseconds each
    (0 leaves out the baselines' plots too).
    """

    experiment: str | None = None
    x_axis: str | None = None
    power_plots: int = 24


@attrs.frozen
class ReportSummary:
    """What :func:`write_report` wrote, and how long it took."""

    path: Path
    experiments: int
    runs: int
    power_plots: int
    seconds: float
