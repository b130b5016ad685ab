"""`greenflow shell PLAN` puts the plan, its runs, the store and the platform in scope."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from greenflow.cli import main

PLAN = """
[experiment]
name = "sh"
output = "{out}"
[platform]
type = "local"
[workload]
type = "command"
command = "true"
params = {{ n = [1, 2, 3] }}
"""


def test_shell_scope(tmp_path: Path) -> None:
    """The shell's scope has the plan, its expansion, the store and an unacquired platform."""
    plan = tmp_path / "plan.toml"
    plan.write_text(PLAN.format(out=tmp_path / "out"))
    code = (
        "print(plan.experiment.name, len(expansion.runs), type(platform).__name__, "
        "store.get_experiment('sh'), services)"
    )
    result = CliRunner().invoke(main, ["shell", str(plan), "-c", code])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "sh 3 LocalPlatform None {}"
