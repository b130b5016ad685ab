"""The progress display's lines for a failed run: the error's first line, then the evidence
that came with it (a pod's last log lines), never a plugin bug's traceback (that is -v's)."""

from __future__ import annotations

import io

from rich.console import Console

from greenflow.cli.progress import RichObserver
from greenflow.plan import RunSpec


def _printed(error: str) -> list[str]:
    out = io.StringIO()
    observer = RichObserver(Console(file=out, width=300), enabled=False)
    observer.run_ended(RunSpec("r", 0, 0, {}, "g", None, {}, {}), "failed", error)
    return out.getvalue().splitlines()


def test_the_log_lines_after_the_message_are_shown() -> None:
    """A pod that died: the reason is in its log, which follows the first line."""
    lines = _printed(
        "workload 'kafka-ingest' execute failed: pod p: container tool terminated: Error "
        "(exit code 1); last lines of its log:\n"
        "  Error: Could not find or load main class io.greenflow.kafka.ScheduledProducer\n"
        "  Caused by: java.lang.ClassNotFoundException"
    )
    assert lines[0].startswith("run #0 failed: workload 'kafka-ingest' execute failed")
    assert any("Could not find or load main class" in line for line in lines[1:])
    assert any("ClassNotFoundException" in line for line in lines[1:])


def test_a_traceback_is_left_to_verbose_mode() -> None:
    lines = _printed(
        "workload 'buggy' execute failed: KeyError: 'k' (raised at w.py:3 in execute)\n"
        "Traceback (most recent call last):\n"
        '  File "w.py", line 3, in execute\n'
        "KeyError: 'k'"
    )
    assert len(lines) == 1 and "raised at w.py:3" in lines[0]
