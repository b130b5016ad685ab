"""Plugin discovery and loading (greenflow.plugins), against distributions built in tmp_path.

Why constructed distributions: a name registered twice, a plugin that is not a subclass,
an abstract class... would break every other test if installed into the shared test
environment, and a fresh virtualenv per case is far too slow. `available` and `load` take
an injectable ``entry_points`` source instead; the tests pass the entry points of real
``importlib.metadata.PathDistribution`` objects (a ``*.dist-info`` directory written in
``tmp_path``), so that ``.dist`` — the distribution name and version the messages show —
comes through exactly as it does for installed packages. Only the default source (reading
``importlib.metadata.entry_points``) and its cache are tested on the real environment.
"""

from __future__ import annotations

import importlib.metadata
import itertools
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from greenflow.api import Platform, Workload
from greenflow.errors import PluginError
from greenflow.plugins import (
    COLLECTORS_GROUP,
    GROUPS,
    PLATFORMS_GROUP,
    PROTOCOLS_GROUP,
    SERVICES_GROUP,
    WORKLOADS_GROUP,
    Kind,
    available,
    clear_cache,
    load,
)

_counter = itertools.count()

PLUGIN_MODULE = """
from typing import ClassVar
import attrs
from greenflow.api import Platform, Workload, Inventory

@attrs.frozen
class Empty:
    pass

class GoodWorkload(Workload):
    Config: ClassVar[type] = Empty
    def prepare(self, ctx): pass
    def execute(self, ctx): raise NotImplementedError
    def clean(self, ctx): pass

class OtherWorkload(GoodWorkload):
    pass

class AbstractWorkload(Workload):
    Config: ClassVar[type] = Empty

class NoConfigWorkload(Workload):
    def prepare(self, ctx): pass
    def execute(self, ctx): raise NotImplementedError
    def clean(self, ctx): pass

class LocalPlatform(Platform):
    Config: ClassVar[type] = Empty
    def acquire(self, ctx): return Inventory([])
    def release(self): pass

def make_workload():
    return GoodWorkload(Empty())
"""


@pytest.fixture
def module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """An importable module of plugin classes, under a name no other test uses."""
    name = f"gf_test_plugins_{next(_counter)}"
    src = tmp_path / "src"
    src.mkdir()
    (src / f"{name}.py").write_text(textwrap.dedent(PLUGIN_MODULE))
    (src / f"{name}_broken.py").write_text('raise ImportError("needs libfoo")\n')
    monkeypatch.syspath_prepend(str(src))
    yield name
    for mod in (name, f"{name}_broken"):
        sys.modules.pop(mod, None)


def dist(
    root: Path, name: str, version: str, entry_points: dict[str, dict[str, str]]
) -> list[importlib.metadata.EntryPoint]:
    """Entry points of a distribution ``name`` ``version`` written as a dist-info in ``root``."""
    info = root / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    lines = []
    for group, eps in entry_points.items():
        lines.append(f"[{group}]")
        lines += [f"{key} = {value}" for key, value in eps.items()]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    return list(importlib.metadata.PathDistribution(info).entry_points)


def test_kinds_map_to_groups_and_abcs() -> None:
    """Each kind names its entry-point group and ABC; groups are listed in kind order."""
    assert [k.group for k in Kind] == [
        PLATFORMS_GROUP,
        SERVICES_GROUP,
        WORKLOADS_GROUP,
        COLLECTORS_GROUP,
        PROTOCOLS_GROUP,
    ]
    assert list(GROUPS) == [k.group for k in Kind]
    assert Kind.PLATFORM.abc is Platform and Kind.WORKLOAD.abc is Workload
    assert Kind.from_group("greenflow.services") is Kind.SERVICE
    assert Kind("collector").plural == "collectors"


