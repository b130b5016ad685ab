"""Errors GreenFlow expects. The CLI prints these as one message, never a traceback (unless -v)."""

from __future__ import annotations

from typing import Any


class GreenFlowError(Exception):
    """Root of every expected failure: the message says what, which value, what to do."""


class PlanError(GreenFlowError):
    """The plan is wrong: the message names the file, the TOML path, what was expected."""


class PluginError(GreenFlowError):
    """A plugin is missing, broken or registered twice."""


class PlatformError(GreenFlowError):
    """The platform could not be acquired, or released."""


class OutOfTime(PlatformError):
    """The platform's reservation cannot hold the next run (a Grid'5000 job's walltime):
    the runner stops before starting it, keeps the finished runs and tears down; the
    message says how to resume."""


class ServiceError(GreenFlowError):
    """A service failed to deploy, to become ready, or died."""


class WorkloadError(GreenFlowError):
    """A workload run failed; the run is recorded as failed with this message.

    ``result``, when the workload measured something before it judged the run a failure
    (e.g. the rate it reached under overload), is stored with the failed run: its figures
    (not energy: a failed run has none) stay readable in ``greenflow results``."""

    # ``result`` is a greenflow.api.WorkloadResult; typed Any so that this module, which every
    # other imports, imports nothing of GreenFlow's.
    def __init__(self, message: str, *, result: Any = None) -> None:
        super().__init__(message)
        self.result = result


class CollectorError(GreenFlowError):
    """A collector cannot read what it measures (e.g. energy_uj unreadable)."""


class ReadinessTimeout(GreenFlowError):
    """A wait hit its deadline; the message says what it waited for and what it last saw."""


class StoreError(GreenFlowError):
    """The results store cannot be opened or is inconsistent."""
