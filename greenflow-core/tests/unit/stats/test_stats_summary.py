"""summarize(): grouping by parameters, hand-computed figures, methods kept apart."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from stats_helpers import add_run, host
from test_stats_tdist import T_975

from greenflow import results
from greenflow.api.context import Metric
from greenflow.errors import StoreError
from greenflow.stats import PointSummary, Stat, find, summarize, to_dicts, to_json, to_rows
from greenflow.store import RunStatus, Store


def points(out: Path) -> dict[int, PointSummary]:
    with Store.open(out, create=False) as store:
        return {p.params["rate"]: p for p in summarize(store, "sweep")}


def check(stat: Stat, mean: float, sd: float, n: int, method: str) -> None:
    """``stat`` has this mean, sd and n, and the interval mean ± t_{0.975,n−1}·sd/√n."""
    assert (stat.n, stat.method) == (n, method)
    assert stat.mean == pytest.approx(mean, rel=1e-12)
    assert stat.sd == pytest.approx(sd, rel=1e-12)
    half = T_975[n - 1] * sd / math.sqrt(n)
    assert stat.ci_low == pytest.approx(mean - half, abs=5e-4 * sd)
    assert stat.ci_high == pytest.approx(mean + half, abs=5e-4 * sd)


def test_points_grouped_by_params_and_counted(sweep_dir: Path) -> None:
    """One summary per parameter point, sorted by value; n counts finished runs only."""
    with Store.open(sweep_dir, create=False) as store:
        found = summarize(store, "sweep")
    assert [p.params for p in found] == [{"rate": r, "size": 512} for r in (500, 1000, 2000, 4000)]
    assert [(p.n, p.n_failed, p.n_aborted) for p in found] == [
        (1, 0, 0),
        (3, 0, 0),
        (2, 1, 1),
        (0, 1, 0),  # the pending repetition of rate 4000 counts nowhere
    ]
    assert [p.unit for p in found] == ["message", "message", "message", None]
    assert found[3].stats == {}
    assert {p.experiment for p in found} == {"sweep"}


def test_hand_computed_point(sweep_dir: Path) -> None:
    """Rate 1000's figures match the values worked out by hand from its three runs."""
    s = points(sweep_dir)[1000].stats
    check(s["energy_joules[host/node-1]"], 12, 2, 3, "rapl")  # 10, 12, 14
    check(s["energy_joules[host/node-2]"], 6, 1, 3, "rapl")  # 5, 6, 7
    check(s["energy_joules[host]"], 18, 3, 3, "rapl")  # 15, 18, 21: summed per run
    check(s["mean_power_watts[host]"], 18 / 8, 3 / 8, 3, "rapl")
    check(s["active_energy_joules[host/node-1]"], 8, 2, 3, "rapl")  # 6, 8, 10
    check(s["active_energy_joules[host]"], 12, 3, 3, "rapl")  # (6+3), (8+4), (10+5)
    check(s["energy_per_message_joules[host]"], 0.018, 0.003, 3, "rapl")
    check(s["active_energy_per_message_joules[host]"], 0.012, 0.003, 3, "rapl")
    check(s["energy_per_mib_joules[host/node-1]"], 12.288, 2.048, 3, "rapl")  # e1/1000 × 1024
    check(s["energy_joules[service/kafka@node-1]"], 4, 1, 3, "rapl+cpu-share")  # 3, 4, 5
    check(s["energy_joules[service/kafka]"], 4, 1, 3, "rapl+cpu-share")
    check(s["achieved_rate"], 110, 10, 3, "workload")
    check(s["latency_ms.p99"], 10, math.sqrt(7), 3, "workload")  # 8, 9, 13
    check(s["measure_duration_seconds"], 8, 0, 3, "clock")
    # Identical repetitions: an interval of width 0, not None.
    idle = s["idle_energy_joules[idle/node-1]"]
    assert (idle.mean, idle.sd, idle.ci_low, idle.ci_high) == (4, 0, 4, 4)
    assert s["idle_energy_joules[idle]"].mean == 6
    assert s["units"].mean == 1000 and s["result.asked_rate_per_s"].mean == 1000


def test_static_and_dynamic_both_reported(sweep_dir: Path) -> None:
    """Total, idle and active (dynamic) energy are each summarised, per host and in total."""
    s = points(sweep_dir)[1000].stats
    for column in (
        "energy_joules[host]",
        "idle_energy_joules[idle]",
        "active_energy_joules[host]",
        "energy_per_message_joules[host]",
        "active_energy_per_message_joules[host]",
    ):
        assert column in s
    assert s["energy_joules[host]"].mean == pytest.approx(
        s["idle_energy_joules[idle]"].mean + s["active_energy_joules[host]"].mean
    )


