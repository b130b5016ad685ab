"""Find plugins through entry points and load them through stevedore.

Discovery reads ``importlib.metadata.entry_points(group=...)`` itself: stevedore's cache
keeps (name, value, group) and drops the distribution, and it folds identical
registrations together, so neither the ``greenflow-kafka 0.1.0`` a message names nor a
name registered by two distributions would be visible through it. Loading goes through a
stevedore manager handed exactly those entry points, so failures are reported the way
stevedore reports them and nothing else in the group gets imported.
"""

from __future__ import annotations

import difflib
import importlib.metadata
import inspect
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Literal, overload

import attrs
from stevedore import ExtensionManager

from greenflow.errors import PluginError
from greenflow.plugins.kinds import Kind

if TYPE_CHECKING:
    from greenflow.api import Collector, Platform, Service, Workload

Status = Literal["ok", "failed"]

#: Where a name is conventionally provided by a first-party distribution, for the hint in
#: "not installed" messages. Names outside this map get a hint at `greenflow plugins`.
_KNOWN_DISTRIBUTIONS: Mapping[str, str] = {
    "kubernetes": "greenflow-kubernetes",
    "scaphandre": "greenflow-kubernetes",
    # The prometheus *collector* is core's; only the service can be missing.
    "prometheus": "greenflow-kubernetes",
    "k3s": "greenflow-k3s",
    "g5k": "greenflow-g5k",
    "kwollect": "greenflow-g5k",
    "kafka": "greenflow-kafka",
    "redpanda": "greenflow-redpanda",
    "theodolite": "greenflow-theodolite",
}


