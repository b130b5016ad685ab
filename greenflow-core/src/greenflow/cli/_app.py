"""The CLI's shared context: logging setup and the error boundary."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

import attrs
import click
import structlog


class _StderrLogger:
    """structlog logger writing to whatever sys.stderr is *now* (rich swaps it while a
    progress display is live, so lines land above the bar instead of through it)."""

    def msg(self, message: str) -> None:
        stream: TextIO = sys.stderr
        # The terminal may be gone (SIGHUP: a closed window, a dropped SSH session): a log
        # line that cannot be written must never stop the teardown that follows.
        with contextlib.suppress(OSError, ValueError):
            print(message, file=stream, flush=True)

    log = debug = info = warning = warn = error = critical = exception = fatal = msg


@attrs.define
class App:
    verbose: int = 0
    quiet: bool = False
    log_json: bool = False


def configure_logging(app: App) -> None:
    from greenflow.store.redact import redact_event

    level = logging.DEBUG if app.verbose else logging.WARNING if app.quiet else logging.INFO
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if app.log_json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso" if app.log_json else "%H:%M:%S"),
            # Tracebacks as text, so that the store's redaction reaches them too: a log line
            # shows no more of a password, token or key than the store keeps.
            structlog.processors.format_exc_info,
            redact_event,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=lambda *_a: _StderrLogger(),
        cache_logger_on_first_use=False,
    )


@contextmanager
def error_boundary(app: App) -> Iterator[None]:
    """Expected failures become one message and exit 1; tracebacks only with -v."""
    from greenflow.errors import GreenFlowError

    try:
        yield
    except GreenFlowError as exc:
        if app.verbose:
            raise
        from greenflow.store.redact import redact_text

        click.echo(f"Error: {redact_text(str(exc))}", err=True)
        sys.exit(1)
