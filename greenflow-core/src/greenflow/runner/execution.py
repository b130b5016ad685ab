"""One run: prepare, execute and clean the workload under their deadlines, then collect,
compute and store its figures, and the warnings they need (docs/concepts.md)."""

from __future__ import annotations

import shutil
import time
import traceback
from collections.abc import Sequence
from functools import partial
from typing import Any

import structlog

from greenflow.api import (
    Metric,
    Phase,
    PhaseRecorder,
    RunContext,
    Sample,
    TimeLimited,
    Window,
    Workload,
)
from greenflow.errors import GreenFlowError, StoreError, WorkloadError
from greenflow.plan import RunSpec
from greenflow.runner.baselines import BaselineSteps
from greenflow.runner.idle_run import IdleRun
from greenflow.runner.observer import Outcome
from greenflow.runner.steps import Step, StepFailed, call
from greenflow.runner.units import per_unit_metrics, share_metrics, workload_metrics
from greenflow.store import RunStatus

log = structlog.get_logger("greenflow.runner")

#: Busy CPU outside the services and the load generator, as a share of the host's, above
#: which a run's figures get a background-load warning.
BACKGROUND_SHARE = 0.05
#: What the walltime guard (:class:`greenflow.api.TimeLimited`) assumes a run takes before
#: the first one was timed, s; then the longest run so far.
FIRST_RUN_ESTIMATE_S = 600.0


