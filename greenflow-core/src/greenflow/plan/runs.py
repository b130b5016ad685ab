"""From a plan to its list of runs: sweep points × repetitions, shuffled with the seed.

A run's identity is a hash of the experiment name, its resolved parameters (every key of
the workload and targeted service tables after the sweep is applied), its repetition, and
the versions of the plugins involved, so re-running the same plan finds the runs it
already finished. With a ``[protocol]``, the protocol's axis is set run by run
(:meth:`Expansion.probe`) for each point of the other axes (:attr:`Expansion.bases`).
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Mapping
from functools import cache
from importlib import metadata
from typing import Any

import attrs

from greenflow.plan.converter import converter
from greenflow.plan.model import Plan, PluginSection
from greenflow.plan.structure import PlanErrors, structure
from greenflow.plan.sweep import Axis, apply_point, find_axes, product


@attrs.frozen
class RunSpec:
    run_id: str
    order: int
    repetition: int
    #: The swept values of this run, by axis name (what a user reads in a table).
    params: Mapping[str, Any]
    #: Deployment group: runs with the same service configuration share a deployment.
    group: str
    workload_config: Any
    service_configs: Mapping[str, Any]
    #: Everything that identifies the run, as stored.
    resolved: Mapping[str, Any]
    #: A protocol's idle run: services up, no load, the workload is not driven.
    idle: bool = False


@cache
def plugin_version(cls: type) -> str:
    """Version of the distribution that provides ``cls`` ("0" when not installed)."""
    top = cls.__module__.split(".")[0]
    for dist in metadata.packages_distributions().get(top, []):
        try:
            return f"{dist} {metadata.version(dist)}"
        except metadata.PackageNotFoundError:
            continue
    return f"{top} 0"


def _hash(data: Any) -> str:
    text = json.dumps(data, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class _Builder:
    """Structures one point of the plan into a RunSpec, collecting problems."""

    def __init__(self, plan: Plan, wl_axes: list[Axis], svc_axes: list[Axis]) -> None:
        self.plan = plan
        self.wl_axes = wl_axes
        self.svc_axes = svc_axes
        self.problems: list[str] = []
        self.versions = {
            "platform": plugin_version(plan.platform.cls),
            "workload": plugin_version(plan.workload.cls),
            **{f"service:{s.name}": plugin_version(s.cls) for s in plan.services},
        }
        if plan.protocol is not None:
            self.versions["protocol"] = plugin_version(plan.protocol.cls)

    def safe(self, fn: Any, *a: Any, **kw: Any) -> Any:
        try:
            return fn(*a, **kw)
        except PlanErrors as exc:
            for p in exc.problems:
                if p not in self.problems:
                    self.problems.append(p)
            return None

    def spec(
        self,
        values: tuple[Any, ...],
        repetition: int,
        extra: Mapping[str, Any] | None = None,
        idle: bool = False,
    ) -> RunSpec | None:
        """The run for axis ``values`` (workload axes first), with ``extra`` workload keys
        set (a protocol's axis), or None when the point is invalid (problems recorded)."""
        plan, path = self.plan, self.plan.path
        n_wl = len(self.wl_axes)
        wl_point = {a.path: v for a, v in zip(self.wl_axes, values[:n_wl], strict=True)}
        # A protocol axis may be dotted to reach into a table: "params.load".
        wl_point.update({tuple(k.split(".")): v for k, v in (extra or {}).items()})
        wl_raw = apply_point(plan.workload.raw, wl_point)
        wl_config = self.safe(
            structure, wl_raw, plan.workload.cls.Config, path=path, section="workload"
        )
        if wl_config is None:
            return None
        workload = plan.workload.cls(wl_config)
        targets = set(workload.targets([s.name for s in plan.services])) | {
            s.name for s in plan.services if s.cls.measurement
        }
        svc_configs: dict[str, Any] = {}
        svc_resolved: dict[str, Any] = {}
        for svc in plan.services:
            if svc.name not in targets:
                continue  # a run deploys only the services it targets
            sp = {
                a.path[1:]: v
                for a, v in zip(self.svc_axes, values[n_wl:], strict=True)
                if a.path[0] == svc.name
            }
            raw = apply_point(svc.raw, sp)
            svc_configs[svc.name] = self.safe(
                structure, raw, svc.cls.Config, path=path, section=f"services: {svc.name}"
            )
            svc_resolved[svc.name] = {"type": svc.type, **raw}
        if any(c is None for c in svc_configs.values()):
            return None
        reason = workload.validate(svc_configs)
        if reason:
            problem = f"{path.name} [workload]: {reason}"
            if problem not in self.problems:
                self.problems.append(problem)
            return None
        axes = self.wl_axes + self.svc_axes
        # Axes of services this run does not target don't change it: show and count it once.
        params = {
            a.name: v
            for i, (a, v) in enumerate(zip(axes, values, strict=True))
            if i < n_wl or a.path[0] in targets
        }
        params.update(extra or {})
        if idle:
            params = {**params, "protocol": "idle"}
        resolved = {
            # The name too: one results directory may hold several experiments.
            "experiment": plan.experiment.name,
            "platform": {"type": plan.platform.type},
            "workload": {"type": plan.workload.type, **converter.unstructure(wl_config)},
            "services": {n: converter.unstructure(c) for n, c in svc_configs.items()},
            "versions": {
                k: v
                for k, v in self.versions.items()
                if not k.startswith("service:") or k[8:] in targets
            },
            "repetition": repetition,
            **({"idle": True} if idle else {}),
        }
        return RunSpec(
            _hash(resolved),
            0,
            repetition,
            params,
            _hash(svc_resolved),
            wl_config,
            svc_configs,
            resolved,
            idle,
        )


@attrs.frozen
class Expansion:
    axes: tuple[Axis, ...]
    runs: tuple[RunSpec, ...]
    platform_config: Any
    collector_configs: tuple[tuple[PluginSection, Any], ...]
    #: With a protocol: the protocol instance and the points of the other axes.
    protocol: Any = None
    bases: tuple[tuple[Any, ...], ...] = ()
    builder: _Builder | None = attrs.field(default=None, repr=False, eq=False)

    def groups(self) -> list[tuple[str, list[RunSpec]]]:
        """Runs by deployment group, groups in order of their first run."""
        out: dict[str, list[RunSpec]] = {}
        for run in self.runs:
            out.setdefault(run.group, []).append(run)
        return list(out.items())

    def probe(
        self, base: tuple[Any, ...], value: Any, repetition: int, idle: bool = False
    ) -> RunSpec:
        """The run of a protocol step at ``base`` (values of the other axes)."""
        assert self.builder is not None, "probe() needs an expansion made with a protocol"
        axis = self.protocol.axis
        extra = {axis: value} if axis is not None and not idle else None
        spec = self.builder.spec(base, repetition, extra, idle=idle)
        if spec is None:
            raise PlanErrors(self.builder.plan.path, self.builder.problems)
        return spec


def expand(plan: Plan) -> Expansion:
    path = plan.path
    wl_axes = find_axes(plan.workload.raw, plan.workload.cls.Config)
    svc_axes = [
        Axis(ax.name, (svc.name, *ax.path), ax.values)
        for svc in plan.services
        for ax in find_axes(svc.raw, svc.cls.Config, prefix=f"{svc.name}.")
    ]
    builder = _Builder(plan, wl_axes, svc_axes)
    platform_config = builder.safe(
        structure, plan.platform.raw, plan.platform.cls.Config, path=path, section="platform"
    )
    collector_configs = tuple(
        (
            c,
            builder.safe(
                structure, c.raw, c.cls.Config, path=path, section=c.where.split("[")[1][:-1]
            ),
        )
        for c in plan.collectors
    )
    protocol = None
    if plan.protocol is not None:
        pconfig = builder.safe(
            structure, plan.protocol.raw, plan.protocol.cls.Config, path=path, section="protocol"
        )
        if pconfig is not None:
            protocol = plan.protocol.cls(pconfig)
            axis = protocol.axis
            if axis is not None and any(a.path == tuple(axis.split(".")) for a in wl_axes):
                builder.problems.append(
                    f"{path.name} [workload] {axis}: the {plan.protocol.type} protocol sets "
                    f"{axis} run by run; give it one value or none, not a list"
                )
    axes = wl_axes + svc_axes
    for ax in axes:
        if not ax.values:
            section = "workload" if ax in wl_axes else f"services: {ax.path[0]}"
            builder.problems.append(
                f"{path.name} [{section}] {ax.path[-1]}: empty list — "
                "a sweep needs at least one value"
            )
    if builder.problems:
        raise PlanErrors(path, builder.problems)

    points = list(product(axes))
    if protocol is not None:
        # Structure every base point with the protocol's first step, so that bad values
        # surface at validation; the runs themselves are decided while running.
        first = protocol.next_steps([], plan.experiment.repetitions)
        for values in points:
            for step in first[:1]:
                extra = {protocol.axis: step.value} if protocol.axis and not step.idle else None
                builder.spec(values, 0, extra, idle=step.idle)
        if builder.problems:
            raise PlanErrors(path, builder.problems)
        return Expansion(
            tuple(axes), (), platform_config, collector_configs, protocol, tuple(points), builder
        )

    runs: list[RunSpec] = []
    seen: set[str] = set()
    for rep in range(plan.experiment.repetitions):
        for values in points:
            spec = builder.spec(values, rep)
            if spec is not None and spec.run_id not in seen:
                seen.add(spec.run_id)
                runs.append(spec)
    if builder.problems:
        raise PlanErrors(path, builder.problems)

    rng = random.Random(plan.experiment.effective_seed)
    # Shuffle the deployment groups and the runs inside each, so that each deployment
    # happens once while the order of runs still varies with the seed.
    by_group: dict[str, list[RunSpec]] = {}
    for r in runs:
        by_group.setdefault(r.group, []).append(r)
    group_keys = list(by_group)
    if plan.experiment.shuffle:
        rng.shuffle(group_keys)
        for key in group_keys:
            rng.shuffle(by_group[key])
    ordered = [
        attrs.evolve(r, order=i)
        for i, r in enumerate(r for key in group_keys for r in by_group[key])
    ]
    return Expansion(tuple(axes), tuple(ordered), platform_config, collector_configs)
