"""Malformed plans: each gets one clear message naming file, section and key; no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from greenflow.cli import main

GOOD = """
[experiment]
name = "t"
repetitions = 2

[platform]
type = "local"

[workload]
type = "command"
command = "echo done {n}"
params = { n = [1, 2] }
"""

# (id, plan text, fragments the message must contain)
CASES = [
    ("toml-syntax", "[experiment\nname = 't'", ["not valid TOML", "line 1"]),
    (
        "missing-experiment",
        '[platform]\ntype = "local"\n[workload]\ntype = "command"\ncommand="x"',
        ["missing section [experiment]"],
    ),
    ("unknown-section", GOOD + "\n[extra]\na = 1\n", ["unknown section(s) extra", "[workload]"]),
    (
        "unknown-key-experiment",
        GOOD.replace('name = "t"', 'name = "t"\nrepetitons = 3'),
        [
            "[experiment]",
            "unknown key(s): repetitons (did you mean repetitions?)",
            "valid keys:",
            "repetitions",
        ],
    ),
    ("unknown-key-workload", GOOD + 'colour = "red"\n', ["[workload]", "unknown key(s): colour;"]),
    (
        "wrong-type-repetitions",
        GOOD.replace("repetitions = 2", 'repetitions = "two"'),
        ["[experiment] repetitions", 'expected an integer, got "two"'],
    ),
    (
        "negative-repetitions",
        GOOD.replace("repetitions = 2", "repetitions = -1"),
        ["[experiment]", "expected a number > 0, got -1"],
    ),
    (
        "float-for-int",
        GOOD.replace("repetitions = 2", "repetitions = 1.5"),
        ["[experiment] repetitions", "expected an integer, got 1.5"],
    ),
    (
        "bad-duration",
        GOOD.replace('name = "t"', 'name = "t"\nbaseline = "ten seconds"'),
        ["[experiment] baseline", 'expected a duration like "30s"', "ten seconds"],
    ),
    (
        "negative-duration",
        GOOD.replace('name = "t"', 'name = "t"\nbaseline = -3'),
        ["[experiment] baseline", "≥ 0"],
    ),
    (
        "bad-on-error",
        GOOD.replace('name = "t"', 'name = "t"\non_error = "maybe"'),
        ["[experiment] on_error", "maybe"],
    ),
    (
        # A name no distribution provides, whatever is installed here; the `pip install
        # greenflow-g5k` hint for a first-party one is tests/unit/plugins' (its own entry points).
        "unknown-platform",
        GOOD.replace('type = "local"', 'type = "openstack"'),
        [
            '[platform]: type "openstack" is not installed',
            "Installed platforms:",
            "local (greenflow-core",
            "Hint: `greenflow plugins` lists the installed platforms",
        ],
    ),
    (
        "unknown-workload",
        GOOD.replace('type = "command"', 'type = "teleport"'),
        ['[workload]: type "teleport" is not installed', "Installed workloads"],
    ),
    (
        "unknown-collector",
        GOOD + '\n[[collectors]]\ntype = "wattmeter9000"\n',
        ['[collectors.0]: type "wattmeter9000" is not installed', "Installed collectors"],
    ),
    (
        "missing-type",
        GOOD.replace('type = "local"', 'kind = "local"'),
        ["[platform] type: required key missing"],
    ),
    (
        "empty-sweep",
        GOOD.replace("n = [1, 2]", "n = []"),
        ["[workload]", "empty list", "at least one value"],
    ),
    (
        "missing-required",
        GOOD.replace('command = "echo done {n}"', ""),
        ["[workload] command: required key missing"],
    ),
    (
        "unknown-template-parameter",
        GOOD.replace("{n}", "{size}"),
        ["[workload]", "{size}", "not a parameter", "known: n"],
    ),
    (
        "bad-regex",
        GOOD + 'units_pattern = "(unclosed"\n',
        ["[workload] units_pattern: expected a regular expression", "missing )"],
    ),
    (
        # A string where a list is expected is refused, never split into its characters.
        "string-for-a-list",
        GOOD.replace('type = "local"', 'type = "local"\nroles = "broker"'),
        ["[platform] roles: expected a list", '["broker"]', 'got "broker"'],
    ),
    (
        # An address the host cannot bind: one clear line at validate, never a traceback.
        "unbindable-address",
        GOOD.replace('type = "local"', 'type = "local"\naddress = "192.0.2.1"'),
        ["[platform] address: expected an address of this machine", "'192.0.2.1'", "127.0.0.1"],
    ),
    ("services-not-array", GOOD + '\n[services]\ntype = "x"\n', ["[services]", "array of tables"]),
    (
        "unknown-service",
        GOOD + '\n[[services]]\ntype = "kafkaa"\n',
        ['[services.0]: type "kafkaa" is not installed', "Installed services"],
    ),
]


@pytest.mark.parametrize(("text", "fragments"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_malformed_plan_gets_clear_message(tmp_path: Path, text: str, fragments: list[str]) -> None:
    """A malformed plan fails validation with a message naming what is wrong, without a traceback."""
    plan = tmp_path / "plan.toml"
    plan.write_text(text)
    result = CliRunner().invoke(main, ["validate", str(plan)])
    assert result.exit_code != 0
    out = result.output
    assert "Traceback" not in out
    assert "plan.toml" in out
    for fragment in fragments:
        assert fragment in out, f"{fragment!r} not in:\n{out}"


def test_missing_plan_file(tmp_path: Path) -> None:
    """A plan path that doesn't exist says so."""
    result = CliRunner().invoke(main, ["validate", str(tmp_path / "nope.toml")])
    assert result.exit_code == 1
    assert "no such plan file" in result.output


def test_good_plan_validates(tmp_path: Path) -> None:
    """A valid plan reports its run count: 2 points × 2 repetitions."""
    plan = tmp_path / "plan.toml"
    plan.write_text(GOOD)
    result = CliRunner().invoke(main, ["validate", str(plan)])
    assert result.exit_code == 0, result.output
    assert "4 runs" in result.output
    assert "params.n (2)" in result.output


def test_real_process_prints_no_traceback_and_v_shows_one(tmp_path: Path) -> None:
    """In a real process a bad plan prints one error line; -v adds the traceback."""
    plan = tmp_path / "plan.toml"
    plan.write_text(GOOD.replace("repetitions = 2", 'repetitions = "x"'))
    quiet = subprocess.run(
        [sys.executable, "-m", "greenflow", "validate", str(plan)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert quiet.returncode == 1
    assert quiet.stderr.startswith("Error: plan.toml [experiment] repetitions")
    assert "Traceback" not in quiet.stderr
    loud = subprocess.run(
        [sys.executable, "-m", "greenflow", "-v", "validate", str(plan)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert loud.returncode != 0
    assert "Traceback" in loud.stderr
