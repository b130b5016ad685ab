"""Meta-tests that keep the plugin contract honest (as Datasette's test_plugin_hooks_have_tests):
every abstract method of the four ABCs is exercised by the contract kit and documented in
docs/writing-a-plugin.md, and every public method of the ABCs is documented there.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

import greenflow.testing
from greenflow.plugins import Kind
from greenflow.testing import (
    CollectorContract,
    PlatformContract,
    ProtocolContract,
    ServiceContract,
    WorkloadContract,
)

DOC = Path(__file__).resolve().parents[3] / "docs" / "writing-a-plugin.md"

CONTRACTS = {
    Kind.PLATFORM: PlatformContract,
    Kind.SERVICE: ServiceContract,
    Kind.WORKLOAD: WorkloadContract,
    Kind.COLLECTOR: CollectorContract,
    Kind.PROTOCOL: ProtocolContract,
}


def _doc_section(kind: Kind) -> str:
    """The `### Platform` (etc.) section of the plugin guide."""
    if not DOC.exists():
        pytest.fail(f"{DOC} is missing: it documents every plugin method")
    text = DOC.read_text()
    match = re.search(rf"^### {kind.abc.__name__}\n(.*?)(?=^#{{1,3}} |\Z)", text, re.M | re.S)
    assert match, f"{DOC.name} has no '### {kind.abc.__name__}' section"
    return match.group(1)


def _public_methods(abc: type) -> list[str]:
    return sorted(
        name
        for name, member in vars(abc).items()
        if not name.startswith("_")
        and (inspect.isfunction(member) or isinstance(member, classmethod))
    )


@pytest.mark.parametrize("kind", list(Kind), ids=str)
def test_every_abstract_method_is_called_by_the_contract(kind: Kind) -> None:
    """Each abstract method of the kind's ABC is called somewhere in its contract class."""
    source = inspect.getsource(CONTRACTS[kind])
    abstract = sorted(kind.abc.__abstractmethods__)
    assert abstract, f"{kind.abc.__name__} has no abstract method?"
    # A property is read, not called.
    missing = [
        m
        for m in abstract
        if not re.search(
            rf"\.{m}\b" if isinstance(getattr(kind.abc, m), property) else rf"\.{m}\(", source
        )
    ]
    assert not missing, (
        f"{CONTRACTS[kind].__name__} never calls {kind.abc.__name__}.{', '.join(missing)}"
    )


@pytest.mark.parametrize("kind", list(Kind), ids=str)
def test_every_public_method_is_documented(kind: Kind) -> None:
    """Each public method of the kind's ABC (abstract or not) has an entry in the plugin guide."""
    section = _doc_section(kind)
    missing = [m for m in _public_methods(kind.abc) if f"`{m}(" not in section]
    assert not missing, (
        f"docs/writing-a-plugin.md '### {kind.abc.__name__}' does not document {missing}"
    )
    for m in kind.abc.__abstractmethods__:
        mark = f"`{m}`" if isinstance(getattr(kind.abc, m), property) else f"`{m}("
        entry = next((line for line in section.splitlines() if mark in line), None)
        assert entry, f"docs/writing-a-plugin.md '### {kind.abc.__name__}' does not document {m}"
        assert "**required.**" in entry, f"{m} is abstract but its entry does not say **required.**"


@pytest.mark.parametrize("kind", list(Kind), ids=str)
def test_every_group_is_documented(kind: Kind) -> None:
    """The plugin guide names each kind's entry-point group."""
    assert f"`{kind.group}`" in DOC.read_text()


def test_contract_tests_have_one_sentence_docstrings() -> None:
    """Every contract test has a docstring: it is what a plugin author reads when it fails."""
    undocumented = [
        f"{cls.__name__}.{name}"
        for cls in (*CONTRACTS.values(),)
        for name, member in inspect.getmembers(cls, inspect.isfunction)
        if name.startswith("test_") and not (member.__doc__ or "").strip()
    ]
    assert not undocumented, f"contract tests without a docstring: {undocumented}"


def test_contracts_are_exported() -> None:
    """greenflow.testing exports the four contracts and the helpers named in __all__."""
    for name in greenflow.testing.__all__:
        assert hasattr(greenflow.testing, name)
    assert {c.__name__ for c in CONTRACTS.values()} <= set(greenflow.testing.__all__)
    assert "make_run_context" in greenflow.testing.__all__
