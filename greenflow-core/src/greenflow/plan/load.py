"""Reading a plan: TOML → sections → plugin Config classes, with errors that name the
file, the TOML path, what was expected and what was found."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from greenflow.errors import GreenFlowError, PlanError
from greenflow.plan.model import ExperimentSection, Plan, PluginSection
from greenflow.plan.structure import PlanErrors, structure, where_in_plan

_TOP_LEVEL = {
    "experiment": "a table",
    "platform": "a table",
    "services": "an array of tables ([[services]])",
    "workload": "a table",
    "collectors": "an array of tables ([[collectors]])",
    "protocol": "a table",
    "remote_write": "a table",
}


def read_toml(path: Path) -> tuple[str, dict[str, Any]]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PlanError(f"{path}: no such plan file") from None
    except OSError as exc:
        raise PlanError(f"{path}: cannot read the plan: {exc.strerror}") from None
    try:
        return text, tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        msg = f"{path}: not valid TOML: {exc}. Check quotes, brackets and '=' on that line."
        raise PlanError(msg) from None


def _plugin_section(
    path: Path, kind: str, section: str, table: Any, default_name: str | None = None
) -> PluginSection:
    from greenflow.plugins import Kind, load

    if not isinstance(table, Mapping):
        raise PlanError(
            f"{where_in_plan(path, section)}: expected a table, got {type(table).__name__}"
        )
    raw = dict(table)
    type_ = raw.pop("type", None)
    if type_ is None:
        raise PlanError(
            f"{where_in_plan(path, section, 'type')}: required key missing; say which "
            f'{kind} to use, e.g. type = "..." (see `greenflow plugins`)'
        )
    if not isinstance(type_, str):
        raise PlanError(f"{where_in_plan(path, section, 'type')}: expected a string, got {type_!r}")
    name = raw.pop("name", None) if kind in ("service", "collector") else None
    if name is not None and not isinstance(name, str):
        raise PlanError(f"{where_in_plan(path, section, 'name')}: expected a string, got {name!r}")
    cls = load(Kind(kind), type_, where=where_in_plan(path, section))
    return PluginSection(
        kind=kind,
        type=type_,
        name=name or default_name or type_,
        where=where_in_plan(path, section),
        raw=raw,
        cls=cls,
    )


def load_plan(path: str | Path) -> Plan:
    """Read and check a plan; every sweep point is structured, so errors surface here."""
    path = Path(path)
    text, data = read_toml(path)
    problems: list[str] = []

    unknown = sorted(set(data) - set(_TOP_LEVEL))
    if unknown:
        valid = ", ".join(f"[{k}]" for k in _TOP_LEVEL)
        problems.append(f"{path.name}: unknown section(s) {', '.join(unknown)}; valid: {valid}")
    for key in ("experiment", "platform", "workload"):
        if key not in data:
            problems.append(f"{path.name}: missing section [{key}]")
    if problems:
        raise PlanErrors(path, problems)
    for key in ("experiment", "platform", "workload", "protocol", "remote_write"):
        if key in data and not isinstance(data[key], Mapping):
            problems.append(f"{path.name} [{key}]: expected {_TOP_LEVEL[key]}")
    for key in ("services", "collectors"):
        if key in data and not (
            isinstance(data[key], list) and all(isinstance(t, Mapping) for t in data[key])
        ):
            problems.append(f"{path.name} [{key}]: expected {_TOP_LEVEL[key]}")
    if problems:
        raise PlanErrors(path, problems)

    experiment: ExperimentSection | None = None
    try:
        experiment = structure(
            data["experiment"], ExperimentSection, path=path, section="experiment"
        )
    except PlanErrors as exc:
        problems += exc.problems

    def collect(fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except PlanErrors as exc:
            problems.extend(exc.problems)
        except GreenFlowError as exc:
            problems.append(str(exc))
        return None

    platform = collect(_plugin_section, path, "platform", "platform", data["platform"])
    services = [
        collect(_plugin_section, path, "service", f"services.{i}", t)
        for i, t in enumerate(data.get("services", []))
    ]
    workload = collect(_plugin_section, path, "workload", "workload", data["workload"])
    collectors = [
        collect(_plugin_section, path, "collector", f"collectors.{i}", t)
        for i, t in enumerate(data.get("collectors", []))
    ]
    protocol = (
        collect(_plugin_section, path, "protocol", "protocol", data["protocol"])
        if "protocol" in data
        else None
    )
    remote_write = None
    if "remote_write" in data:
        from greenflow.store.remote_write import RemoteWriteConfig

        remote_write = collect(
            lambda: structure(
                data["remote_write"], RemoteWriteConfig, path=path, section="remote_write"
            )
        )
    names = [s.name for s in services if s is not None]
    for dup in sorted({n for n in names if names.count(n) > 1}):
        problems.append(
            f"{path.name} [services]: two services are named {dup!r}; give each a distinct `name`"
        )
    if problems or experiment is None or platform is None or workload is None:
        raise PlanErrors(path, problems)
    plan = Plan(
        path=path,
        text=text,
        experiment=experiment,
        platform=platform,
        services=tuple(services),
        workload=workload,
        collectors=tuple(collectors),
        protocol=protocol,
        remote_write=remote_write,
    )
    from greenflow.plan.runs import expand

    expand(plan)  # structures every point: bad values surface at validation, not mid-run
    return plan
