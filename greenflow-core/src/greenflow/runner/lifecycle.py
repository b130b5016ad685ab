"""The run lifecycle (DESIGN.md §5) with guaranteed teardown: the :class:`Runner`.

acquire platform → start collectors → for each deployment group: deploy services →
(the first time: start the collectors that read what services deploy) → baseline → runs
(prepare → warm-up → MEASURE → cool-down → clean) → remove services → stop collectors →
release platform.

Teardown runs in ``finally`` and on SIGINT/SIGTERM/SIGHUP (turned into KeyboardInterrupt).
Everything that could leak is recorded in the store as it is created, so that
``greenflow down`` can release it after a crash; a run cut short is stored ``aborted``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from functools import partial
from typing import Any

import attrs
import structlog

from greenflow.api import (
    Capability,
    Collector,
    CollectorContext,
    Forwarding,
    Inventory,
    Phase,
    Probe,
    Service,
)
from greenflow.errors import CollectorError, OutOfTime, PlanError
from greenflow.plan import Expansion, Plan, RunSpec
from greenflow.plan.converter import converter
from greenflow.plan.model import PluginSection
from greenflow.runner.execution import RunExecution
from greenflow.runner.observer import Outcome
from greenflow.runner.provenance import host_facts, software
from greenflow.runner.recorded import mark_left_up, release
from greenflow.runner.signals import interrupts_as_keyboard_interrupt
from greenflow.runner.steps import Step, call
from greenflow.store import RunStatus

log = structlog.get_logger("greenflow.runner")


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


class Runner(RunExecution):
    """One experiment, start to teardown: what `greenflow run` and `greenflow up` drive."""

    # ---------------------------------------------------------------- bookkeeping

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
            except OutOfTime as exc:
                self._out_of_time(outcome, exc)
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
            except OutOfTime as exc:
                self._out_of_time(outcome, exc)
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

    @staticmethod
    def _out_of_time(outcome: Outcome, exc: OutOfTime) -> None:
        outcome.interrupted = True
        outcome.stopped = str(exc)
        log.warning("experiment.out_of_time", reason=str(exc), hint="tearing down")

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
        ctx = self._collector_context()
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
            ctx = self._collector_context()
            call(
                self._collector_step(fresh, "start"),
                partial(fresh.start, ctx),
                self.plan.experiment.timeout_s("collector_start"),
            )
            self.collectors[i] = fresh

    def _collector_context(self) -> CollectorContext:
        assert self.inventory is not None  # the platform was acquired
        platform = self.platform
        reach = platform.reach if isinstance(platform, Forwarding) else (lambda url: url)
        return CollectorContext(
            self.plan.experiment.name, self.inventory, self.process_groups, reach=reach
        )

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

    def _redeploy(self, group: str, configs: Mapping[str, Any]) -> None:
        """Replace a deployment that died; the group's idle baseline still holds."""
        log.warning("service.redeploy", reason=self._unhealthy())
        self.current_group = None
        self._deploy(group, configs, baseline=False)

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


__all__ = ["Runner", "check_capabilities", "required_roles", "service_configs"]
