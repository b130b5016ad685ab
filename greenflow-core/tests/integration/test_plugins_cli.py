"""`greenflow plugins --check --json` as a real subprocess, with real installed plugin packages.

Needs two packages installed next to greenflow-core (the nox session does it):
``pip install -e examples/greenflow-hello -e greenflow-core/tests/fixtures/broken-plugin``.
greenflow-broken's module raises ImportError on purpose, so it is detected by its
distribution metadata, never imported here.
"""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys
from typing import Any

import pytest

INSTALL = "pip install -e examples/greenflow-hello -e greenflow-core/tests/fixtures/broken-plugin"


def _require(distribution: str) -> None:
    try:
        importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        pytest.skip(f"{distribution} is not installed in this environment; run: {INSTALL}")


@pytest.fixture(scope="module")
def listing() -> tuple[int, list[dict[str, Any]], str]:
    """Exit code, parsed JSON and stderr of `python -m greenflow plugins --check --json`."""
    _require("greenflow-hello")
    _require("greenflow-broken")
    proc = subprocess.run(
        [sys.executable, "-m", "greenflow", "plugins", "--check", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    try:
        data = json.loads(proc.stdout)
    except json.JSONDecodeError:
        pytest.fail(
            f"stdout is not JSON (exit {proc.returncode}):\n{proc.stdout}\nstderr:\n{proc.stderr}"
        )
    return proc.returncode, data, proc.stderr


def _one(data: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    rows = [row for row in data if row["kind"] == kind and row["name"] == name]
    assert len(rows) == 1, f"expected one {kind} {name!r}, got {rows}"
    return rows[0]


def test_third_party_plugin_is_listed_ok_from_its_distribution(
    listing: tuple[int, list[dict[str, Any]], str],
) -> None:
    """greenflow-hello's `hello` workload is listed ok, from distribution greenflow-hello."""
    _code, data, _err = listing
    hello = _one(data, "workload", "hello")
    assert hello["status"] == "ok", hello
    assert hello["distribution"] == "greenflow-hello"
    assert hello["version"] == importlib.metadata.version("greenflow-hello")
    assert hello["group"] == "greenflow.workloads"
    assert hello["value"] == "greenflow_hello.workload:HelloWorkload"
    assert _one(data, "collector", "hello-clock")["status"] == "ok"


def test_broken_plugin_is_listed_failed_with_its_import_error(
    listing: tuple[int, list[dict[str, Any]], str],
) -> None:
    """greenflow-broken's `broken` workload is listed failed, with the ImportError's message."""
    _code, data, _err = listing
    broken = _one(data, "workload", "broken")
    assert broken["status"] == "failed"
    assert broken["distribution"] == "greenflow-broken"
    assert "needs libfoo" in broken["error"]


def test_check_exits_1_and_names_the_failed_plugin(
    listing: tuple[int, list[dict[str, Any]], str],
) -> None:
    """--check exits 1 because a plugin failed, and says which on stderr."""
    code, _data, err = listing
    assert code == 1
    assert "workload 'broken'" in err


def test_builtins_register_through_the_same_entry_points(
    listing: tuple[int, list[dict[str, Any]], str],
) -> None:
    """greenflow-core's own `local` platform is listed like any plugin, from greenflow-core."""
    _code, data, _err = listing
    local = _one(data, "platform", "local")
    assert (local["distribution"], local["status"]) == ("greenflow-core", "ok")


def test_plan_naming_the_broken_plugin_gets_one_message(
    listing: tuple[int, list[dict[str, Any]], str],
) -> None:
    """load() of the installed broken plugin raises PluginError naming greenflow-broken and the error."""
    from greenflow.errors import PluginError
    from greenflow.plugins import Kind, load

    with pytest.raises(
        PluginError,
        match=r"installed by greenflow-broken 0\.1\.0 but fails to import: ImportError: needs libfoo",
    ):
        load(Kind.WORKLOAD, "broken", where="plan.toml [workload]")
