"""The run lifecycle (DESIGN.md §5) with guaranteed teardown.

acquire platform → start collectors → for each deployment group: deploy services →
(the first time: start the collectors that read what services deploy) → baseline → runs
(prepare → warm-up → MEASURE → cool-down → clean) → remove services → stop collectors →
release platform.

Teardown runs in ``finally`` and on SIGINT/SIGTERM (turned into KeyboardInterrupt).
Everything that could leak is recorded in the store as it is created, so that
``greenflow down`` can release it after a crash; a run cut short is stored ``aborted``.
"""

from __future__ import annotations

import shutil
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import partial
from typing import Any

import attrs
import structlog

from greenflow.api import (
    Capability,
    Collector,
    CollectorContext,
    DeployContext,
    Inventory,
    Metric,
    Phase,
    PhaseRecorder,
    Platform,
    Probe,
    ProcessGroups,
    RunContext,
    Sample,
    Service,
    Window,
    Workload,
    WorkloadResult,
)
from greenflow.api.processes import identify
from greenflow.errors import CollectorError, GreenFlowError, PlanError, StoreError
from greenflow.plan import Expansion, Plan, RunSpec
from greenflow.plan.converter import converter
from greenflow.plan.model import PluginSection
from greenflow.runner.provenance import host_facts, software
from greenflow.runner.recorded import mark_left_up, release
from greenflow.runner.signals import interrupts_as_keyboard_interrupt
from greenflow.runner.steps import Step, StepFailed, call
from greenflow.runner.units import per_unit_metrics, share_metrics, workload_metrics
from greenflow.store import BaselineRow, RunStatus, Store

log = structlog.get_logger("greenflow.runner")

#: Busy CPU outside the services and the load generator, as a share of the host's, above
#: which a run's figures get a background-load warning.
BACKGROUND_SHARE = 0.05
#: CPU seconds per second used outside the services during a baseline above which its idle
#: power gets a background-load warning (GreenFlow's own sampling stays far below).
BASELINE_BACKGROUND_CPU = 0.1


def _idle_uncertainty(host: str, watts: float, duration_s: float, method: str) -> Metric:
    """One standard uncertainty of a run's idle-subtracted energy from its idle power's."""
    return Metric(
        "active_energy_uncertainty_joules",
        watts * duration_s,
        "joules",
        method,
        {"host": host, "scope": "host"},
    )


class Observer:
    """What the runner tells the screen; the CLI gives a rich progress display."""

    def start(self, total: int, skipped: int) -> None: ...
    def phase(self, phase: str, detail: str = "") -> None: ...
    def run_started(self, run: RunSpec) -> None: ...
    def run_ended(self, run: RunSpec, status: str, error: str | None) -> None: ...
    def stop(self) -> None: ...


@attrs.define
class Outcome:
    """What one invocation did."""

    experiment_id: int
    finished: list[str] = attrs.field(factory=list)
    failed: list[str] = attrs.field(factory=list)
    aborted: list[str] = attrs.field(factory=list)
    skipped: list[str] = attrs.field(factory=list)
    interrupted: bool = False
    left_up: bool = False


class IdleRun(Workload):
    """A protocol's idle run: MEASURE with the services up and no load at all."""

    Config = attrs.make_class("IdleRunConfig", {})

    def __init__(self, duration_s: float) -> None:
        super().__init__(None)
        self.duration_s = duration_s

    def prepare(self, ctx: RunContext) -> None:
        """Nothing to prepare: no load."""

    def execute(self, ctx: RunContext) -> WorkloadResult:
        ctx.phases.enter(Phase.MEASURE)
        ctx.sleep(self.duration_s)
        ctx.phases.enter(Phase.COOLDOWN)
        return WorkloadResult(units=0.0, unit="run")

    def clean(self, ctx: RunContext) -> None:
        """Nothing to clean."""


def service_configs(plan: Plan, expansion: Expansion) -> list[tuple[PluginSection, Any]]:
    """Every (service section, config) some run uses: a sweep may change a service's
    config, and an adaptive plan's runs are represented by its first probe."""
    per_run = [r.service_configs for r in expansion.runs]
    if expansion.protocol is not None and expansion.bases:
        first = expansion.protocol.next_steps([], plan.experiment.repetitions)[0]
        per_run.append(
            expansion.probe(
                expansion.bases[0], first.value, first.repetition, first.idle
            ).service_configs
        )
    return [
        (section, configs[section.name])
        for configs in per_run
        for section in plan.services
        if section.name in configs
    ]


