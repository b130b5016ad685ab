"""From a plan to its list of runs: sweep points × repetitions, shuffled with the seed.

A run's identity is a hash of its resolved parameters (every key of the workload and
service tables after the sweep is applied), its repetition, and the versions of the
plugins involved, so re-running the same plan finds the runs it already finished.
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
from greenflow.plan.load import PlanErrors, structure
from greenflow.plan.model import Plan, PluginSection
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


@attrs.frozen
class Expansion:
    axes: tuple[Axis, ...]
    runs: tuple[RunSpec, ...]
    platform_config: Any
    collector_configs: tuple[tuple[PluginSection, Any], ...]

    def groups(self) -> list[tuple[str, list[RunSpec]]]:
        """Runs by deployment group, groups in order of their first run."""
        out: dict[str, list[RunSpec]] = {}
        for run in self.runs:
            out.setdefault(run.group, []).append(run)
        return list(out.items())


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


def expand(plan: Plan) -> Expansion:
    path = plan.path
    problems: list[str] = []

    def safe(fn: Any, *a: Any, **kw: Any) -> Any:
        try:
            return fn(*a, **kw)
        except PlanErrors as exc:
            for p in exc.problems:
                if p not in problems:
                    problems.append(p)
            return None

    platform_config = safe(structure, plan.platform.raw, plan.platform.cls.Config, path=path,
                           section="platform")
    collector_configs = tuple(
        (c, safe(structure, c.raw, c.cls.Config, path=path, section=c.where.split("[")[1][:-1]))
        for c in plan.collectors
    )

    wl_axes = find_axes(plan.workload.raw, plan.workload.cls.Config)
    svc_axes = [
        Axis(ax.name, (svc.name, *ax.path), ax.values)
        for svc in plan.services
        for ax in find_axes(svc.raw, svc.cls.Config, prefix=f"{svc.name}.")
    ]
    axes = wl_axes + svc_axes
    for ax in axes:
        if not ax.values:
            section = "workload" if ax in wl_axes else f"services: {ax.path[0]}"
            problems.append(f"{path.name} [{section}] {'.'.join(ax.path[-1:])}: empty list — "
                            "a sweep needs at least one value")
    if problems:
        raise PlanErrors(path, problems)

    versions = {
        "platform": plugin_version(plan.platform.cls),
        "workload": plugin_version(plan.workload.cls),
        **{f"service:{s.name}": plugin_version(s.cls) for s in plan.services},
    }
    points = list(product(axes))
    specs: list[tuple[dict[str, Any], int, str, Any, dict[str, Any], dict[str, Any]]] = []
    n_wl = len(wl_axes)
    seen: set[str] = set()
    for values in points:
        wl_point = {a.path: v for a, v in zip(wl_axes, values[:n_wl], strict=True)}
        wl_raw = apply_point(plan.workload.raw, wl_point)
        wl_config = safe(structure, wl_raw, plan.workload.cls.Config, path=path, section="workload")
        if wl_config is None:
            continue
        workload = plan.workload.cls(wl_config)
        targets = set(workload.targets([s.name for s in plan.services]))
        svc_configs: dict[str, Any] = {}
        svc_resolved: dict[str, Any] = {}
        for svc in plan.services:
            if svc.name not in targets:
                continue  # a run deploys only the services it targets
            sp = {a.path[1:]: v for a, v in zip(axes[n_wl:], values[n_wl:], strict=True)
                  if a.path[0] == svc.name}
            raw = apply_point(svc.raw, sp)
            svc_configs[svc.name] = safe(structure, raw, svc.cls.Config, path=path,
                                         section=f"services: {svc.name}")
            svc_resolved[svc.name] = {"type": svc.type, **raw}
        if any(c is None for c in svc_configs.values()):
            continue
        reason = workload.validate(svc_configs)
        if reason:
            problem = f"{path.name} [workload]: {reason}"
            if problem not in problems:
                problems.append(problem)
            continue
        # Axes of services this run does not target don't change it: show and count it once.
        relevant = [i for i, a in enumerate(axes) if i < n_wl or a.path[0] in targets]
        params = {axes[i].name: values[i] for i in relevant}
        group = _hash(svc_resolved)
        resolved = {
            # The name too: one results directory may hold several experiments.
            "experiment": plan.experiment.name,
            "platform": {"type": plan.platform.type},
            "workload": {"type": plan.workload.type, **converter.unstructure(wl_config)},
            "services": {n: converter.unstructure(c) for n, c in svc_configs.items()},
            "versions": {k: v for k, v in versions.items()
                         if not k.startswith("service:") or k[8:] in targets},
        }
        key = _hash(resolved)
        if key in seen:
            continue
        seen.add(key)
        specs.append((params, 0, group, wl_config, svc_configs, resolved))
    if problems:
        raise PlanErrors(path, problems)

    runs: list[RunSpec] = []
    for rep in range(plan.experiment.repetitions):
        for params, _, group, wl_config, svc_configs, resolved in specs:
            run_id = _hash({**resolved, "repetition": rep})
            runs.append(RunSpec(run_id, 0, rep, params, group, wl_config, svc_configs,
                                {**resolved, "repetition": rep}))

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
    ordered = [attrs.evolve(r, order=i) for i, r in
               enumerate(r for key in group_keys for r in by_group[key])]
    return Expansion(tuple(axes), tuple(ordered), platform_config, collector_configs)
