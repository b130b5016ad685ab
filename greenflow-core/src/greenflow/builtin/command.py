"""The ``command`` workload: run a command per run, count units of work from its output."""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import time
from collections import deque
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import attrs

from greenflow.api import Phase, ProcessGroups, RunContext, Workload, WorkloadResult
from greenflow.errors import WorkloadError
from greenflow.plan.durations import Duration
from greenflow.plan.validators import regex

Scalar = str | int | float | bool


#: A regular expression whose first group captures a number of the command's output.
_NUMBER_PATTERN = regex(groups=1, example=r"sent (\d+) messages")


@attrs.frozen
class CommandConfig:
    """``[workload] type = "command"``.

    ``command`` is run by ``/bin/sh -c`` with ``{name}`` replaced by the run's
    parameters (every key of ``params``, plus ``run_id`` and ``repetition``), each value
    shell-quoted. A list value in ``params`` is a sweep axis.
    """

    command: str
    params: dict[str, Scalar] = attrs.field(factory=dict)
    #: Regex with one group: the units of work the command reports (last match wins).
    units_pattern: str | None = attrs.field(default=None, validator=_NUMBER_PATTERN)
    #: What a unit is called, e.g. "message", "request" (used in J/<unit>).
    unit: str = "run"
    #: Regex with one group: bytes of payload processed, for J/MiB.
    bytes_pattern: str | None = attrs.field(default=None, validator=_NUMBER_PATTERN)
    #: Run before MEASURE, with the same substitutions; not measured.
    warmup_command: str | None = None
    timeout: Duration = Duration(3600)


class CommandWorkload(Workload):
    """Runs ``command`` once per run; MEASURE is exactly the command's lifetime."""

    Config: ClassVar[type] = CommandConfig
    config: CommandConfig

    def __init__(self, config: CommandConfig) -> None:
        super().__init__(config)
        self._proc: subprocess.Popen[bytes] | None = None

    def _render(self, template: str, ctx: RunContext) -> str:
        values: dict[str, Any] = {
            **self.config.params,
            "run_id": ctx.run_id,
            "repetition": ctx.repetition,
            "work_dir": str(ctx.work_dir),
        }
        quoted = {k: shlex.quote(str(v)) for k, v in values.items()}
        try:
            return template.format_map(quoted)
        except KeyError as exc:
            known = ", ".join(sorted(values))
            msg = f"command refers to {{{exc.args[0]}}}, which is not a parameter; known: {known}"
            raise WorkloadError(msg) from None

    def validate(self, services: Mapping[str, Any]) -> str | None:
        class _Probe(dict[str, str]):
            def __missing__(self, key: str) -> str:
                raise KeyError(key)

        names = {
            **{k: "" for k in self.config.params},
            "run_id": "",
            "repetition": "",
            "work_dir": "",
        }
        for template in (self.config.command, self.config.warmup_command):
            if template is None:
                continue
            try:
                template.format_map(_Probe(names))
            except KeyError as exc:
                return (
                    f"command refers to {{{exc.args[0]}}}, which is not a parameter; "
                    f"known: {', '.join(sorted(names))}"
                )
            except (ValueError, IndexError) as exc:
                return f"command is not a valid template: {exc}"
        return None

    def prepare(self, ctx: RunContext) -> None:
        ctx.work_dir.mkdir(parents=True, exist_ok=True)

    def _run(self, command: str, ctx: RunContext, log: Path) -> tuple[int, str]:
        with log.open("ab") as out:
            self._proc = subprocess.Popen(
                ["/bin/sh", "-c", command],
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=ctx.work_dir,
                start_new_session=True,  # a group we can kill whole
            )
            deadline = time.monotonic() + self.config.timeout
            try:
                while self._proc.poll() is None:
                    if time.monotonic() > deadline:
                        self._kill()
                        raise WorkloadError(
                            f"command did not finish within {self.config.timeout:g}s: {command}"
                        )
                    if ctx.cancel.wait(0.05):
                        raise KeyboardInterrupt
            except BaseException:
                self._kill()
                raise
            code = self._proc.returncode
        return code, log.read_text(errors="replace")

    def execute(self, ctx: RunContext) -> WorkloadResult:
        log = ctx.log_dir / f"command-{ctx.run_id}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        if self.config.warmup_command:
            ctx.phases.enter(Phase.WARMUP)
            code, output = self._run(self._render(self.config.warmup_command, ctx), ctx, log)
            if code != 0:
                raise WorkloadError(
                    f"warm-up command exited with {code}; last lines of {log}:\n{_tail(output)}"
                )
        command = self._render(self.config.command, ctx)
        log.touch()
        start = log.stat().st_size
        ctx.phases.enter(Phase.MEASURE)
        code, output = self._run(command, ctx, log)
        ctx.phases.enter(Phase.COOLDOWN)
        window = ctx.phases.window(Phase.MEASURE)
        output = output.encode()[start:].decode(errors="replace") if start else output
        if code != 0:
            raise WorkloadError(
                f"command exited with {code}; last lines of {log}:\n{_tail(output)}"
            )
        units = _extract(self.config.units_pattern, output, "units_pattern", log)
        payload = _extract(self.config.bytes_pattern, output, "bytes_pattern", log)
        duration = window.duration_s if window else 0.0
        return WorkloadResult(
            units=units if units is not None else 1.0,
            unit=self.config.unit,
            payload_bytes=payload,
            achieved_rate=(units / duration) if units is not None and duration > 0 else None,
        )

    def clean(self, ctx: RunContext) -> None:
        self._kill()

    def processes(self) -> ProcessGroups:
        proc = self._proc
        return {"command": [proc.pid]} if proc is not None and proc.poll() is None else {}

    def _kill(self) -> None:
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                return
            try:
                proc.wait(wait)
                return
            except subprocess.TimeoutExpired:
                continue


def _tail(text: str, lines: int = 15) -> str:
    return "\n".join(deque(text.rstrip().splitlines(), maxlen=lines)) or "(no output)"


def _extract(pattern: str | None, output: str, key: str, log: Path) -> float | None:
    if pattern is None:
        return None
    matches = list(re.finditer(pattern, output))
    if not matches:
        raise WorkloadError(
            f"{key} {pattern!r} matched nothing in the command's output "
            f"({log}); last lines:\n{_tail(output)}"
        )
    try:
        return float(matches[-1].group(1).replace(",", ""))
    except ValueError:
        raise WorkloadError(
            f"{key} {pattern!r} captured {matches[-1].group(1)!r}, not a number"
        ) from None
