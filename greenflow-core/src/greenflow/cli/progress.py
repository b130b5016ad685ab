"""Progress on screen: runs done/total, the current phase, time left."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from greenflow.plan import RunSpec
from greenflow.runner import Observer
from greenflow.store.redact import redact_text

#: How many lines of a failed run's error the console shows (the first, then the evidence).
_ERROR_LINES = 8


class RichObserver(Observer):
    def __init__(self, console: Console, enabled: bool = True) -> None:
        self.console = console
        self.enabled = enabled
        self.progress: Progress | None = None
        self.task: TaskID | None = None
        self.run_label = ""

    def start(self, total: int, skipped: int) -> None:
        if skipped:
            self.console.print(f"[dim]{skipped} run(s) already finished; resuming.[/dim]")
        if not self.enabled or total == 0:
            return
        self.progress = Progress(
            TextColumn("[bold]runs"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            TextColumn("left"),
            TimeRemainingColumn(),
            console=self.console,
            transient=False,
        )
        self.task = self.progress.add_task("starting", total=total)
        self.progress.start()

    def phase(self, phase: str, detail: str = "") -> None:
        if self.progress is not None and self.task is not None:
            text = f"{self.run_label} [cyan]{phase}[/cyan] {detail}".strip()
            self.progress.update(self.task, description=text)

    def run_started(self, run: RunSpec) -> None:
        params = " ".join(f"{k}={v}" for k, v in run.params.items())
        self.run_label = f"#{run.order} rep {run.repetition} {params}"

    def run_ended(self, run: RunSpec, status: str, error: str | None) -> None:
        if self.progress is not None and self.task is not None:
            self.progress.advance(self.task)
        if status != "finished":
            lines = redact_text(error).splitlines() if error else []
            first = lines[0] if lines else ""
            self.console.print(f"[red]run #{run.order} {status}[/red]: ", escape(first), sep="")
            # The lines after the first are the evidence (a pod's last log lines); a few of
            # them, indented. A plugin bug's traceback is not: -v prints it, and it is stored
            # (`greenflow results --json`).
            for line in lines[1:_ERROR_LINES]:
                if line.startswith("Traceback (most recent call last)"):
                    break
                self.console.print("  ", escape(line), sep="")
        self.run_label = ""

    def stop(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