def required_roles(plan: Plan, expansion: Expansion) -> frozenset[str]:
    """Every role some service of some run needs."""
    roles: set[str] = set()
    for section, config in service_configs(plan, expansion):
        roles |= section.cls.required_roles(config)
    return frozenset(roles)


def check_capabilities(plan: Plan) -> None:
    """A service or workload that needs something the platform cannot run is a plan error."""
    caps: frozenset[Capability] = plan.platform.cls.capabilities
    for section in (*plan.services, plan.workload):
        needs: frozenset[Capability] = section.cls.requires
        if needs and not (needs & caps):
            wants = " or ".join(sorted(c.value for c in needs))
            has = ", ".join(sorted(c.value for c in caps)) or "nothing"
            msg = (
                f"{section.where}: {section.kind} {section.type!r} needs a platform that can "
                f"run {wants}; platform {plan.platform.type!r} provides {has}"
            )
            raise PlanError(msg)


class Runner:
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
        #: Set when services left up by `greenflow up` were attached; they stay up.
        self.reused = False
        self._recorded_pids: set[int] = set()
        # Samples also go to Prometheus/VictoriaMetrics when the plan says so; the local
        # store always keeps them (the writer never raises into the run).
        self.remote = plan.remote_write.writer() if plan.remote_write is not None else None
        # Absolute: services may run their processes from another working directory.
        self.work_root = (plan.output_dir / "work" / plan.experiment.name).resolve()
        self.log_dir = (plan.output_dir / "logs" / plan.experiment.name).resolve()

    # ---------------------------------------------------------------- bookkeeping

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
            pids = [p for ps in wl.processes().values() for p in ps]
            groups[f"loadgen:{self.plan.workload.type}"] = pids
            self._record_loadgen(wl, pids)
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

    def _select_runs(self) -> tuple[list[RunSpec], list[RunSpec]]:
        """Register every run; return (to do, already finished)."""
        stored = {r.run_id: r for r in self.store.get_runs(self.exp_id)}
        todo, done = [], []
        for run in self.expansion.runs:
            self.store.add_run(
                self.exp_id, run.run_id, dict(run.params), run.repetition, run.order, run.group
            )
            row = stored.get(run.run_id)
            if self.fresh and row is not None:
                self.store.reset_run(run.run_id)
                row = None
            if row is not None and row.status == RunStatus.FINISHED:
                done.append(run)
            else:
                if row is not None and row.status != RunStatus.PENDING:
                    self.store.reset_run(run.run_id)  # failed/aborted/running: run again
                todo.append(run)
        return todo, done

    # ---------------------------------------------------------------- lifecycle

    def run(self) -> Outcome:
        if self.expansion.protocol is not None:
            return self._run_adaptive()
        todo, done = self._select_runs()
        outcome = Outcome(self.exp_id, skipped=[r.run_id for r in done])
        self.observer.start(len(todo), len(done))
        if not todo:
            log.info(
                "experiment.nothing_to_do", experiment=self.plan.experiment.name, finished=len(done)
            )
            self.observer.stop()
            return outcome
        with interrupts_as_keyboard_interrupt(self.cancel):
            try:
                self._release_orphans()
                self._acquire()
                self._start_collectors()
                self._provenance()
                self._check_repetitions()
                self._services_down_baseline()
                self._run_groups(todo, outcome)
                self._close_group()
            except KeyboardInterrupt:
                outcome.interrupted = True
                log.warning(
                    "experiment.interrupted",
                    hint="tearing down; Ctrl-C again to "
                    "skip waiting (what is left is recorded for `greenflow down`)",
                )
            finally:
                self.cancel.set()
                self._teardown(outcome)
                self.observer.stop()
        return outcome

    def _run_adaptive(self) -> Outcome:
        """Runs decided by the plan's protocol, probe by probe, for each base point."""
        outcome = Outcome(self.exp_id)
        self.observer.start(0, 0)
        with interrupts_as_keyboard_interrupt(self.cancel):
            try:
                self._release_orphans()
                self._acquire()
                self._start_collectors()
                self._provenance()
                self._check_repetitions()
                self._services_down_baseline()
                self._protocol_loop(outcome)
                self._close_group()
            except KeyboardInterrupt:
                outcome.interrupted = True
                log.warning(
                    "experiment.interrupted",
                    hint="tearing down; finished probes "
                    "are kept and replayed when the plan runs again",
                )
            finally:
                self.cancel.set()
                self._teardown(outcome)
                self.observer.stop()
        return outcome

    def _protocol_loop(self, outcome: Outcome) -> None:
        from greenflow.builtin.protocols import add_run_figures

        protocol = self.expansion.protocol
        repetitions = self.plan.experiment.repetitions
        stored = {r.run_id: r for r in self.store.get_runs(self.exp_id)}
        order = max((r.order for r in stored.values()), default=-1) + 1
        conclusions = []
        for base in self.expansion.bases:
            probes: list[Probe] = []
            run_ids: list[str] = []  # each probe's run, for the conclusion's figures
            while steps := protocol.next_steps(probes, repetitions):
                for step in steps:
                    spec = self.expansion.probe(base, step.value, step.repetition, step.idle)
                    row = stored.get(spec.run_id)
                    if row is not None and self.fresh:
                        self.store.reset_run(spec.run_id)
                        row = None
                    if row is not None and row.status == RunStatus.FINISHED:
                        outcome.skipped.append(spec.run_id)
                        status = RunStatus.FINISHED
                    else:
                        spec = attrs.evolve(spec, order=order)
                        order += 1
                        self.store.add_run(
                            self.exp_id,
                            spec.run_id,
                            dict(spec.params),
                            spec.repetition,
                            spec.order,
                            spec.group,
                        )
                        if row is not None and row.status != RunStatus.PENDING:
                            self.store.reset_run(spec.run_id)
                        self._deploy(spec.group, spec.service_configs, first=spec)
                        if self._unhealthy():
                            self._redeploy(spec.group, spec.service_configs)
                        self._check_collectors()
                        status = self._execute(spec, outcome)
                    fresh_row = self.store.get_run(spec.run_id)
                    probes.append(
                        Probe(
                            step.value,
                            step.repetition,
                            status.value,
                            self.store.result(spec.run_id),
                            fresh_row.error if fresh_row else None,
                        )
                    )
                    run_ids.append(spec.run_id)
            axes = [a.name for a in self.expansion.axes]
            conclusion = {"base": dict(zip(axes, base, strict=True)), **protocol.conclusion(probes)}
            # A saturation curve's points get their run's id and energy per unit of work.
            conclusion = add_run_figures(conclusion, run_ids, self.store.metrics)
            conclusions.append(conclusion)
            log.info(
                "protocol.concluded",
                protocol=self.plan.protocol.type if self.plan.protocol else "",
                **{k: str(v) for k, v in conclusion.items() if k != "curve"},
            )
            self._record_conclusions(conclusions)

    def _record_conclusions(self, conclusions: list[dict[str, Any]]) -> None:
        row = self.store.get_experiment(self.plan.experiment.name)
        record = dict(row.provenance) if row is not None else {}
        record["protocol"] = {
            "type": self.plan.protocol.type if self.plan.protocol else None,
            "conclusions": conclusions,
        }
        self.store.set_provenance(self.exp_id, record)

    def up(self) -> Outcome:
        """Acquire and deploy the first deployment group, and leave it up."""
        outcome = Outcome(self.exp_id)
        groups = self.expansion.groups()
        with interrupts_as_keyboard_interrupt(self.cancel):
            try:
                self._release_orphans()
                self._acquire()
                self._deploy(groups[0][0], groups[0][1][0].service_configs, baseline=False)
                for svc in self.services.values():
                    svc.detach()
                mark_left_up(self.store, self.exp_id)
                outcome.left_up = True
            except KeyboardInterrupt:
                outcome.interrupted = True
            finally:
                if not outcome.left_up:
                    self.cancel.set()
                    self._teardown(outcome)
        return outcome

    def _release_orphans(self) -> None:
        """Before anything is deployed: release what a previous process of this experiment
        left when it died without tearing down (never measure next to its orphans); keep
        what `greenflow up` left up on purpose, which this run reuses."""
        released = release(self.store, self.exp_id, keep_left_up=True)
        if released:
            self._warn(
                None,
                "orphans-released",
                "a previous greenflow process of this experiment ended without tearing "
                f"down; released what it left before deploying: {', '.join(released)}",
            )

    def _acquire(self) -> None:
        plan = self.plan
        self.platform = plan.platform.cls(self.expansion.platform_config)
        self._phase(Phase.ACQUIRE)
        ctx = self._deploy_ctx(
            "platform", "platform", plan.platform.type, self.expansion.platform_config
        )
        ctx.record_state({})
        self.inventory = self.platform.acquire(ctx)
        log.info("platform.acquired", platform=plan.platform.type, hosts=len(self.inventory.hosts))
        reason = self.platform.check_roles(required_roles(plan, self.expansion))
        if reason:
            raise PlanError(f"{plan.path.name} [platform]: {reason}")

    def _start_collectors(self) -> None:
        """Start the plan's collectors, except those that read what the services deploy
        (``start_after_deploy``): :meth:`_deploy` starts them once services are ready."""
        now: list[tuple[Any, Any]] = []
        for section, config in self._collector_configs():
            later = getattr(section.cls, "start_after_deploy", False)
            (self._collectors_after_deploy if later else now).append((section, config))
        self._start(now)

    def _start(self, configs: Iterable[tuple[Any, Any]]) -> None:
        assert self.inventory is not None
        ctx = CollectorContext(self.plan.experiment.name, self.inventory, self.process_groups)
        for section, config in configs:
            collector: Collector = section.cls(section.name, config)
            self._collector_sections[id(collector)] = (section, config)
            call(
                self._collector_step(collector, "start"),
                partial(collector.start, ctx),
                self.plan.experiment.timeout_s("collector_start"),
            )
            self.collectors.append(collector)
            log.info("collector.started", collector=section.name, type=section.type)

    def _collector_step(self, collector: Collector, step: str) -> Step:
        section, _ = self._collector_sections[id(collector)]
        return Step("collector", section.type, section.where, step)

    def _check_collectors(self) -> None:
        """Between runs: a collector that reports itself unhealthy (a dead sampling
        thread) is restarted; one that cannot restart ends the experiment."""
        for i, c in enumerate(list(self.collectors)):
            reason = c.health()
            if not reason:
                continue
            self._warn(
                None, f"collector-restarted:{c.name}", f"collector {c.name!r}: {reason}; restarted"
            )
            section, config = self._collector_sections[id(c)]
            self._step(f"stop collector {c.name}", c.stop)
            fresh: Collector = section.cls(section.name, config)
            self._collector_sections[id(fresh)] = (section, config)
            assert self.inventory is not None
            ctx = CollectorContext(self.plan.experiment.name, self.inventory, self.process_groups)
            call(
                self._collector_step(fresh, "start"),
                partial(fresh.start, ctx),
                self.plan.experiment.timeout_s("collector_start"),
            )
            self.collectors[i] = fresh

    def _collector_configs(self) -> list[tuple[Any, Any]]:
        """The plan's collectors; by default ``rapl`` where readable, else ``model``, plus
        ``process`` for attribution, on a platform running local processes (a plan that
        lists collectors gets exactly those; elsewhere there is no default)."""
        if self.expansion.collector_configs:
            return list(self.expansion.collector_configs)
        from greenflow.plugins import Kind, load

        if Capability.LOCAL_PROCESSES not in self.plan.platform.cls.capabilities:
            # rapl/model/process read the machine GreenFlow runs on, which is not where a
            # cluster's services run: their joules would be the control machine's.
            log.warning(
                "collector.default_none",
                platform=self.plan.platform.type,
                hint="no energy is measured; list [[collectors]] (e.g. type = "
                '"scaphandre" with the scaphandre and prometheus services)',
            )
            return []

        chosen = []
        rapl = load(Kind.COLLECTOR, "rapl", where="default collectors")
        try:
            probe = rapl("rapl", rapl.Config())
            probe.start(
                CollectorContext(self.plan.experiment.name, self.inventory or Inventory([]))
            )
            probe.stop()
            energy = "rapl"
        except CollectorError as exc:
            energy = "model"
            log.info("collector.default", chose="model", reason=str(exc).splitlines()[0])
        for name in (energy, "process"):
            cls = load(Kind.COLLECTOR, name, where="default collectors")
            chosen.append(
                (PluginSection("collector", name, name, "default", {}, cls), cls.Config())
            )
        return chosen

    def _provenance(self) -> None:
        assert self.platform is not None
        record: dict[str, Any] = {
            "host": host_facts(),
            "software": software(),
            "platform": dict(self.platform.describe()),
            "collectors": {c.name: dict(c.describe()) for c in self.collectors},
            "seed": self.plan.experiment.effective_seed,
            "order": [r.run_id for r in self.expansion.runs],
            "axes": {a.name: list(a.values) for a in self.expansion.axes},
        }
        self.store.set_provenance(self.exp_id, record)

    def _run_groups(self, todo: Sequence[RunSpec], outcome: Outcome) -> None:
        todo_ids = {r.run_id for r in todo}
        for group, runs in self.expansion.groups():
            pending = [r for r in runs if r.run_id in todo_ids]
            if not pending:
                continue
            self._deploy(group, pending[0].service_configs, first=pending[0])
            for run in pending:
                if self.cancel.is_set():
                    return
                if self._unhealthy():
                    self._redeploy(group, run.service_configs)
                self._check_collectors()
                status = self._execute(run, outcome)
                if status == RunStatus.FAILED and self.plan.experiment.on_error == "stop":
                    log.warning("experiment.stopped", reason="a run failed and on_error = stop")
                    return
                if self.plan.experiment.cooldown > 0:
                    self._sleep(self.plan.experiment.cooldown)

    def _unhealthy(self) -> str | None:
        for name, svc in self.services.items():
            reason = svc.health()
            if reason:
                return f"service {name!r}: {reason}"
        return None

    def _sleep(self, seconds: float) -> None:
        if self.cancel.wait(seconds):
            raise KeyboardInterrupt

    def _deploy(
        self,
        group: str,
        configs: Mapping[str, Any],
        baseline: bool = True,
        first: RunSpec | None = None,
    ) -> None:
        """Deploy ``group``'s services (closing the previous group first); then, with
        ``baseline``, warm them up at ``first``'s point and measure the opening baseline."""
        assert self.platform is not None and self.inventory is not None
        if self.current_group == group:
            return
        self._close_group()
        self._remove_services()
        self._phase(Phase.DEPLOY)
        live = {(s["kind"], s["name"]): s for s in self.store.live_state(self.exp_id)}
        for section in self.plan.services:
            if section.name not in configs:
                continue  # not targeted by this group's runs
            config = configs[section.name]
            recorded = live.get(("service", section.name))
            svc: Service | None = None
            if recorded is not None:
                if recorded["config"] == converter.unstructure(config):
                    svc = section.cls.attach(section.name, config, recorded["state"])
                if svc is None:
                    call(
                        Step("service", section.type, section.where, "remove"),
                        partial(section.cls.remove_recorded, config, recorded["state"]),
                        self.plan.experiment.timeout_s("remove"),
                    )
                    self.store.clear_state(self.exp_id, "service", section.name)
                else:
                    self.reused = True
                    log.info("service.reused", service=section.name)
            if svc is None:
                svc = section.cls(section.name, config)
                ctx = self._deploy_ctx("service", section.name, section.type, config)
                ctx.work_dir.mkdir(parents=True, exist_ok=True)
                ctx.log_dir.mkdir(parents=True, exist_ok=True)
                ctx.record_state({})
                # Registered before deploy so teardown removes a half-deployed service too.
                self.services[section.name] = svc
                log.info("service.deploying", service=section.name, type=section.type)
                self.observer.phase("deploy", f"deploying {section.name}")
                platform, inventory = self.platform, self.inventory
                call(
                    Step("service", section.type, section.where, "deploy"),
                    partial(svc.deploy, platform, inventory, ctx),
                    self.plan.experiment.timeout_s("deploy"),
                )
            self.services[section.name] = svc
        ready_timeout = float(self.plan.experiment.ready_timeout)
        for name, svc in self.services.items():
            self.observer.phase("deploy", f"waiting for {name}")
            call(
                self._service_step(name, "wait_ready"),
                partial(svc.wait_ready, ready_timeout),
                self.plan.experiment.timeout_s("wait_ready"),
            )
            log.info("service.ready", service=name, endpoints=dict(svc.endpoints()))
        if self._collectors_after_deploy:
            later, self._collectors_after_deploy = self._collectors_after_deploy, []
            self._start(later)
            self._provenance()  # again, now with their descriptions
        self.current_group = group
        if baseline:
            if first is not None and not first.idle:
                self._warm_up(first)
            self._baseline("opening", group)

    def _service_step(self, name: str, step: str) -> Step:
        section = next(s for s in self.plan.services if s.name == name)
        return Step("service", section.type, section.where, step)

    def _redeploy(self, group: str, configs: Mapping[str, Any]) -> None:
        """Replace a deployment that died; the group's idle baseline still holds."""
        log.warning("service.redeploy", reason=self._unhealthy())
        self.current_group = None
        self._deploy(group, configs, baseline=False)

    # ---------------------------------------------------------------- idle baselines

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

    def _warn(self, run_id: str | None, code: str, message: str) -> None:
        """A warning on the screen, in the log and in the store (results and report)."""
        log.warning("experiment.warning", code=code, run=run_id, message=message)
        self.store.add_warning(self.exp_id, run_id, code, message)

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
                    run_id, [_idle_uncertainty(host, u, duration, opening.method)]
                )

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

    def _execute(self, run: RunSpec, outcome: Outcome) -> RunStatus:
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

    def _idle_uncertainties(self, measure: Window) -> list[Metric]:
        """Each host's idle uncertainty over ``measure`` from the opening baseline alone;
        the closing baseline replaces it with one that includes the drift."""
        from greenflow.measure.baseline import idle_uncertainty_watts

        return [
            _idle_uncertainty(host, idle_uncertainty_watts(b, None), measure.duration_s, b.method)
            for host, b in self._opening.items()
        ]

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

    # ---------------------------------------------------------------- teardown

    def _teardown(self, outcome: Outcome) -> None:
        if self.reused and not outcome.interrupted and self.services and not self._unhealthy():
            outcome.left_up = True
            for svc in self.services.values():
                svc.detach()
            log.info(
                "experiment.left_up",
                services=sorted(self.services),
                hint="`greenflow down` ends it",
            )
            self._stop_collectors()
            self._close_remote()
            return
        self._remove_services()
        self._stop_collectors()
        self._release()
        self._close_remote()

    def _close_remote(self) -> None:
        if self.remote is not None:
            self._step("flush remote write", self.remote.close)
            self.remote = None

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

    def _remove_services(self) -> None:
        if not self.services:
            return
        self._record("the remove phase", partial(self._phase, Phase.REMOVE))
        timeout = self.plan.experiment.timeout_s("remove")
        for name, svc in reversed(list(self.services.items())):
            step = self._service_step(name, "remove")
            if self._step(f"remove service {name}", partial(call, step, svc.remove, timeout)):
                self._record(
                    f"that service {name} is removed",
                    partial(self.store.clear_state, self.exp_id, "service", name),
                )
        self.services.clear()
        self.current_group = None

    def _stop_collectors(self) -> None:
        timeout = self.plan.experiment.timeout_s("collector_stop")
        for c in self.collectors:
            step = self._collector_step(c, "stop")
            self._step(f"stop collector {c.name}", partial(call, step, c.stop, timeout))
        self.collectors.clear()

    def _release(self) -> None:
        if self.platform is None:
            return
        self._record("the release phase", partial(self._phase, Phase.RELEASE))
        if self._step("release platform", self.platform.release):
            self._record(
                "that the platform is released",
                partial(self.store.clear_state, self.exp_id, "platform", "platform"),
            )
        self._record("the end phase", partial(self._phase, Phase.END))
        self.platform = None

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


__all__ = ["Observer", "Outcome", "Runner", "check_capabilities", "required_roles"]
