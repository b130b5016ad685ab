"""`greenflow plugins`, invoked directly with click's CliRunner on a fixed list of plugins."""

from __future__ import annotations

import importlib
import json

import attrs
import pytest
from click.testing import CliRunner

from greenflow.plugins import Kind, PluginInfo

# The module, not the `plugins` command greenflow.cli may bind under the same name.
plugins_module = importlib.import_module("greenflow.cli.plugins")

OK = PluginInfo(
    name="hello",
    kind=Kind.WORKLOAD,
    group="greenflow.workloads",
    distribution="greenflow-hello",
    version="0.1.0",
    value="greenflow_hello.workload:HelloWorkload",
    status="ok",
)
FAILED = PluginInfo(
    name="broken",
    kind=Kind.WORKLOAD,
    group="greenflow.workloads",
    distribution="greenflow-broken",
    version="0.1.0",
    value="greenflow_broken:Missing",
    status="failed",
    error="ImportError: needs libfoo",
)


@pytest.fixture
def installed(monkeypatch: pytest.MonkeyPatch) -> list[PluginInfo]:
    infos = [OK, FAILED]
    monkeypatch.setattr(plugins_module, "available", lambda: list(infos))
    monkeypatch.setenv("COLUMNS", "200")  # one line per plugin in rich's table
    return infos


def test_table_shows_name_kind_distribution_version_and_error(installed: list[PluginInfo]) -> None:
    """The table has one row per plugin, and a failed row carries its error."""
    result = CliRunner().invoke(plugins_module.plugins, [])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["name", "kind", "distribution", "version", "status"]
    assert lines[1].split() == ["hello", "workload", "greenflow-hello", "0.1.0", "ok"]
    assert lines[2].split() == [
        "broken",
        "workload",
        "greenflow-broken",
        "0.1.0",
        "failed:",
        "ImportError:",
        "needs",
        "libfoo",
    ]


def test_without_a_terminal_each_plugin_is_one_whole_line(
    installed: list[PluginInfo], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Piped output keeps a long error on its plugin's line, whole, with no trailing blanks."""
    monkeypatch.delenv("COLUMNS")
    error = "ImportError: cannot import name 'Missing' from 'greenflow_broken' " + "x" * 120
    installed[1] = attrs.evolve(FAILED, error=error)
    result = CliRunner().invoke(plugins_module.plugins, [])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert len(lines) == 3
    assert lines[2].startswith("broken") and lines[2].endswith(f"failed: {error}")
    assert all(line == line.rstrip() for line in lines)


def test_json_prints_a_list_of_plugins(installed: list[PluginInfo]) -> None:
    """--json prints a JSON list with every field of every plugin."""
    result = CliRunner().invoke(plugins_module.plugins, ["--json"])
    assert result.exit_code == 0
    assert json.loads(result.output) == [OK.to_json(), FAILED.to_json()]
    assert json.loads(result.output)[1]["error"] == "ImportError: needs libfoo"


def test_check_exits_1_when_a_plugin_failed(installed: list[PluginInfo]) -> None:
    """--check exits 1 and names the failed plugins on stderr."""
    result = CliRunner().invoke(plugins_module.plugins, ["--check", "--json"])
    assert result.exit_code == 1
    assert json.loads(result.stdout)[1]["status"] == "failed"
    assert "1 plugin(s) failed to load: workload 'broken'" in result.stderr


def test_check_exits_0_when_all_load(installed: list[PluginInfo]) -> None:
    """--check exits 0 when every plugin loads."""
    installed.remove(FAILED)
    result = CliRunner().invoke(plugins_module.plugins, ["--check"])
    assert result.exit_code == 0, result.output
    assert "hello" in result.output
