"""Sweep expansion: cartesian product × repetitions, shuffled reproducibly by the seed."""

from __future__ import annotations

from pathlib import Path

from greenflow.plan import expand, load_plan

PLAN = """
[experiment]
name = "sweep"
repetitions = 3
seed = {seed}

[platform]
type = "local"

[workload]
type = "command"
command = "echo {{a}} {{b}}"
params = {{ a = [1, 2, 3], b = ["x", "y"], c = "fixed" }}
"""


def _plan(tmp_path: Path, seed: int = 7) -> Path:
    p = tmp_path / f"plan{seed}.toml"
    p.write_text(PLAN.format(seed=seed))
    return p


def test_runs_are_product_times_repetitions(tmp_path: Path) -> None:
    """3 × 2 points × 3 repetitions give 18 runs, each point once per repetition."""
    exp = expand(load_plan(_plan(tmp_path)))
    assert len(exp.runs) == 18
    assert [a.name for a in exp.axes] == ["params.a", "params.b"]
    points = {(r.params["params.a"], r.params["params.b"], r.repetition) for r in exp.runs}
    assert len(points) == 18
    assert sorted(r.order for r in exp.runs) == list(range(18))


def test_order_is_shuffled_and_reproducible(tmp_path: Path) -> None:
    """The same seed gives the same order; another seed gives another one."""
    a = [r.run_id for r in expand(load_plan(_plan(tmp_path, 7))).runs]
    b = [r.run_id for r in expand(load_plan(_plan(tmp_path, 7))).runs]
    c = [r.run_id for r in expand(load_plan(_plan(tmp_path, 8))).runs]
    assert a == b
    assert sorted(a) == sorted(c) and a != c
    natural = sorted(a, key=lambda i: a.index(i))
    assert natural == a


def test_run_identity_is_stable_and_unique(tmp_path: Path) -> None:
    """Run ids depend on parameters and repetition, not on order or seed."""
    a = {
        r.run_id: (r.params["params.a"], r.repetition)
        for r in expand(load_plan(_plan(tmp_path, 1))).runs
    }
    b = {
        r.run_id: (r.params["params.a"], r.repetition)
        for r in expand(load_plan(_plan(tmp_path, 2))).runs
    }
    assert a == b
    assert len(a) == 18


def test_substituted_config_is_scalar(tmp_path: Path) -> None:
    """Each run's workload config holds one value per axis."""
    exp = expand(load_plan(_plan(tmp_path)))
    for r in exp.runs:
        assert r.workload_config.params["a"] == r.params["params.a"]
        assert r.workload_config.params["c"] == "fixed"
