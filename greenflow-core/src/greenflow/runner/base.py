"""The runner's state and the helpers every part of the lifecycle uses: phases and the
collectors' readings at their boundaries, recorded state, warnings, collection, store
writes that must not stop a teardown."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any

import structlog

from greenflow.api import (
    Collector,
    DeployContext,
    Inventory,
    Phase,
    Platform,
    ProcessGroups,
    Sample,
    Service,
    Window,
    Workload,
)
from greenflow.api.processes import identify
from greenflow.errors import StoreError
from greenflow.plan import Expansion, Plan
from greenflow.plan.converter import converter
from greenflow.runner.observer import Observer
from greenflow.runner.steps import Step, StepFailed, call
from greenflow.store import Store

log = structlog.get_logger("greenflow.runner")


#: A workload's process group named with this prefix is part of the system under test.
SERVICE_PREFIX = "service:"


class RunnerBase:
    """What :class:`~greenflow.runner.Runner` knows while it runs, and its shared helpers."""

    def __init__(
        self,
        plan: Plan,
        expansion: Expansion,
        store: Store,
        *,
        observer: Observer | None = None,
        fresh: bool = False,
    ) -> None:
        self.plan = plan
        self.expansion = expansion
        self.store = store
        self.observer = observer or Observer()
        self.fresh = fresh
        self.cancel = threading.Event()
        self.exp_id = store.upsert_experiment(
            plan.experiment.name, str(plan.path), plan.text, plan.experiment.effective_seed
        )
        self.platform: Platform | None = None
        self.inventory: Inventory | None = None
        self.collectors: list[Collector] = []
        # Each collector's plan section and config: for step messages and restarts.
        self._collector_sections: dict[int, tuple[Any, Any]] = {}
        # Collectors that read what the services deploy, started by the first _deploy.
        self._collectors_after_deploy: list[tuple[Any, Any]] = []
        self.services: dict[str, Service] = {}
        self.current_group: str | None = None
        self.workload: Workload | None = None
        self.idle: dict[str, tuple[float, str]] | None = None
        # The opening baseline of the current deployment group, and its finished runs with
        # their MEASURE length, whose idle uncertainty the closing baseline updates.
        self._opening: dict[str, Any] = {}
        self._group_runs: list[tuple[str, float]] = []
        # Wall seconds of each run so far (prepare to clean): the walltime guard's estimate.
        self._run_walls: list[float] = []
        #: Set when services left up by `greenflow up` were attached; they stay up.
        self.reused = False
        self._recorded_pids: set[int] = set()
        # Samples also go to Prometheus/VictoriaMetrics when the plan says so; the local
        # store always keeps them (the writer never raises into the run).
        self.remote = plan.remote_write.writer() if plan.remote_write is not None else None
        # Absolute: services may run their processes from another working directory.
        self.work_root = (plan.output_dir / "work" / plan.experiment.name).resolve()
        self.log_dir = (plan.output_dir / "logs" / plan.experiment.name).resolve()

    def _phase(self, phase: Phase, run_id: str | None = None) -> float:
        t = time.time()
        self._mark()
        self.store.record_phase(self.exp_id, run_id, phase.value, t)
        self.observer.phase(phase.value)
        return t

    def _mark(self) -> None:
        """Every collector takes a reading now: a phase boundary was crossed."""
        for c in self.collectors:
            try:
                c.mark()
            except Exception as exc:  # mark must not raise; a plugin bug must not stop a run
                log.warning("collector.mark_failed", collector=c.name, error=repr(exc))

    def _recorder(
        self, kind: str, name: str, plugin: str, config: Any
    ) -> Callable[[Mapping[str, Any]], None]:
        def record(state: Mapping[str, Any]) -> None:
            self.store.record_state(
                self.exp_id, kind, name, plugin, converter.unstructure(config), state
            )

        return record

    def _deploy_ctx(self, kind: str, name: str, plugin: str, config: Any) -> DeployContext:
        return DeployContext(
            experiment=self.plan.experiment.name,
            work_dir=self.work_root / name,
            log_dir=self.log_dir,
            record_state=self._recorder(kind, name, plugin, config),
            cancel=self.cancel,
            plan_path=self.plan.path.resolve(),
            progress=lambda text: self.observer.phase(f"{kind} {name}", text),
        )

    def process_groups(self) -> ProcessGroups:
        groups: dict[str, list[int]] = {}
        for name, svc in list(self.services.items()):
            try:
                pids = [p for ps in svc.processes().values() for p in ps]
            except Exception:  # a dying service must not stop the sampler
                pids = []
            groups[f"service:{name}"] = pids
        wl = self.workload
        if wl is not None:
            # A workload that runs part of the system under test itself (Theodolite's
            # stream-processing app) names those processes "service:<name>": they are
            # attributed as a service, not as load; everything else is the load generator.
            own = wl.processes()
            pids = [
                p for name, ps in own.items() if not name.startswith(SERVICE_PREFIX) for p in ps
            ]
            groups[f"loadgen:{self.plan.workload.type}"] = pids
            for name, ps in own.items():
                if name.startswith(SERVICE_PREFIX):
                    groups[name] = list(ps)
            self._record_loadgen(wl, [p for ps in own.values() for p in ps])
        return groups

    def _record_loadgen(self, wl: Workload, pids: list[int]) -> None:
        """Record the load generator's processes as they appear, for `greenflow down`.

        Called from the process collector's thread at each sample (the store is locked)."""
        if set(pids) == self._recorded_pids:
            return
        self._recorded_pids = set(pids)
        self.store.record_state(
            self.exp_id,
            "workload",
            "workload",
            self.plan.workload.type,
            converter.unstructure(wl.config),
            {"pids": identify(pids)},
        )

    def _warn(self, run_id: str | None, code: str, message: str) -> None:
        """A warning on the screen, in the log and in the store (results and report)."""
        log.warning("experiment.warning", code=code, run=run_id, message=message)
        self.store.add_warning(self.exp_id, run_id, code, message)

    def _sleep(self, seconds: float) -> None:
        if self.cancel.wait(seconds):
            raise KeyboardInterrupt

    def _unhealthy(self) -> str | None:
        for name, svc in self.services.items():
            reason = svc.health()
            if reason:
                return f"service {name!r}: {reason}"
        return None

    def _collector_step(self, collector: Collector, step: str) -> Step:
        section, _ = self._collector_sections[id(collector)]
        return Step("collector", section.type, section.where, step)

    def _service_step(self, name: str, step: str) -> Step:
        section = next(s for s in self.plan.services if s.name == name)
        return Step("service", section.type, section.where, step)

    def _collect(self, window: Window, failures: list[str] | None = None) -> list[Sample]:
        """Every collector's samples over ``window``; a collector that fails (or overruns
        its deadline) is logged and, when ``failures`` is given, named there."""
        samples: list[Sample] = []
        timeout = self.plan.experiment.timeout_s("collect")
        for c in self.collectors:
            try:
                samples.extend(
                    call(self._collector_step(c, "collect"), partial(c.collect, window), timeout)
                )
            except StepFailed as exc:
                log.warning("collector.failed", collector=c.name, error=str(exc))
                log.debug("collector.failed.traceback", exc_info=exc.__cause__ or exc)
                if failures is not None:
                    failures.append(str(exc))
        return samples

    def _store_samples(
        self, run_id: str | None, samples: list[Sample], bounds: Sequence[tuple[Phase, float]]
    ) -> None:
        """Store samples locally and, when configured, remote-write them by phase."""
        self.store.add_samples(self.exp_id, run_id, samples)
        if self.remote is None or not samples:
            return
        by_phase: dict[str, list[Sample]] = {}
        for sample in samples:
            phase = bounds[0][0]
            for p, t in bounds:
                if sample.timestamp >= t:
                    phase = p
            by_phase.setdefault(phase.value, []).append(sample)
        for phase_name, chunk in by_phase.items():
            self.remote.write(self.plan.experiment.name, run_id or "", phase_name, chunk)

    def _record(self, what: str, write: Callable[[], object]) -> None:
        """A store write during teardown: when the store cannot be written (a full disk),
        say what was not recorded and go on releasing; what stays recorded as live is
        released again by `greenflow down`, which is idempotent."""
        try:
            write()
        except StoreError as exc:
            log.error(
                "store.unwritable",
                not_recorded=what,
                error=str(exc).splitlines()[0],
                hint="teardown goes on; `greenflow down` finishes from what is recorded",
            )

    def _step(self, what: str, fn: Callable[[], None]) -> bool:
        """Run one teardown step; a second Ctrl-C skips it but the state stays recorded."""
        try:
            fn()
            return True
        except KeyboardInterrupt:
            log.warning(
                "teardown.skipped", step=what, hint="left behind; `greenflow down` releases it"
            )
        except Exception as exc:
            log.error("teardown.failed", step=what, error=str(exc))
        return False
