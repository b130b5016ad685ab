"""Secrets never reach the terminal: log lines (console and JSON, tracebacks included),
the CLI's error line and a failed run's line apply the store's redaction."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from rich.console import Console

from greenflow.cli._app import App, configure_logging, error_boundary
from greenflow.errors import GreenFlowError

#: What must never be seen; each form hides it behind a trick that once leaked it (the
#: store's side of the same forms: tests/unit/store/test_store_redact.py).
SECRET = "S3cr3t-Value-42"
_FORMS = {
    "quote-in-password": f"https://alice:pa'{SECRET}@db.example/x",
    "double-quote-in-password": f'https://alice:pa"{SECRET}@db.example/x',
    "token-as-user": f"https://{SECRET}@git.example/org/repo.git",
    "raw-at-in-password": f"https://alice:p@{SECRET}@db.example/x",
    "raw-slash-in-password": f"https://alice:p/{SECRET}@db.example/x",
    "query-token": f"https://api.example/v1/items?token={SECRET}&page=2",
    "query-sig": f"https://blob.example/c/f.csv?sv=2022-11-02&sig={SECRET}",
    "quote-in-assignment": f"password=pa'{SECRET}",
    "escaped-quote-in-json": f'{{"password": "pa\\"{SECRET}"}}',
}
FORMS = pytest.mark.parametrize("form", _FORMS.values(), ids=_FORMS.keys())


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """configure_logging changes structlog's global configuration: put it back after."""
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


@FORMS
@pytest.mark.parametrize("log_json", [False, True], ids=["console", "json"])
def test_log_lines_hide_every_form(
    form: str, log_json: bool, restore_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """A log event's fields, its secret-named keys and its traceback show no secret."""
    configure_logging(App(verbose=1, log_json=log_json))
    log = structlog.get_logger("greenflow.test")
    log.warning("collector.failed", url=form, error=f"GET {form}: 401", password=SECRET)
    try:
        raise GreenFlowError(f"cannot reach {form}")
    except GreenFlowError as exc:
        log.debug("collector.failed.traceback", exc_info=exc)
    log.info("remote_write.failed", cause=ValueError(f"bad url {form}"))
    err = capsys.readouterr().err
    assert "collector.failed" in err and "Traceback" in err and "remote_write.failed" in err
    assert SECRET not in err
    if log_json:
        assert all(json.loads(line) for line in err.splitlines() if line.startswith("{"))


@FORMS
def test_the_error_line_hides_every_form(form: str, capsys: pytest.CaptureFixture[str]) -> None:
    """The one line `Error: ...` an expected failure prints shows no secret."""
    with pytest.raises(SystemExit), error_boundary(App()):
        raise GreenFlowError(f"collector 'web': GET {form} failed: 401 Unauthorized")
    err = capsys.readouterr().err
    assert err.startswith("Error: collector 'web': GET ") and SECRET not in err


@FORMS
def test_a_failed_run_line_hides_every_form(form: str) -> None:
    """The progress display's line for a failed run shows no secret (nor reads it as markup)."""
    from greenflow.cli.progress import RichObserver
    from greenflow.plan import RunSpec

    out = io.StringIO()
    observer = RichObserver(Console(file=out, width=300), enabled=False)
    run = RunSpec("r", 3, 0, {}, "g", None, {}, {})
    observer.run_ended(run, "failed", f"[workload] GET {form} failed\ntraceback")
    text = out.getvalue()
    assert text.startswith("run #3 failed: [workload] GET ") and SECRET not in text


@FORMS
def test_validate_warning_hides_every_form(
    form: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A platform that cannot be read at validate gets a warning that shows no secret."""
    from click.testing import CliRunner

    from greenflow.builtin.local import LocalPlatform
    from greenflow.cli import main
    from greenflow.errors import PlatformError

    def unreachable(self: LocalPlatform, roles: object) -> str | None:
        raise PlatformError(f"GET {form}: 401 Unauthorized")

    monkeypatch.setattr(LocalPlatform, "check_roles", unreachable)
    plan = tmp_path / "plan.toml"
    plan.write_text(
        '[experiment]\nname = "s"\n[platform]\ntype = "local"\n'
        '[workload]\ntype = "command"\ncommand = "true"\n'
    )
    result = CliRunner().invoke(main, ["validate", str(plan)])
    assert result.exit_code == 0, result.output
    assert "could not check the platform's roles: GET " in result.stderr
    assert SECRET not in result.output + result.stderr
