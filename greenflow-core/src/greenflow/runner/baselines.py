"""Idle baselines around each deployment (docs/measurement.md, "Idle baselines"): the
warm-up runs after a deploy, waiting for quiet, the opening, closing and services-down
baselines, and the idle uncertainty they give the runs."""

from __future__ import annotations

import shutil
import time
from typing import Any

import structlog

from greenflow.api import Inventory, Metric, Phase, PhaseRecorder, RunContext, Window
from greenflow.errors import GreenFlowError
from greenflow.plan import RunSpec
from greenflow.runner.base import RunnerBase
from greenflow.store import BaselineRow

log = structlog.get_logger("greenflow.runner")

#: CPU seconds per second used outside the services during a baseline above which its idle
#: power gets a background-load warning (GreenFlow's own sampling stays far below).
BASELINE_BACKGROUND_CPU = 0.1


def idle_uncertainty_metric(host: str, watts: float, duration_s: float, method: str) -> Metric:
    """One standard uncertainty of a run's idle-subtracted energy from its idle power's."""
    return Metric(
        "active_energy_uncertainty_joules",
        watts * duration_s,
        "joules",
        method,
        {"host": host, "scope": "host"},
    )


class BaselineSteps(RunnerBase):
    """The idle measurements of the lifecycle."""

    def _check_repetitions(self) -> None:
        """Fewer than 3 repetitions give intervals too wide to tell points apart."""
        n = self.plan.experiment.repetitions
        if n >= 3:
            self.store.clear_warning(self.exp_id, None, "repetitions")
            return
        self._warn(
            None,
            "repetitions",
            f"repetitions = {n}: confidence intervals from fewer than 3 repetitions are "
            "too wide to compare points (and n = 1 gives none); set [experiment] "
            "repetitions = 3 or more",
        )

    def _warm_up(self, first: RunSpec) -> None:
        """The unmeasured runs after a deploy (``warmup_runs``), at ``first``'s point."""
        count = self.plan.experiment.warmup_runs
        if count is None:
            count = max((svc.warmup_runs for svc in self.services.values()), default=0)
        for i in range(count):
            self._phase(Phase.WARMUP)
            self.observer.phase("warm-up", f"unmeasured run {i + 1}/{count}")
            log.info("service.warmup", run=i + 1, of=count, **first.params)
            run_dir = self.work_root / "warmup" / str(i)
            shutil.rmtree(run_dir, ignore_errors=True)
            run_dir.mkdir(parents=True, exist_ok=True)
            ctx = RunContext(
                experiment=self.plan.experiment.name,
                run_id=f"warmup-{i}",
                params=first.params,
                repetition=-1,
                inventory=self.inventory or Inventory([]),
                services=dict(self.services),
                work_dir=run_dir,
                log_dir=self.log_dir,
                phases=PhaseRecorder(lambda _phase, _at: self._mark()),
                cancel=self.cancel,
            )
            workload = self.plan.workload.cls(first.workload_config)
            self.workload = workload
            try:
                workload.prepare(ctx)
                workload.execute(ctx)
            except KeyboardInterrupt:
                raise
            except Exception as exc:  # a failed warm-up is worth knowing, not fatal
                self._warn(None, "warmup-failed", f"warm-up run {i + 1} failed: {exc}")
            finally:
                try:
                    workload.clean(ctx)
                except Exception as exc:
                    log.warning("service.warmup_clean_failed", error=str(exc))
                self.workload = None
                self._recorded_pids = set()
                self.store.clear_state(self.exp_id, "workload", "workload")
            self._phase(Phase.END)

    def _wait_quiet(self) -> tuple[bool | None, float]:
        """Wait until the hosts' power settles (``settle``, ``settle_window``,
        ``settle_tolerance``): (settled, seconds waited); settled is None when not waited
        for or not judgeable (no energy samples)."""
        from greenflow.measure.baseline import host_baselines, service_cpu, unsettled

        exp = self.plan.experiment
        if exp.settle <= 0:
            return None, 0.0
        t0 = last = time.time()
        self._mark()
        previous: dict[str, float] | None = None
        self.observer.phase("settle", "waiting for the services to go quiet")
        while True:
            self._sleep(exp.settle_window)
            self._mark()
            now = time.time()
            window = Window(last, now)
            samples = self._collect(window)
            try:
                power = {h: b.mean_watts for h, b in host_baselines(samples, window).items()}
            except GreenFlowError as exc:
                log.warning("baseline.settle_unjudged", reason=str(exc).splitlines()[0])
                return None, now - t0
            busy = {
                group: rate
                for group, rate in service_cpu(samples, window).items()
                if rate > exp.settle_cpu
            }
            why = "; ".join(f"{g} used {r:.2f} CPU-s/s" for g, r in sorted(busy.items())) or (
                "first window"
                if previous is None
                else unsettled(previous, power, exp.settle_tolerance)
            )
            if why is None:
                log.info("baseline.settled", after_s=round(now - t0, 1))
                return True, now - t0
            if now - t0 >= exp.settle:
                log.warning("baseline.not_settled", waited_s=round(now - t0, 1), reason=why)
                return False, now - t0
            previous, last = power, now

    def _baseline(self, kind: str, group: str) -> dict[str, Any]:
        """Measure idle power (``kind``: opening, closing or services-down) and store it per
        host; the opening one becomes the idle power of the group's runs."""
        from greenflow.measure.baseline import background_cpu, host_baselines

        seconds = self.plan.experiment.baseline
        if kind == "opening":
            self.idle, self._opening, self._group_runs = None, {}, []
        if seconds <= 0:
            return {}
        settled, waited = self._wait_quiet()
        start = self._phase(Phase.BASELINE)
        self.observer.phase("baseline", f"{seconds:g}s idle ({kind})")
        self._sleep(seconds)
        end = self._phase(Phase.END)
        window = Window(start, end)
        samples = self._collect(window)
        self._store_samples(None, samples, [(Phase.BASELINE, start)])
        try:
            stats = host_baselines(samples, window)
        except GreenFlowError as exc:
            self._warn(None, f"baseline-unusable:{kind}:{group}", f"the {kind} baseline: {exc}")
            return {}
        for host, rate in background_cpu(samples, window).items():
            if rate > BASELINE_BACKGROUND_CPU:
                self._warn(
                    None,
                    f"baseline-background-load:{kind}:{group}:{host}",
                    f"during the {kind} baseline{f' of {group}' if group else ''}, processes "
                    f"outside the services used {rate:.2f} CPU-s/s on {host}: its idle power "
                    "includes their work (stop them, or compare with the closing baseline)",
                )
        for b in stats.values():
            self.store.add_baseline(
                BaselineRow(
                    self.exp_id, group, kind, start, end, b.host, b.method, b.mean_watts,
                    b.stdev_watts, b.intervals, settled, waited if settled is not None else None,
                )
            )  # fmt: skip
        if settled is False:
            self._warn(
                None,
                f"baseline-unsettled:{kind}:{group}",
                f"the {kind} baseline{f' of {group}' if group else ''} started after "
                f"{waited:.0f} s without the hosts' power settling (settle = "
                f"{self.plan.experiment.settle:g} s): its idle power may include start-up work",
            )
        log.info(
            "baseline.measured",
            kind=kind,
            idle={
                h: f"{b.mean_watts:.3f} ± {b.stdev_watts:.3f} W ({b.method})"
                for h, b in stats.items()
            },
        )
        if kind == "opening":
            self._opening = stats
            self.idle = {h: (b.mean_watts, b.method) for h, b in stats.items()}
        return stats

    def _services_down_baseline(self) -> None:
        if self.plan.experiment.services_down_baseline:
            self._baseline("services-down", "")

    def _close_group(self) -> None:
        """The closing baseline of the group whose runs are over: its drift from the opening
        one updates the idle uncertainty of the group's runs."""
        from greenflow.measure.baseline import idle_uncertainty_watts

        runs, self._group_runs = self._group_runs, []
        if (
            not runs
            or not self._opening
            or not self.plan.experiment.closing_baseline
            or self.cancel.is_set()
        ):
            return
        closing = self._baseline("closing", self.current_group or "")
        for host, opening in self._opening.items():
            end = closing.get(host)
            if end is None or end.method != opening.method:
                continue
            drift = end.mean_watts - opening.mean_watts
            if abs(drift) > 0.05 * abs(opening.mean_watts):
                self._warn(
                    None,
                    f"baseline-drift:{self.current_group or ''}:{host}",
                    f"idle power of {host} drifted by {drift:+.3g} W "
                    f"({drift / opening.mean_watts:+.1%}) over the deployment "
                    f"{self.current_group or ''}: it is in the dynamic figures' uncertainty",
                )
            u = idle_uncertainty_watts(opening, end)
            for run_id, duration in runs:
                self.store.add_metrics(
                    run_id, [idle_uncertainty_metric(host, u, duration, opening.method)]
                )

    def _idle_uncertainties(self, measure: Window) -> list[Metric]:
        """Each host's idle uncertainty over ``measure`` from the opening baseline alone;
        the closing baseline replaces it with one that includes the drift."""
        from greenflow.measure.baseline import idle_uncertainty_watts

        return [
            idle_uncertainty_metric(
                host, idle_uncertainty_watts(b, None), measure.duration_s, b.method
            )
            for host, b in self._opening.items()
        ]
