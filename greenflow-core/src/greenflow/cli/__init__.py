"""``greenflow``: one module per command, one App object passed down."""

from __future__ import annotations

import sys

import click

from greenflow import __version__
from greenflow.cli._app import App, configure_logging


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More logs; tracebacks on errors.")
@click.option("-q", "--quiet", is_flag=True, help="Warnings and errors only.")
@click.option("--log-json", is_flag=True, help="Logs as JSON lines on stderr.")
@click.version_option(__version__, prog_name="greenflow")
@click.pass_context
def main(ctx: click.Context, verbose: int, quiet: bool, log_json: bool) -> None:
    """Measure how much energy a distributed system spends per unit of work."""
    app = App(verbose=verbose, quiet=quiet, log_json=log_json)
    configure_logging(app)
    ctx.obj = app


def _register() -> None:
    # Imported here, not at the top, so that `greenflow --help` stays fast.
    from greenflow.cli.down import down
    from greenflow.cli.plugins import plugins
    from greenflow.cli.report import report
    from greenflow.cli.results import results
    from greenflow.cli.run import run, up
    from greenflow.cli.shell import shell
    from greenflow.cli.validate import validate

    for command in (run, up, down, validate, plugins, results, shell, report):
        main.add_command(command)


_register()

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
