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
            first = redact_text(error).splitlines()[0] if error else ""
            self.console.print(f"[red]run #{run.order} {status}[/red]: ", escape(first), sep="")
        self.run_label = ""

    def stop(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