def test_no_partial_totals(sweep_dir: Path) -> None:
    """Without a baseline on node-2 no active total is made from node-1 alone."""
    s = points(sweep_dir)[500].stats
    assert "active_energy_joules[host]" not in s
    assert "active_energy_per_message_joules[host]" not in s
    assert s["active_energy_joules[host/node-2,idle=unmeasured]"].mean == 3
    assert s["energy_joules[host]"].mean == 10


def test_single_repetition(sweep_dir: Path) -> None:
    """n = 1 gives the mean with sd and interval None."""
    stat = points(sweep_dir)[500].stats["energy_joules[host/node-1]"]
    assert (stat.mean, stat.sd, stat.ci_low, stat.ci_high, stat.n) == (7, None, None, None, 1)


def test_methods_kept_apart(sweep_dir: Path) -> None:
    """A point measured by RAPL once and by the model once reports each method alone."""
    p = points(sweep_dir)[2000]
    rapl, model = p.stats["energy_joules[host]"], p.stats["energy_joules[host,method=model:linear]"]
    assert (rapl.mean, rapl.n, rapl.method, rapl.sd) == (30, 1, "rapl", None)
    assert (model.mean, model.n, model.method, model.sd) == (45, 1, "model:linear", None)
    assert p.stats["energy_joules[host/node-1,method=model:linear]"].mean == 30
    kafka = p.stats["energy_joules[service/kafka@node-1,method=model:linear+cpu-share]"]
    assert kafka.mean == 13
    assert find(p, "energy_joules", {"scope": "host"}, "model:linear") is model
    assert find(p, "energy_joules", {"scope": "host"}, "rapl") is rapl
    assert find(p, "energy_joules", {"scope": "host"}) is rapl
    assert find(p, "energy_joules", {"scope": "host"}, "kwollect") is None
    # The workload's figures have one method and do average over both runs.
    check(p.stats["achieved_rate"], 195, math.sqrt(50), 2, "workload")


def test_failed_and_aborted_excluded(sweep_dir: Path) -> None:
    """The failed run's stored figures (1e9) are in no statistic."""
    p = points(sweep_dir)[2000]
    assert all(stat.mean < 1e8 for stat in p.stats.values())
    assert p.stats["energy_joules[host/node-1]"].mean == 20
    assert all(stat.n <= 2 for stat in p.stats.values())


def test_rapl_keeps_plain_column_whatever_came_first(tmp_path: Path) -> None:
    """RAPL is preferred for the plain column even when the model's run came first."""
    with Store.open(tmp_path) as store:
        exp = store.upsert_experiment("x", "plan.toml", "", 1)
        add_run(
            store,
            exp,
            "m",
            {"k": 1},
            0,
            RunStatus.FINISHED,
            [host("energy_joules", 5, "model:linear", "n1")],
        )
        add_run(
            store,
            exp,
            "r",
            {"k": 1},
            1,
            RunStatus.FINISHED,
            [host("energy_joules", 3, "rapl", "n1")],
        )
        (p,) = summarize(store, "x")
    assert p.stats["energy_joules[host/n1]"].method == "rapl"
    assert p.stats["energy_joules[host/n1,method=model:linear]"].mean == 5


def test_missing_values_skipped(tmp_path: Path) -> None:
    """A figure stored as NaN is left out of its statistic, and n says so."""
    with Store.open(tmp_path) as store:
        exp = store.upsert_experiment("x", "plan.toml", "", 1)
        for i, value in enumerate([1.0, math.nan, 3.0]):
            add_run(
                store,
                exp,
                f"r{i}",
                {},
                i,
                RunStatus.FINISHED,
                [Metric("cpu_seconds", value, "seconds", "psutil")],
            )
        (p,) = summarize(store, "x")
    assert p.n == 3
    assert (p.stats["cpu_seconds"].n, p.stats["cpu_seconds"].mean) == (2, 2.0)


@pytest.mark.parametrize("n", [2, 5, 17, 30])
def test_interval_through_the_store(tmp_path: Path, n: int) -> None:
    """With n repetitions of 0..n−1 J the interval uses t_{0.975, n−1} from the table."""
    with Store.open(tmp_path) as store:
        exp = store.upsert_experiment("x", "plan.toml", "", 1)
        for i in range(n):
            add_run(
                store,
                exp,
                f"r{i}",
                {"k": 1},
                i,
                RunStatus.FINISHED,
                [host("energy_joules", float(i), "rapl", "n1")],
            )
        (p,) = summarize(store, "x")
    check(p.stats["energy_joules[host]"], (n - 1) / 2, math.sqrt(n * (n + 1) / 12), n, "rapl")