@attrs.frozen
class PluginInfo:
    """One registration of a plugin and whether it loads.

    ``value`` is the entry point's ``module:attr``; ``distribution`` and ``version``
    come from the distribution that declared the entry point (None when unknown).
    ``error`` says why a ``failed`` plugin cannot be used.
    """

    name: str
    kind: Kind
    group: str
    distribution: str | None
    version: str | None
    value: str
    status: Status
    error: str | None = None

    @property
    def source(self) -> str:
        """``greenflow-core 0.1.0``, for messages."""
        return _source(self.distribution, self.version)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready mapping (what ``greenflow plugins --json`` prints per plugin)."""
        return {
            "name": self.name,
            "kind": self.kind.value,
            "group": self.group,
            "distribution": self.distribution,
            "version": self.version,
            "value": self.value,
            "status": self.status,
            "error": self.error,
        }


def _source(distribution: str | None, version: str | None) -> str:
    if distribution is None:
        return "unknown distribution"
    return f"{distribution} {version}" if version else distribution


@attrs.frozen
class _Registration:
    """An entry point and the distribution that declared it."""

    kind: Kind
    entry_point: importlib.metadata.EntryPoint
    distribution: str | None
    version: str | None

    @property
    def name(self) -> str:
        return self.entry_point.name

    @property
    def source(self) -> str:
        return _source(self.distribution, self.version)

    @property
    def declaration(self) -> str:
        return f'{self.name} = "{self.entry_point.value}" in {self.kind.group}'

    def info(self, status: Status, error: str | None = None) -> PluginInfo:
        return PluginInfo(
            name=self.name,
            kind=self.kind,
            group=self.kind.group,
            distribution=self.distribution,
            version=self.version,
            value=self.entry_point.value,
            status=status,
            error=error,
        )


@attrs.frozen
class _Outcome:
    """What importing one registration gave: the class, or why it cannot be used.

    ``import_failed`` separates "the module does not import" (the user's environment)
    from "it imports but is not a usable plugin class" (a bug in the plugin).
    """

    plugin: type[Any] | None
    problem: str | None = None
    import_failed: bool = False
    exception: BaseException | None = None


def _registration(kind: Kind, ep: importlib.metadata.EntryPoint) -> _Registration:
    # Entry points from importlib.metadata carry `.dist`; ones built by hand do not.
    dist = getattr(ep, "dist", None)
    if dist is None:
        return _Registration(kind, ep, None, None)
    return _Registration(kind, ep, dist.name, dist.version)


class _GivenEntryPoints(ExtensionManager[Any]):
    """A stevedore manager over the entry points we hand it, instead of its own cache."""

    def __init__(
        self,
        group: str,
        entry_points: Iterable[importlib.metadata.EntryPoint],
        on_failure: Callable[
            [ExtensionManager[Any], importlib.metadata.EntryPoint, BaseException], None
        ],
    ) -> None:
        self._given = list(entry_points)
        super().__init__(group, invoke_on_load=False, on_load_failure_callback=on_failure)

    def list_entry_points(self) -> list[importlib.metadata.EntryPoint]:
        return self._given


def _import(reg: _Registration) -> _Outcome:
    failures: list[BaseException] = []

    def on_failure(
        _manager: ExtensionManager[Any], _ep: importlib.metadata.EntryPoint, exc: BaseException
    ) -> None:
        failures.append(exc)

    try:
        manager = _GivenEntryPoints(reg.kind.group, [reg.entry_point], on_failure)
    # stevedore re-raises AssertionError from a plugin's import; one bad plugin must not
    # take `greenflow plugins` down with it.
    except Exception as exc:
        failures.append(exc)
    if failures:
        first = failures[0]
        return _Outcome(
            None, f"{type(first).__name__}: {first}", import_failed=True, exception=first
        )
    obj = manager.extensions[0].plugin
    abc = reg.kind.abc
    target = reg.entry_point.value
    if not inspect.isclass(obj):
        return _Outcome(
            None,
            f"{target} is {_describe_object(obj)}, not a subclass of greenflow.api.{abc.__name__}",
        )
    if not issubclass(obj, abc):
        return _Outcome(None, f"{target} is not a subclass of greenflow.api.{abc.__name__}")
    if inspect.isabstract(obj):
        missing = ", ".join(sorted(getattr(obj, "__abstractmethods__", ())))
        return _Outcome(None, f"{target} does not implement the abstract method(s) {missing}")
    config = getattr(obj, "Config", None)
    if not (inspect.isclass(config) and attrs.has(config)):
        return _Outcome(
            None,
            f"{target} has no Config attrs class (set `Config = YourConfig`, a frozen attrs class)",
        )
    return _Outcome(obj)


def _describe_object(obj: object) -> str:
    if inspect.isfunction(obj) or inspect.isbuiltin(obj):
        return "a function"
    if inspect.ismodule(obj):
        return "a module"
    return f"a {type(obj).__name__} instance"


class _Registry:
    """Registrations and import outcomes for one entry-point source, cached."""

    def __init__(self, entry_points: Iterable[importlib.metadata.EntryPoint] | None) -> None:
        self._given = None if entry_points is None else list(entry_points)
        self._lock = threading.RLock()
        self._registrations: dict[Kind, tuple[_Registration, ...]] = {}
        self._outcomes: dict[_Registration, _Outcome] = {}

    def registrations(self, kind: Kind) -> tuple[_Registration, ...]:
        with self._lock:
            if kind not in self._registrations:
                if self._given is None:
                    eps: Iterable[importlib.metadata.EntryPoint] = importlib.metadata.entry_points(
                        group=kind.group
                    )
                else:
                    eps = [ep for ep in self._given if ep.group == kind.group]
                regs = (_registration(kind, ep) for ep in eps)
                self._registrations[kind] = tuple(
                    sorted(regs, key=lambda r: (r.name, r.distribution or ""))
                )
            return self._registrations[kind]

    def installed_version(self, distribution: str) -> str | None:
        """The version of ``distribution`` if this source has it installed."""
        if self._given is not None:
            dists = (getattr(ep, "dist", None) for ep in self._given)
            return next(
                (d.version for d in dists if d is not None and d.name == distribution), None
            )
        try:
            return importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            return None

    def outcome(self, reg: _Registration) -> _Outcome:
        with self._lock:
            if reg not in self._outcomes:
                self._outcomes[reg] = _import(reg)
            return self._outcomes[reg]

    def available(self, kind: Kind) -> list[PluginInfo]:
        infos = []
        regs = self.registrations(kind)
        for reg in regs:
            rivals = [r for r in regs if r.name == reg.name]
            if len(rivals) > 1:
                infos.append(reg.info("failed", _duplicate_problem(kind, rivals)))
                continue
            outcome = self.outcome(reg)
            if outcome.plugin is None:
                infos.append(reg.info("failed", outcome.problem))
            else:
                infos.append(reg.info("ok"))
        return infos

    def load(self, kind: Kind, name: str, where: str) -> type[Any]:
        regs = self.registrations(kind)
        matches = [r for r in regs if r.name == name]
        if not matches:
            raise PluginError(_missing_message(kind, name, where, regs, self.installed_version))
        if len(matches) > 1:
            msg = (
                f'{where}: type "{name}" is {_duplicate_problem(kind, matches)}\n'
                f"  Hint: keep one of them: pip uninstall {' or '.join(r.distribution or '?' for r in matches)}"
            )
            raise PluginError(msg)
        (reg,) = matches
        outcome = self.outcome(reg)
        if outcome.plugin is not None:
            return outcome.plugin
        if outcome.import_failed:
            dist = reg.distribution or "the distribution that provides it"
            msg = (
                f'{where}: type "{name}" is installed by {reg.source} but fails to import: {outcome.problem}\n'
                f"  Entry point: {reg.declaration}\n"
                f"  Hint: install what {dist} needs, or reinstall it (pip install --force-reinstall {dist})"
            )
        else:
            msg = (
                f'{where}: type "{name}" from {reg.source} is not a usable {kind.value}: {outcome.problem}\n'
                f"  Entry point: {reg.declaration}\n"
                f"  Hint: this is a bug in {reg.distribution or 'the plugin'}; `greenflow plugins --check` lists every plugin that fails"
            )
        raise PluginError(msg) from outcome.exception


def _duplicate_problem(kind: Kind, regs: Iterable[_Registration]) -> str:
    who = ", ".join(f"{r.source} ({r.entry_point.value})" for r in regs)
    return f"registered in {kind.group} by more than one distribution: {who}"


def _missing_message(
    kind: Kind,
    name: str,
    where: str,
    regs: tuple[_Registration, ...],
    installed_version: Callable[[str], str | None],
) -> str:
    installed = ", ".join(f"{r.name} ({r.source})" for r in regs) or "none"
    hint = _missing_hint(kind, name, [r.name for r in regs], installed_version)
    return (
        f'{where}: type "{name}" is not installed.\n'
        f"  Installed {kind.plural}: {installed}\n"
        f"  Hint: {hint}"
    )


def _missing_hint(
    kind: Kind, name: str, installed: list[str], installed_version: Callable[[str], str | None]
) -> str:
    close = difflib.get_close_matches(name, installed, n=1)
    if close:
        return f'did you mean "{close[0]}"? `greenflow plugins` lists every installed plugin'
    dist = _KNOWN_DISTRIBUTIONS.get(name) or _KNOWN_DISTRIBUTIONS.get(name.split("-")[0])
    if dist is None:
        return f"`greenflow plugins` lists the installed {kind.plural}; check the spelling or install the package that provides it"
    version = installed_version(dist)
    if version is None:
        return f"pip install {dist}"
    return f"{dist} {version} is installed but provides no {kind.value} of that name; `greenflow plugins` lists what it provides"


_default = _Registry(None)
_default_lock = threading.Lock()


def _registry(entry_points: Iterable[importlib.metadata.EntryPoint] | None) -> _Registry:
    if entry_points is not None:
        return _Registry(entry_points)
    return _default


def available(
    kind: Kind | str | None = None,
    *,
    entry_points: Iterable[importlib.metadata.EntryPoint] | None = None,
) -> list[PluginInfo]:
    """Every registered plugin of ``kind`` (all kinds when None), each imported to know its status.

    Never raises for a bad plugin: a module that fails to import, an object that is not
    a concrete subclass of the kind's ABC, or a name registered by two distributions in
    one group comes back as ``status="failed"`` with the reason in ``error``. Results are
    cached for the process (see :func:`clear_cache`).

    ``entry_points`` replaces discovery with the given entry points (tests): they are
    filtered by group and not cached.
    """
    registry = _registry(entry_points)
    kinds = list(Kind) if kind is None else [Kind(kind)]
    return [info for k in kinds for info in registry.available(k)]


@overload
def load(
    kind: Literal[Kind.PLATFORM],
    name: str,
    *,
    where: str,
    entry_points: Iterable[importlib.metadata.EntryPoint] | None = None,
) -> type[Platform]: ...
@overload
def load(
    kind: Literal[Kind.SERVICE],
    name: str,
    *,
    where: str,
    entry_points: Iterable[importlib.metadata.EntryPoint] | None = None,
) -> type[Service]: ...
@overload
def load(
    kind: Literal[Kind.WORKLOAD],
    name: str,
    *,
    where: str,
    entry_points: Iterable[importlib.metadata.EntryPoint] | None = None,
) -> type[Workload]: ...
@overload
def load(
    kind: Literal[Kind.COLLECTOR],
    name: str,
    *,
    where: str,
    entry_points: Iterable[importlib.metadata.EntryPoint] | None = None,
) -> type[Collector]: ...
@overload
def load(
    kind: Kind | str,
    name: str,
    *,
    where: str,
    entry_points: Iterable[importlib.metadata.EntryPoint] | None = None,
) -> type[Any]: ...
def load(
    kind: Kind | str,
    name: str,
    *,
    where: str,
    entry_points: Iterable[importlib.metadata.EntryPoint] | None = None,
) -> type[Any]:
    """The plugin class registered as ``name`` for ``kind``, or ``PluginError``.

    ``where`` names what asked for it and starts every message, e.g.
    ``plan.toml [platform]``. Raises when no distribution registers ``name`` (listing
    what is installed and what to install), when its module fails to import (naming the
    distribution and the import error, chained), when the object is not a concrete
    subclass of the kind's ABC with a ``Config`` attrs class, and when more than one
    distribution registers ``name`` in the group (naming them all). Only the requested
    plugin is imported. Cached for the process.
    """
    return _registry(entry_points).load(Kind(kind), name, where)


def clear_cache() -> None:
    """Forget what was discovered and imported (tests; after installing a plugin in-process)."""
    global _default
    with _default_lock:
        _default = _Registry(None)
