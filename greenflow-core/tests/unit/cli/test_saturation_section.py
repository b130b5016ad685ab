"""``greenflow report`` on protocol experiments: a "Saturation curve" section with, per point
of the other axes, the conclusion and its confirmation interval, a figure of achieved rate,
p99 and J per unit against the asked load that names its energy method, and each probe's
verdict."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from protocol_records import GAVE_UP, kafka_like, store_protocol_experiment

from greenflow.builtin.protocols import (
    MaxThroughputConfig,
    MaxThroughputProtocol,
    ProportionalityConfig,
    ProportionalityProtocol,
)
from greenflow.cli._app import App
from greenflow.cli.report import report
from greenflow.store import RunStatus, Store

pytest.importorskip(
    "matplotlib", reason="the report needs the report extra: pip install 'greenflow-core[report]'"
)


def render(out: Path, tmp_path: Path) -> str:
    page = tmp_path / "report.html"
    result = CliRunner().invoke(
        report, [str(out), "-o", str(page), "--power-plots", "0"], obj=App()
    )
    assert result.exit_code == 0, result.output
    return page.read_text(encoding="utf-8")


def section(page: str) -> str:
    """The saturation section, from its heading to the next part's."""
    start = page.index('<h3 id="e0-saturation">Saturation curve</h3>')
    return page[start : page.index('<h3 id="e0-per-unit">')]


def figures(part: str) -> list[str]:
    return re.findall(r"<figure>.*?</figure>", part, flags=re.S)


@pytest.fixture
def searched(tmp_path: Path) -> Path:
    """A max-throughput search over two message sizes (capacities 3000/s and 1200/s)."""
    out = tmp_path / "greenflow-output"
    store_protocol_experiment(
        out,
        MaxThroughputProtocol(MaxThroughputConfig(start=1000)),
        "max-throughput",
        [({"size": 100}, kafka_like(3000)), ({"size": 1000}, kafka_like(1200))],
    )
    return out


def test_section_states_the_maximum_and_its_confirmation_interval(
    searched: Path, tmp_path: Path
) -> None:
    """After the idle power and before the energy figures, one part per message size with
    the confirmed maximum, the confirmations' mean achieved rate, its 95 % interval and how
    many sustained, the first unsustained load and the p99 bound; the header links to it."""
    page = render(searched, tmp_path)
    assert page.index('<h3 id="e0-idle">') < page.index('<h3 id="e0-saturation">')
    assert '<a href="#e0-saturation">saturation curve</a>' in page
    part = section(page)
    assert part.index("<h4>size=100</h4>") < part.index("<h4>size=1000</h4>")
    small = part[: part.index("<h4>size=1000</h4>")]
    assert "<b>3,000</b> messages/s" in small
    text = html.unescape(re.sub(r"<[^>]+>", "", small))
    assert "achieved 2,988 (95 % CI 2,973–3,003) messages/s" in text
    assert "3/3 sustained" in text
    assert "first unsustained load3,125 messages/s" in text
    assert "417 ms (50 × 8.33 ms at the lowest load)" in text
    assert "<b>1,188</b> messages/s" in part[part.index("<h4>size=1000</h4>") :]


def test_figure_has_three_panels_and_names_its_energy_method(
    searched: Path, tmp_path: Path
) -> None:
    """Each size's figure draws achieved (with achieved = asked), p99 (with its bound) and
    J per message against the asked load, marks the confirmed maximum and the first
    unsustained load, and names the energy's method in its legend and its caption."""
    part = section(render(searched, tmp_path))
    found = figures(part)
    assert len(found) == 2
    small = found[0]
    assert "<title>saturation curve: size=100</title>" in small
    for label in (
        "achieved = asked",
        "asked ± 0.05",
        "confirmed maximum 3,000",
        "first unsustained 3,125",
        "p99 bound 417 ms",
        "host J per message (model:linear)",
        "services J per message (model:linear+cpu-share)",
        "failed run (no figures)",
        "hollow: not sustained",
        "asked load (messages/s)",
    ):
        assert html.escape(label, quote=False) in small, label
    caption = small[small.index("<figcaption>") :]
    assert "method: model:linear — an estimate" in caption
    assert "method: model:linear+cpu-share — an estimate" in caption
    assert "method: workload" in caption


def test_probes_table_says_why_each_probe_was_not_sustained(searched: Path, tmp_path: Path) -> None:
    """Every probe is a row with its verdict and, when not sustained, each reason with the
    figures behind it, its J per message with the method, and its run id."""
    part = section(render(searched, tmp_path))
    text = html.unescape(re.sub(r"<[^>]+>", " ", part))
    assert "above-asked: achieved 1.120 × asked, above 1 + 0.05" in text
    assert "latency: p99 600 ms > bound 417 ms" in text
    assert f"failed: run failed: {GAVE_UP}" in text
    assert "0.00267 J  (model:linear)" in text
    assert "size100-3125-0" in text
    assert (
        part.count('<span class="bad">no</span>') == 4 + 3
    )  # 3125, 3250, 3500, 4000; 1250, 1500, 2000


def test_record_is_summarised_in_provenance_and_load_is_the_x_axis(
    searched: Path, tmp_path: Path
) -> None:
    """The provenance table points to the section rather than flattening the record, and
    the other figures use the protocol's axis (the asked load) as their x axis."""
    page = render(searched, tmp_path)
    assert "protocol.conclusions[" not in page
    assert "max-throughput: 2 conclusions" in page
    assert "x axis: load" in page


def test_proportionality_draws_its_levels_and_maximum(tmp_path: Path) -> None:
    """proportionality's record reads the same way: its searched maximum, its levels (as
    diamonds on the curve) and the search's confirmations."""
    out = tmp_path / "o"
    store_protocol_experiment(
        out,
        ProportionalityProtocol(ProportionalityConfig(levels=[50.0, 100.0])),
        "proportionality",
        [({}, kafka_like(3000))],
        name="prop",
    )
    part = section(render(out, tmp_path))
    assert "<b>3,000</b> messages/s" in part
    assert "50, 100 % of the maximum" in part
    (figure,) = figures(part)
    assert "maximum 3,000" in figure and "level ◆" in figure
    assert "method: model:linear" in figure


def test_no_section_without_a_conclusion(tmp_path: Path) -> None:
    """An experiment without a protocol, or with the idle one, has no saturation section."""
    out = tmp_path / "o"
    with Store.open(out) as store:
        exp = store.upsert_experiment("idle", "plan.toml", "", 1)
        store.add_run(exp, "i0", {"protocol": "idle"}, 0, 0)
        store.set_run_status("i0", RunStatus.RUNNING)
        store.set_run_status("i0", RunStatus.FINISHED)
        store.set_provenance(
            exp, {"protocol": {"type": "idle", "conclusions": [{"base": {}, "idle_runs": 1}]}}
        )
    page = render(out, tmp_path)
    assert "e0-saturation" not in page and "Saturation curve" not in page
    assert "protocol.conclusions[0].idle_runs" in page