def test_available_reports_distribution_version_and_status(tmp_path: Path, module: str) -> None:
    """available() lists each plugin with the distribution and version that registered it."""
    eps = dist(
        tmp_path, "greenflow-good", "1.2.3", {WORKLOADS_GROUP: {"good": f"{module}:GoodWorkload"}}
    )
    (info,) = available(Kind.WORKLOAD, entry_points=eps)
    assert (info.name, info.kind, info.group) == ("good", Kind.WORKLOAD, WORKLOADS_GROUP)
    assert (info.distribution, info.version, info.value) == (
        "greenflow-good",
        "1.2.3",
        f"{module}:GoodWorkload",
    )
    assert (info.status, info.error) == ("ok", None)
    assert info.to_json()["kind"] == "workload"


def test_available_reports_a_failed_import_without_raising(tmp_path: Path, module: str) -> None:
    """A plugin whose module fails to import is listed as failed with the import error."""
    eps = dist(
        tmp_path,
        "greenflow-broken",
        "0.1.0",
        {WORKLOADS_GROUP: {"broken": f"{module}_broken:Missing"}},
    )
    (info,) = available("workload", entry_points=eps)
    assert info.status == "failed"
    assert info.error == "ImportError: needs libfoo"


def test_available_without_kind_lists_every_kind(tmp_path: Path, module: str) -> None:
    """available() with no kind lists plugins of all kinds, platforms first."""
    eps = dist(
        tmp_path,
        "greenflow-two",
        "1.0",
        {
            WORKLOADS_GROUP: {"good": f"{module}:GoodWorkload"},
            PLATFORMS_GROUP: {"here": f"{module}:LocalPlatform"},
        },
    )
    assert [(i.kind, i.name) for i in available(entry_points=eps)] == [
        (Kind.PLATFORM, "here"),
        (Kind.WORKLOAD, "good"),
    ]


def test_load_returns_the_class(tmp_path: Path, module: str) -> None:
    """load() returns the registered class itself."""
    eps = dist(
        tmp_path, "greenflow-good", "1.0", {WORKLOADS_GROUP: {"good": f"{module}:GoodWorkload"}}
    )
    cls = load(Kind.WORKLOAD, "good", where="plan.toml [workload]", entry_points=eps)
    assert cls.__name__ == "GoodWorkload" and issubclass(cls, Workload)


def test_load_missing_names_what_is_installed_and_what_to_install(
    tmp_path: Path, module: str
) -> None:
    """A missing first-party plugin gets the installed list and a pip install hint."""
    eps = dist(
        tmp_path, "greenflow-core", "0.1.0", {PLATFORMS_GROUP: {"local": f"{module}:LocalPlatform"}}
    )
    with pytest.raises(PluginError) as info:
        load(Kind.PLATFORM, "g5k", where="plan.toml [platform]", entry_points=eps)
    assert str(info.value) == (
        'plan.toml [platform]: type "g5k" is not installed.\n'
        "  Installed platforms: local (greenflow-core 0.1.0)\n"
        "  Hint: pip install greenflow-g5k"
    )


@pytest.mark.parametrize(
    ("kind", "name", "package"),
    [
        (Kind.SERVICE, "kafka", "greenflow-kafka"),
        (Kind.SERVICE, "redpanda", "greenflow-redpanda"),
        (Kind.WORKLOAD, "theodolite-uc1", "greenflow-theodolite"),
        (Kind.COLLECTOR, "kwollect", "greenflow-g5k"),
        (Kind.PLATFORM, "kubernetes", "greenflow-kubernetes"),
        (Kind.PLATFORM, "k3s", "greenflow-k3s"),
        (Kind.SERVICE, "prometheus", "greenflow-kubernetes"),
        (Kind.SERVICE, "scaphandre", "greenflow-kubernetes"),
        (Kind.COLLECTOR, "scaphandre", "greenflow-kubernetes"),
    ],
)
def test_load_missing_hints_at_the_conventional_distribution(
    kind: Kind, name: str, package: str
) -> None:
    """Names GreenFlow's own plugin packages provide hint at installing that package."""
    with pytest.raises(PluginError, match=f"Hint: pip install {package}$"):
        load(kind, name, where="plan.toml", entry_points=[])


