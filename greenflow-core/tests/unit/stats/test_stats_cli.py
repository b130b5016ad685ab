"""``greenflow results --summary``: the table, --json and --csv, through click's CliRunner."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from click.testing import CliRunner

from greenflow.cli._app import App
from greenflow.cli.results import results


def invoke(*args: str) -> tuple[int, str, str]:
    # A wide terminal, so that rich does not wrap the cells this test reads.
    result = CliRunner(env={"COLUMNS": "250"}).invoke(results, list(args), obj=App())
    return result.exit_code, result.stdout, result.stderr


def lines(out: str) -> dict[str, str]:
    """Table rows by their first cell (the rate)."""
    rows = [[c.strip() for c in line.split("│")[1:-1]] for line in out.splitlines() if "│" in line]
    return {r[0]: " | ".join(r) for r in rows if r and r[0]}


def test_table(sweep_dir: Path) -> None:
    """One line per point with n, mean ± CI half-width of energy, J and dynamic J per unit,
    rate and p99, and the method; a second line per extra energy method."""
    code, out, _ = invoke(str(sweep_dir), "--summary")
    assert code == 0, out
    assert "sweep: 4 points (6 finished, 2 failed, 1 aborted); mean ± 95 % CI" in out
    for header in ("rate", "size", "n", "energy J", "J per message", "dynamic J per message"):
        assert header in out
    row = lines(out)["1000"]
    # 18 ± 4.303·3/√3; 0.018 ± 0.00745; 0.012 ± 0.00745; 110 ± 24.8; 10 ± 6.57
    assert "18.0 ± 7.5" in row
    assert "0.0180 ± 0.0075" in row
    assert "0.0120 ± 0.0075" in row
    assert "110 ± 25" in row
    assert "10.0 ± 6.6" in row
    assert row.endswith("rapl")
    two = lines(out)["2000"]
    assert "2 +1 failed +1 aborted" in two and "| 30 |" in two
    assert "45" in out and "model:linear" in out  # the model's line, apart from RAPL's
    assert "| 10 |" in lines(out)["500"]  # n = 1: the mean alone
    assert "dynamic J: empty where no idle baseline was measured" in out


def test_json(sweep_dir: Path) -> None:
    """--summary --json prints each point with its params, counts and stats per column."""
    code, out, _ = invoke(str(sweep_dir), "--summary", "--json", "-e", "sweep")
    assert code == 0
    data = json.loads(out)
    assert [p["params"]["rate"] for p in data] == [500, 1000, 2000, 4000]
    stat = data[1]["stats"]["energy_joules[host]"]
    assert set(stat) == {"mean", "sd", "ci_low", "ci_high", "n", "method", "systematic"}
    assert (stat["mean"], stat["sd"], stat["n"], stat["method"]) == (18, 3, 3, "rapl")
    assert (data[2]["n"], data[2]["n_failed"], data[2]["n_aborted"]) == (2, 1, 1)


def test_csv(sweep_dir: Path, tmp_path: Path) -> None:
    """--summary --csv writes one row per point with <column>.mean, .ci_low, ... columns."""
    code, out, _ = invoke(str(sweep_dir), "--summary", "--csv", "-")
    assert code == 0
    read = list(csv.DictReader(io.StringIO(out)))
    assert [r["param.rate"] for r in read] == ["500", "1000", "2000", "4000"]
    assert read[1]["energy_joules[host].sd"] == "3.0"
    assert read[0]["energy_joules[host].sd"] == ""
    target = tmp_path / "points.csv"
    code, _, err = invoke(str(sweep_dir), "--summary", "--csv", str(target))
    assert code == 0 and "wrote 4 points" in err and target.is_file()


def test_unknown_experiment(sweep_dir: Path) -> None:
    """An unknown experiment is one error line and exit status 1."""
    code, _, err = invoke(str(sweep_dir), "--summary", "-e", "nope")
    assert code == 1
    assert "no experiment 'nope'" in err
