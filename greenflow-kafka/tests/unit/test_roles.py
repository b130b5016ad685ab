"""Roles services need are checked against the platform at validation."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from greenflow.cli import main

PLAN = """
[experiment]
name = "roles"
[platform]
type = "local"
roles = {roles}
[[services]]
type = "kafka"
[workload]
type = "kafka-ingest"
load = 1000
"""


def test_missing_role_fails_validation(tmp_path: Path) -> None:
    """A local host without the broker role cannot host Kafka: validation says so."""
    plan = tmp_path / "plan.toml"
    plan.write_text(PLAN.format(roles='["worker"]'))
    result = CliRunner().invoke(main, ["validate", str(plan)])
    assert result.exit_code == 1
    assert "[platform]" in result.output and "broker" in result.output
    assert "Traceback" not in result.output


def test_roles_present_validate(tmp_path: Path) -> None:
    """With the role carried, the same plan validates."""
    plan = tmp_path / "plan.toml"
    plan.write_text(PLAN.format(roles='["broker", "worker"]'))
    result = CliRunner().invoke(main, ["validate", str(plan)])
    assert result.exit_code == 0, result.output