def test_load_missing_unknown_name_hints_at_greenflow_plugins() -> None:
    """An unknown name with nothing close hints at `greenflow plugins`, not at pip."""
    with pytest.raises(PluginError) as info:
        load(Kind.SERVICE, "zookeeper", where="plan.toml [[services]] #1", entry_points=[])
    message = str(info.value)
    assert message.startswith('plan.toml [[services]] #1: type "zookeeper" is not installed.\n')
    assert "Installed services: none" in message
    assert "`greenflow plugins`" in message and "pip install" not in message


def test_load_missing_suggests_a_close_name(tmp_path: Path, module: str) -> None:
    """A misspelt name gets a did-you-mean for the installed plugin it resembles."""
    eps = dist(
        tmp_path, "greenflow-good", "1.0", {WORKLOADS_GROUP: {"hello": f"{module}:GoodWorkload"}}
    )
    with pytest.raises(PluginError, match='did you mean "hello"'):
        load(Kind.WORKLOAD, "helo", where="plan.toml [workload]", entry_points=eps)


def test_load_failed_import_names_distribution_and_error(tmp_path: Path, module: str) -> None:
    """A plugin that fails to import raises PluginError naming its distribution and the import error."""
    eps = dist(
        tmp_path,
        "greenflow-broken",
        "0.1.0",
        {WORKLOADS_GROUP: {"broken": f"{module}_broken:Missing"}},
    )
    with pytest.raises(PluginError) as info:
        load(Kind.WORKLOAD, "broken", where="plan.toml [workload]", entry_points=eps)
    message = str(info.value)
    assert message.startswith(
        'plan.toml [workload]: type "broken" is installed by greenflow-broken 0.1.0 but fails '
        "to import: ImportError: needs libfoo\n"
    )
    assert f'broken = "{module}_broken:Missing" in greenflow.workloads' in message
    assert isinstance(info.value.__cause__, ImportError)


@pytest.mark.parametrize(
    ("attr", "problem"),
    [
        ("LocalPlatform", "is not a subclass of greenflow.api.Workload"),
        ("make_workload", "is a function, not a subclass of greenflow.api.Workload"),
        ("AbstractWorkload", "does not implement the abstract method(s) clean, execute, prepare"),
        ("NoConfigWorkload", "has no Config attrs class"),
    ],
)
def test_load_rejects_what_is_not_a_plugin_class(
    tmp_path: Path, module: str, attr: str, problem: str
) -> None:
    """An entry point that is not a concrete subclass of the kind's ABC with a Config raises PluginError."""
    eps = dist(tmp_path, "greenflow-odd", "2.0", {WORKLOADS_GROUP: {"odd": f"{module}:{attr}"}})
    with pytest.raises(PluginError) as info:
        load(Kind.WORKLOAD, "odd", where="plan.toml [workload]", entry_points=eps)
    message = str(info.value)
    assert message.startswith(
        'plan.toml [workload]: type "odd" from greenflow-odd 2.0 is not a usable workload: '
    )
    assert problem in message
    (listed,) = available(Kind.WORKLOAD, entry_points=eps)
    assert listed.status == "failed" and listed.error is not None and problem in listed.error


