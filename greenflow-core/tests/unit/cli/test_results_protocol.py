"""``greenflow results`` on protocol experiments: the concluded maximum per point of the other
axes with its confirmation interval, each point's saturation curve with the reasons a probe
was not sustained and its J per unit with the method, and the record in ``--json``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from protocol_records import GAVE_UP, kafka_like, store_protocol_experiment

from greenflow.api import WorkloadResult
from greenflow.builtin.protocols import (
    MaxThroughputConfig,
    MaxThroughputProtocol,
    ProportionalityConfig,
    ProportionalityProtocol,
)
from greenflow.cli._app import App
from greenflow.cli.results import results
from greenflow.store import RunStatus, Store


@pytest.fixture
def searched(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    """A max-throughput search from 1000/s over two message sizes: 100 (capacity 3000/s)
    and 1000 (capacity 1200/s); above capacity the generator catches up (1.12 × asked,
    p99 600 ms, behind schedule) and from 4/3 × capacity the runs fail. Returns the store's
    directory and the protocol record stored."""
    out = tmp_path / "greenflow-output"
    record = store_protocol_experiment(
        out,
        MaxThroughputProtocol(MaxThroughputConfig(start=1000)),
        "max-throughput",
        [({"size": 100}, kafka_like(3000)), ({"size": 1000}, kafka_like(1200))],
    )
    return out, record


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner(env={"COLUMNS": "300"}).invoke(results, list(args), obj=App())
    return result.exit_code, result.stdout


def table(out: str, title: str) -> tuple[list[str], list[list[str]]]:
    """The header and rows of the table whose title contains ``title``."""
    lines = out.splitlines()
    start = next((i for i, line in enumerate(lines) if title in line), None)
    assert start is not None, f"no table titled {title!r} in:\n{out}"
    head: list[str] = []
    rows: list[list[str]] = []
    for line in lines[start + 1 :]:
        if line.startswith("└"):
            break
        cells = [c.strip() for c in line.replace("┃", "│").split("│")[1:-1]]
        if not cells:
            continue
        if not head:
            head = cells
        else:
            rows.append(cells)
    return head, rows


def by_first(head: list[str], rows: list[list[str]], first: str) -> dict[str, str]:
    (row,) = [r for r in rows if r[0] == first]
    return dict(zip(head, row, strict=True))


def test_max_throughput_table_has_the_maximum_its_interval_and_the_bound(
    searched: tuple[Path, dict[str, Any]],
) -> None:
    """One row per message size: the confirmed maximum, the confirmations' mean achieved
    rate with its 95 % interval and how many of the wanted runs sustained it, the first
    unsustained load and the p99 bound with where it came from."""
    out, record = searched
    code, text = invoke(str(out))
    assert code == 0, text
    head, rows = table(text, "saturation: max throughput (max-throughput, axis load, messages/s)")
    assert head == [
        "size",
        "max sustained",
        "confirmation achieved: mean (95 % CI)",
        "confirmations",
        "first unsustained",
        "p99 bound",
    ]
    small = by_first(head, rows, "100")
    assert small["max sustained"] == "3,000"
    # 2994, 2988 and 2982/s: mean 2988, t(0.975, 2) × 6 / √3 = 14.9.
    conf = record["conclusions"][0]["confirmation"]
    assert (conf["achieved_ci_low"], conf["achieved_ci_high"]) == pytest.approx(
        (2973.1, 3002.9), abs=0.05
    )
    assert small["confirmation achieved: mean (95 % CI)"] == "2,988 (95 % CI 2,973–3,003)"
    assert small["confirmations"] == "3/3 sustained"
    assert small["first unsustained"] == "3,125"
    # 50 × the p99 at the lowest load, 5 + 10 × 1000/3000 ms.
    assert small["p99 bound"] == "417 ms (50 × 8.33 ms at the lowest load)"
    large = by_first(head, rows, "1000")
    assert large["max sustained"] == "1,188" and large["first unsustained"] == "1,250"
    assert "sustained: achieved ÷ asked within 1 ± 0.05;" in text


def test_saturation_curve_shows_every_probe_why_not_and_the_energy_method(
    searched: tuple[Path, dict[str, Any]],
) -> None:
    """Each size's curve lists every probe in order of asked load: the achieved rate and
    its ratio, p99, J per message with its method (the host's and the service's), whether
    it was sustained and, if not, why."""
    out, _ = searched
    code, text = invoke(str(out))
    assert code == 0, text
    head, rows = table(text, "saturation curve of size=100 (10 runs)")
    assert [r[0] for r in rows] == [
        "1,000",
        "2,000",
        *["3,000"] * 4,
        "3,125",
        "3,250",
        "3,500",
        "4,000",
    ]
    points = [dict(zip(head, r, strict=True)) for r in rows]
    assert [p["role"] for p in points[2:6]] == [
        "search",
        "confirmation",
        "confirmation",
        "confirmation",
    ]
    first = points[0]
    assert first["achieved messages/s"] == "1,000" and first["÷ asked"] == "1.000"
    assert first["p99 ms"] == "8.33" and first["sustained"] == "yes" and first["why not"] == ""
    # 20 J idle + 2 mJ per message over 10,000 messages; kafka 60 % of the dynamic part.
    assert first["host J per message"] == "0.004 J (model:linear)"
    assert first["services J per message"] == "0.0012 J (model:linear+cpu-share)"
    over = points[6]
    assert over["achieved messages/s"] == "3,500" and over["÷ asked"] == "1.120"
    assert over["sustained"] == "no"
    assert over["why not"] == "above-asked, latency, behind-schedule"
    assert points[-1]["sustained"] == "no" and points[-1]["why not"] == "failed"
    _, large = table(text, "saturation curve of size=1000 (9 runs)")
    assert large[-3][-1] == "above-asked, behind-schedule"


def test_summary_shows_the_conclusion_too(searched: tuple[Path, dict[str, Any]]) -> None:
    """--summary prints the maximum and the curve under its table of points."""
    out, _ = searched
    code, text = invoke(str(out), "--summary")
    assert code == 0, text
    head, rows = table(text, "saturation: max throughput")
    assert by_first(head, rows, "100")["max sustained"] == "3,000"
    assert "saturation curve of size=1000" in text


def test_json_gives_each_probe_its_point_and_conclusion(
    searched: tuple[Path, dict[str, Any]],
) -> None:
    """--json stays an array of run objects; each probe's has the protocol's type, its
    point's conclusion (without the curve: the runs are the curve) and its own curve point
    as stored; runs of an experiment without a protocol have null."""
    out, record = searched
    with Store.open(out) as store:
        exp = store.upsert_experiment("plain", "plain.toml", "", 1)
        store.add_run(exp, "plain-0", {"load": 1}, 0, 0)
    code, text = invoke(str(out), "--json")
    assert code == 0, text
    data = json.loads(text)
    assert isinstance(data, list) and len(data) == 20
    plain = [r for r in data if r["experiment"] == "plain"]
    assert [r["protocol"] for r in plain] == [None]
    probes = {r["run_id"]: r["protocol"] for r in data if r["experiment"] == "saturation"}
    stored = {pt["run_id"]: (c, pt) for c in record["conclusions"] for pt in c["curve"]}
    assert probes.keys() == stored.keys()
    for run_id, found in probes.items():
        conclusion, point = stored[run_id]
        assert found["type"] == "max-throughput"
        assert found["point"] == point
        assert found["conclusion"] == {k: v for k, v in conclusion.items() if k != "curve"}
    top = probes["size100-3000-1"]
    assert top["conclusion"]["max_sustained"] == 3000
    assert top["conclusion"]["confirmation"]["achieved_mean"] == pytest.approx(2988)
    assert probes["size100-4000-0"]["point"]["failures"][0]["reason"] == "failed"
    assert GAVE_UP in probes["size100-4000-0"]["point"]["failures"][0]["detail"]


def test_unconfirmed_and_unsustained_say_so(tmp_path: Path) -> None:
    """A maximum whose confirmations did not all run reads "not confirmed: candidate X";
    a system that sustained nothing reads "none sustained", with no interval."""
    out = tmp_path / "o"
    record = store_protocol_experiment(
        out,
        MaxThroughputProtocol(MaxThroughputConfig(start=1000)),
        "max-throughput",
        [({"size": 100}, kafka_like(3000))],
    )
    # As an experiment stopped between a search and its confirmations would have it.
    (c,) = record["conclusions"]
    c.update(max_sustained=None, confirmed=False)
    with Store.open(out) as store:
        exp = store.get_experiment("saturation")
        assert exp is not None
        store.set_provenance(exp.id, {**exp.provenance, "protocol": record})
    code, text = invoke(str(out))
    assert code == 0, text
    head, rows = table(text, "max throughput")
    assert by_first(head, rows, "100")["max sustained"] == "not confirmed: candidate 3,000"

    def half(asked: float, _rep: int) -> WorkloadResult:
        return WorkloadResult(units=asked * 5, unit="message", achieved_rate=asked / 2)

    other = tmp_path / "none"
    store_protocol_experiment(
        other,
        MaxThroughputProtocol(MaxThroughputConfig(start=8)),
        "max-throughput",
        [({"size": 100}, half)],
    )
    code, text = invoke(str(other))
    assert code == 0, text
    head, rows = table(text, "max throughput")
    row = by_first(head, rows, "100")
    assert row["max sustained"] == "none sustained"
    assert row["confirmation achieved: mean (95 % CI)"] == row["confirmations"] == ""
    assert "below-asked" in text


def test_proportionality_shows_its_maximum_levels_and_curve(tmp_path: Path) -> None:
    """proportionality's record (its search under "search", the levels on the curve) reads
    the same way: the maximum it searched and confirmed, the levels, every probe."""
    out = tmp_path / "o"
    store_protocol_experiment(
        out,
        ProportionalityProtocol(ProportionalityConfig(levels=[50.0, 100.0])),
        "proportionality",
        [({}, kafka_like(3000))],
        name="prop",
    )
    code, text = invoke(str(out))
    assert code == 0, text
    head, rows = table(text, "prop: max throughput (proportionality, axis load, messages/s)")
    (row,) = [dict(zip(head, r, strict=True)) for r in rows]
    assert row["maximum (100 %)"] == "3,000"
    assert row["confirmations"] == "3/3 sustained" and row["first unsustained"] == "3,125"
    assert "levels: 50, 100 % of the maximum" in text
    head, rows = table(text, "saturation curve (12 runs)")
    levels = [dict(zip(head, r, strict=True)) for r in rows if r[2] == "level"]
    assert [(p["asked"], p["sustained"]) for p in levels] == [("1,500", "yes"), ("3,000", "yes")]


def test_idle_protocol_has_no_max_throughput_table(tmp_path: Path) -> None:
    """The idle protocol's record has no maximum and no curve: no table for it."""
    out = tmp_path / "o"
    with Store.open(out) as store:
        exp = store.upsert_experiment("idle", "plan.toml", "", 1)
        store.add_run(exp, "i0", {"protocol": "idle"}, 0, 0)
        store.set_run_status("i0", RunStatus.RUNNING)
        store.set_run_status("i0", RunStatus.FINISHED)
        record = {"type": "idle", "conclusions": [{"base": {}, "idle_runs": 1}]}
        store.set_provenance(exp, {"protocol": record})
    code, text = invoke(str(out))
    assert code == 0, text
    assert "max throughput" not in text and "saturation curve" not in text