def test_unknown_experiment(sweep_dir: Path) -> None:
    """An experiment that is not stored is a StoreError naming the stored ones."""
    with Store.open(sweep_dir, create=False) as store, pytest.raises(StoreError, match="'sweep'"):
        summarize(store, "nope")


def test_json_and_rows(sweep_dir: Path) -> None:
    """to_json nests stats per column; to_rows flattens one rectangular row per point."""
    with Store.open(sweep_dir, create=False) as store:
        found = summarize(store, "sweep")
    data = json.loads(to_json(found))
    assert data == json.loads(json.dumps(to_dicts(found)))
    assert data[1]["params"] == {"rate": 1000, "size": 512}
    assert data[1]["stats"]["energy_joules[host]"]["mean"] == 18
    assert data[0]["stats"]["energy_joules[host]"]["sd"] is None
    flat = to_rows(found)
    assert len({tuple(r) for r in flat}) == 1  # every row has every column, in one order
    row = flat[1]
    assert list(row)[:7] == [
        "experiment",
        "param.rate",
        "param.size",
        "n",
        "n_failed",
        "n_aborted",
        "unit",
    ]
    assert row["energy_joules[host].mean"] == 18 and row["energy_joules[host].method"] == "rapl"
    assert row["energy_joules[host].ci_high"] == pytest.approx(18 + 4.303 * math.sqrt(3), abs=2e-3)
    assert flat[3]["energy_joules[host].mean"] is None
    figures = [c.removesuffix(".mean") for c in row if c.endswith(".mean")]
    assert figures[:3] == ["units", "payload_bytes", "achieved_rate"]


def test_results_summary_api(sweep_dir: Path) -> None:
    """greenflow.results.summary returns the rows as a DataFrame, or dicts without pandas."""
    data = results.summary(sweep_dir)
    records = data.to_dict("records") if hasattr(data, "to_dict") else data
    assert [r["param.rate"] for r in records] == [500, 1000, 2000, 4000]
    assert records[1]["energy_per_message_joules[host].mean"] == pytest.approx(0.018)
    assert len(results.summary(sweep_dir, "sweep")) == 4
    with pytest.raises(StoreError):
        results.summary(sweep_dir, "nope")


def test_idle_uncertainty_widens_the_dynamic_intervals_only(tmp_path: Path) -> None:
    """Three runs with a 0.5 J idle uncertainty each: the active (dynamic) energy's
    interval is √(h² + (1.96 × 0.5)²) wide and records the 0.5 J, the service's share of
    it carries half of it, per message the same ÷ units; the total energy is untouched."""
    from greenflow.api.context import WorkloadResult

    with Store.open(tmp_path) as store:
        exp = store.upsert_experiment("sweep", "plan.toml", "", 1)
        for i, active in enumerate((10.0, 12.0, 14.0)):
            metrics = [
                host("energy_joules", active + 20, "rapl", "n1"),
                host("active_energy_joules", active, "rapl", "n1"),
                host("active_energy_uncertainty_joules", 0.5, "rapl", "n1"),
                host("active_energy_per_message_joules", active / 100, "rapl", "n1"),
                host(
                    "energy_joules",
                    active / 2,
                    "rapl+cpu-share",
                    "n1",
                    scope="service",
                    group="service:kafka",
                ),
            ]
            add_run(
                store,
                exp,
                f"r{i}",
                {"rate": 1},
                i,
                RunStatus.FINISHED,
                metrics,
                WorkloadResult(units=100.0, unit="message"),
            )
        (point,) = summarize(store, "sweep")
    z, half = 1.959963984540054, T_975[2] * 2 / math.sqrt(3)
    active = point.stats["active_energy_joules[host/n1]"]
    assert active.systematic == pytest.approx(0.5)
    assert active.ci_high - active.mean == pytest.approx(math.hypot(half, z * 0.5), rel=1e-3)
    service = point.stats["energy_joules[service/kafka@n1]"]
    assert service.systematic == pytest.approx(0.25)
    per_message = point.stats["active_energy_per_message_joules[host/n1]"]
    assert per_message.systematic == pytest.approx(0.005)
    total = point.stats["energy_joules[host/n1]"]
    assert total.systematic is None
    assert total.ci_high - total.mean == pytest.approx(half, rel=1e-3)