def test_duplicate_names_are_detected_and_name_both_distributions(
    tmp_path: Path, module: str
) -> None:
    """A name two distributions register in one group fails to load and is listed failed, naming both.

    stevedore's entry-point cache keeps (name, value, group) without the distribution and
    would load one of the two silently; discovery reads importlib.metadata itself so that
    the conflict is seen. The two distributions are built in tmp_path (see the module
    docstring) rather than installed, so the shared test environment keeps one `hello`.
    """
    eps = [
        *dist(
            tmp_path,
            "greenflow-hello",
            "0.1.0",
            {WORKLOADS_GROUP: {"hello": f"{module}:GoodWorkload"}},
        ),
        *dist(
            tmp_path,
            "greenflow-duplicate",
            "0.2.0",
            {WORKLOADS_GROUP: {"hello": f"{module}:OtherWorkload"}},
        ),
    ]
    with pytest.raises(PluginError) as info:
        load(Kind.WORKLOAD, "hello", where="plan.toml [workload]", entry_points=eps)
    message = str(info.value)
    assert message.startswith(
        'plan.toml [workload]: type "hello" is registered in greenflow.workloads by more than one distribution'
    )
    assert f"greenflow-hello 0.1.0 ({module}:GoodWorkload)" in message
    assert f"greenflow-duplicate 0.2.0 ({module}:OtherWorkload)" in message
    assert "pip uninstall greenflow-duplicate or greenflow-hello" in message
    listed = available(Kind.WORKLOAD, entry_points=eps)
    assert [(i.distribution, i.status) for i in listed] == [
        ("greenflow-duplicate", "failed"),
        ("greenflow-hello", "failed"),
    ]
    assert all(
        "greenflow-duplicate" in (i.error or "") and "greenflow-hello" in (i.error or "")
        for i in listed
    )


def test_same_name_in_different_groups_is_no_conflict(tmp_path: Path, module: str) -> None:
    """The same name may be a platform and a workload: names are unique per group only."""
    eps = dist(
        tmp_path,
        "greenflow-both",
        "1.0",
        {
            PLATFORMS_GROUP: {"same": f"{module}:LocalPlatform"},
            WORKLOADS_GROUP: {"same": f"{module}:GoodWorkload"},
        },
    )
    assert load(Kind.PLATFORM, "same", where="x", entry_points=eps).__name__ == "LocalPlatform"
    assert load(Kind.WORKLOAD, "same", where="x", entry_points=eps).__name__ == "GoodWorkload"


def test_entry_points_built_by_hand_have_an_unknown_distribution(module: str) -> None:
    """Entry points without a distribution are listed with distribution None, not dropped."""
    ep = importlib.metadata.EntryPoint("good", f"{module}:GoodWorkload", WORKLOADS_GROUP)
    (info,) = available(Kind.WORKLOAD, entry_points=[ep])
    assert (info.distribution, info.version, info.status) == (None, None, "ok")
    assert info.source == "unknown distribution"


def test_default_discovery_reads_installed_entry_points_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without a source, discovery reads importlib.metadata once per group and process, until clear_cache()."""
    calls: list[str] = []
    real = importlib.metadata.entry_points

    def counting(**kwargs: str) -> importlib.metadata.EntryPoints:
        calls.append(kwargs["group"])
        return real(**kwargs)

    clear_cache()
    monkeypatch.setattr(importlib.metadata, "entry_points", counting)
    try:
        first = available(Kind.PLATFORM)
        second = available(Kind.PLATFORM)
        assert calls == [PLATFORMS_GROUP]
        assert first == second
        local = [i for i in first if i.name == "local"]
        assert [(i.distribution, i.version) for i in local] == [
            ("greenflow-core", importlib.metadata.version("greenflow-core"))
        ]
        clear_cache()
        available(Kind.PLATFORM)
        assert calls == [PLATFORMS_GROUP, PLATFORMS_GROUP]
    finally:
        clear_cache()


def test_load_missing_from_an_installed_first_party_package_says_so(
    tmp_path: Path, module: str
) -> None:
    """When the conventional package is installed but lacks the name, the hint says so instead of pip install."""
    eps = dist(
        tmp_path, "greenflow-kafka", "0.3.0", {SERVICES_GROUP: {"kafka": f"{module}:GoodWorkload"}}
    )
    with pytest.raises(PluginError) as info:
        load(Kind.WORKLOAD, "kafka-replay", where="plan.toml [workload]", entry_points=eps)
    assert "Hint: greenflow-kafka 0.3.0 is installed but provides no workload of that name" in str(
        info.value
    )