class RunExecution(BaselineSteps):
    """Running one point of the plan, start to stored figures."""

    def _ensure_time(self) -> None:
        """A platform held for a limited time keeps its hosts through the next run, or
        raises OutOfTime before it starts (docs/concepts.md, "Time-limited platforms")."""
        if isinstance(self.platform, TimeLimited):
            longest = max(self._run_walls, default=FIRST_RUN_ESTIMATE_S)
            self.platform.ensure_time(longest + self.plan.experiment.cooldown)

    def _execute(self, run: RunSpec, outcome: Outcome) -> RunStatus:
        assert self.inventory is not None
        self._ensure_time()
        started = time.monotonic()
        try:
            return self._execute_timed(run, outcome)
        finally:
            self._run_walls.append(time.monotonic() - started)

    def _execute_timed(self, run: RunSpec, outcome: Outcome) -> RunStatus:
        assert self.inventory is not None
        store = self.store
        run_dir = self.work_root / "runs" / run.run_id
        if run_dir.exists():
            shutil.rmtree(run_dir, ignore_errors=True)
        run_dir.mkdir(parents=True, exist_ok=True)

        def on_enter(phase: Phase, at: float) -> None:
            self._mark()
            # The load generator's processes are recorded (for `greenflow down` and the next
            # run's orphan check) at each phase, not only when a process collector samples.
            # A store that cannot be written (a full disk) must not stop the run's own
            # clean-up: the phase stays in the recorder, what is lost is said.
            self._record(f"phase {phase.value} of run {run.run_id}", self.process_groups)
            self._record(
                f"phase {phase.value} of run {run.run_id}",
                partial(store.record_phase, self.exp_id, run.run_id, phase.value, at),
            )
            self.observer.phase(phase.value)

        phases = PhaseRecorder(on_enter)
        ctx = RunContext(
            experiment=self.plan.experiment.name,
            run_id=run.run_id,
            params=run.params,
            repetition=run.repetition,
            inventory=self.inventory,
            services=dict(self.services),
            work_dir=run_dir,
            log_dir=self.log_dir,
            phases=phases,
            cancel=self.cancel,
        )
        self.observer.run_started(run)
        store.set_run_status(run.run_id, RunStatus.RUNNING)
        log.info(
            "run.started",
            run=run.run_id,
            order=run.order,
            repetition=run.repetition,
            **{k: str(v) for k, v in run.params.items()},
        )
        workload: Workload = (
            IdleRun(self.expansion.protocol.config.duration)
            if run.idle
            else self.plan.workload.cls(run.workload_config)
        )
        self.workload = workload
        status, error, result = RunStatus.FINISHED, None, None
        exp = self.plan.experiment
        where = self.plan.workload.where
        kind = self.plan.workload.type if not run.idle else "idle"
        try:
            phases.enter(Phase.PREPARE)
            call(Step("workload", kind, where, "prepare"), lambda: workload.prepare(ctx),
                 exp.timeout_s("prepare"))  # fmt: skip
            result = call(
                Step("workload", kind, where, "execute"),
                lambda: workload.execute(ctx),
                exp.timeout_s("execute"),
            )
            reason = self._unhealthy()
            if reason:
                status, error = RunStatus.FAILED, reason
            elif phases.window(Phase.MEASURE) is None:
                status, error = (
                    RunStatus.FAILED,
                    (
                        f"workload {self.plan.workload.type!r} returned without a MEASURE window "
                        "(it must enter Phase.MEASURE then Phase.COOLDOWN)"
                    ),
                )
        except KeyboardInterrupt:
            status, error = RunStatus.ABORTED, "interrupted (Ctrl-C, SIGTERM or SIGHUP)"
            raise
        except StepFailed as exc:
            # One line that names the plugin, the step and, for a bug, where it was raised;
            # the traceback goes with it into the store, and to the screen with -v.
            status, error = RunStatus.FAILED, str(exc)
            if isinstance(exc.__cause__, WorkloadError):
                result = exc.__cause__.result
            if exc.__cause__ is not None and not isinstance(exc.__cause__, GreenFlowError):
                trace = "".join(traceback.format_exception(exc.__cause__, limit=-8))
                error = f"{error}\n{trace}"
                log.debug("run.traceback", run=run.run_id, traceback=trace)
            reason = self._unhealthy()
            if reason and reason not in error:
                error = f"{error}\n{reason}"
        finally:
            try:
                if (
                    phases.current not in (Phase.COOLDOWN, Phase.CLEAN)
                    and phases.window(Phase.MEASURE) is None
                    and phases.current == Phase.MEASURE
                ):
                    phases.enter(Phase.COOLDOWN)
                phases.enter(Phase.CLEAN)
                try:
                    call(Step("workload", kind, where, "clean"), lambda: workload.clean(ctx),
                         exp.timeout_s("clean"))  # fmt: skip
                except StepFailed as exc:
                    if status == RunStatus.FINISHED:
                        status, error = RunStatus.FAILED, str(exc)
                    log.warning("run.clean_failed", run=run.run_id, error=str(exc))
                phases.enter(Phase.END)
            finally:
                self.workload = None
                self._recorded_pids = set()
                self._record(
                    "that the load generator stopped",
                    partial(self.store.clear_state, self.exp_id, "workload", "workload"),
                )
                try:
                    self._finish(run, phases, status, error, result, outcome)
                except StoreError as exc:
                    log.error(
                        "run.not_recorded",
                        run=run.run_id,
                        status=status.value,
                        error=str(exc).splitlines()[0],
                        hint="the run stays unfinished in the store; a re-run redoes it",
                    )
                    raise
        return status

    def _finish(
        self,
        run: RunSpec,
        phases: PhaseRecorder,
        status: RunStatus,
        error: str | None,
        result: Any,
        outcome: Outcome,
    ) -> None:
        from greenflow.measure.attribution import compute_run_metrics

        store = self.store
        bounds = list(phases)
        if status != RunStatus.ABORTED and bounds:
            window = Window(bounds[0][1], bounds[-1][1])
            failures: list[str] = []
            samples = self._collect(window, failures)
            self._store_samples(run.run_id, samples, bounds)
            measure = phases.window(Phase.MEASURE)
            if status == RunStatus.FINISHED and failures:
                # Never a finished run without its energy: failed, a re-run redoes it.
                status, error = RunStatus.FAILED, "energy missing: " + "; ".join(failures)
            if status == RunStatus.FINISHED and result is not None and measure is not None:
                metrics: list[Metric] = []
                try:
                    energy = compute_run_metrics(samples, measure, self.idle)
                    metrics = [*energy, *per_unit_metrics(energy, result), *share_metrics(energy)]
                    metrics += self._idle_uncertainties(measure)
                    self._group_runs.append((run.run_id, measure.duration_s))
                    self._check_run(run.run_id, energy, samples, measure)
                except GreenFlowError as exc:
                    if self.collectors:
                        status, error = RunStatus.FAILED, f"energy missing: {exc}"
                    log.warning("run.energy_unavailable", run=run.run_id, error=str(exc))
                metrics += workload_metrics(result)
                metrics.append(
                    Metric("measure_duration_seconds", measure.duration_s, "seconds", "clock")
                )
                store.set_result(run.run_id, result)
                store.add_metrics(run.run_id, metrics)
            elif status == RunStatus.FAILED and result is not None:
                # What the workload measured before it judged the run a failure (the rate
                # reached under overload): its own figures, no energy.
                store.set_result(run.run_id, result)
                store.add_metrics(run.run_id, workload_metrics(result))
        store.set_run_status(run.run_id, status, error)
        {
            RunStatus.FINISHED: outcome.finished,
            RunStatus.FAILED: outcome.failed,
            RunStatus.ABORTED: outcome.aborted,
        }[status].append(run.run_id)
        self.observer.run_ended(run, status.value, error)
        log_fn = log.info if status == RunStatus.FINISHED else log.warning
        log_fn(
            "run.ended",
            run=run.run_id,
            status=status.value,
            error=(error or "").splitlines()[0] if error else None,
        )

    def _check_run(
        self, run_id: str, energy: Sequence[Metric], samples: Sequence[Sample], measure: Window
    ) -> None:
        """Warn when what a run's figures say is not what they seem to: busy CPU outside
        the groups (background processes) above 5 %, or energy read across a gap."""
        from greenflow.measure.integrate import longest_gap, split_series

        busy = {
            m.labels["host"]: m.value
            for m in energy
            if m.name == "cpu_seconds" and m.labels.get("scope") == "host"
        }
        for m in energy:
            host = m.labels.get("host", "")
            if m.name == "cpu_seconds" and m.labels.get("scope") == "other" and busy.get(host):
                share = m.value / busy[host]
                if share > BACKGROUND_SHARE:
                    self._warn(
                        run_id,
                        f"background-load:{host}",
                        f"{share:.0%} of {host}'s busy CPU time in MEASURE was used by "
                        "processes outside the services and the load generator: their energy "
                        "is in the host figures (see energy_joules scope other)",
                    )
        for (host, metric, method, _labels), series in split_series(samples).items():
            if metric not in ("energy_joules", "host_energy_joules"):
                continue
            gap, limit = longest_gap(series, measure)
            if gap > limit:
                self._warn(
                    run_id,
                    f"sample-gap:{host}:{method}",
                    f"{method} energy of {host} has a {gap:.1f} s gap between samples in or "
                    f"around MEASURE (more than {limit:.1f} s): the energy across it is "
                    "interpolated, not measured",
                )
