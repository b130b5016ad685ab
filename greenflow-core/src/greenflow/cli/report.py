"""``greenflow report [OUTPUT_DIR] -o report.html``: one self-contained HTML page."""

from __future__ import annotations

from pathlib import Path

import click

from greenflow.cli._app import App, error_boundary

DEFAULT_DIR = "greenflow-output"


@click.command()
@click.argument("output_dir", required=False, default=DEFAULT_DIR, type=click.Path(path_type=Path))
@click.option("-e", "--experiment", metavar="NAME", help="Only this experiment (default: all).")
@click.option(
    "-o",
    "--output",
    "out",
    default="report.html",
    show_default=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The HTML file to write.",
)
@click.option(
    "-x",
    "--x-axis",
    metavar="AXIS",
    help=(
        "Sweep axis for the x of the load plots (default: a protocol's axis, else the "
        "first numeric one)."
    ),
)
@click.option(
    "--power-plots",
    type=click.IntRange(min=0),
    default=24,
    show_default=True,
    help="At most this many per-run power-over-time plots.",
)
@click.pass_obj
def report(
    app: App | None,
    output_dir: Path,
    experiment: str | None,
    out: Path,
    x_axis: str | None,
    power_plots: int,
) -> None:
    """Write an HTML report of the runs stored in OUTPUT_DIR (default ./greenflow-output).

    One file with everything inline (no network needed to view it): energy per unit of
    work vs load with 95 % confidence intervals, achieved vs asked throughput, where the
    energy went (services, load generators, idle, other), latency, power over time per
    run with its phases, for a max-throughput or proportionality protocol the saturation
    curve and its conclusion, the runs (failed and aborted ones with their error),
    provenance and the plan. Every figure states how it was measured. OUTPUT_DIR may also be an
    experiment's name, read from ./greenflow-output. Needs matplotlib:
    pip install 'greenflow-core[report]'.
    """
    from greenflow.report import ReportOptions, write_report

    with error_boundary(app or App()):
        # `greenflow report NAME`: an experiment of the default store, when NAME is no
        # directory but that store exists.
        default = Path(DEFAULT_DIR)
        if (
            experiment is None
            and not output_dir.exists()
            and output_dir != default
            and (default / "greenflow.sqlite").is_file()
            and len(output_dir.parts) == 1
        ):
            output_dir, experiment = default, str(output_dir)
        summary = write_report(
            output_dir,
            out,
            ReportOptions(experiment=experiment, x_axis=x_axis, power_plots=power_plots),
        )
        click.echo(
            f"wrote {summary.path}: {summary.experiments} experiment(s), "
            f"{summary.runs} runs, {summary.power_plots} power plots, "
            f"in {summary.seconds:.1f}s",
            err=True,
        )
