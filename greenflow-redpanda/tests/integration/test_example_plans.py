"""Every plan in ``examples/`` validates as shipped.

It lives here because this package's test session installs every first-party distribution
(core, kafka, redpanda), which the examples use between them. Validation is the real
``greenflow validate``: plugins load through their entry points and check their sections;
no cluster is reached (the Kubernetes example's roles are checked only with a kubeconfig,
which the test removes, so it gets the documented warning instead).
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from greenflow.cli import main

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
#: Plugin types of distributions this session does not install: their own tests validate
#: the examples that use them (tests/unit/test_example_plan.py in greenflow-k3s,
#: greenflow-g5k and greenflow-theodolite).
ELSEWHERE = {"k3s", "g5k", "theodolite"}


def _types(plan: Path) -> set[str]:
    data = tomllib.loads(plan.read_text())
    return {
        str(section.get("type"))
        for section in (data.get("platform", {}), data.get("workload", {}))
        if isinstance(section, dict)
    }


PLANS = sorted(p for p in EXAMPLES.glob("*.toml") if not _types(p) & ELSEWHERE)


def test_the_examples_are_there() -> None:
    """The README and docs point at these; a rename must not silently empty this module."""
    names = {p.name for p in PLANS}
    assert {"local-kafka.toml", "kubernetes-kafka-redpanda.toml"} <= names


@pytest.mark.parametrize("plan", PLANS, ids=[p.stem for p in PLANS])
def test_example_plan_validates(
    plan: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """``greenflow validate examples/<plan>`` says ok and how many runs the plan makes."""
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-such-kubeconfig"))
    monkeypatch.setenv("HOME", str(tmp_path))
    result = CliRunner().invoke(main, ["validate", str(plan)])
    assert result.exit_code == 0, result.output
    assert f"{plan}: ok — " in result.output
