"""`greenflow report`: a real experiment (command workload, model and process collectors)
with failed and aborted runs, rendered to one HTML file and opened in headless Chromium.

The screenshots are taken into the test's tmp_path; with GREENFLOW_TEST_ARTIFACTS set to a
directory they are copied there too (with the page), for CI to keep as artefacts. They
are never committed."""

from __future__ import annotations

import html
import math
import os
import re
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from greenflow.api import Metric, Sample, WorkloadResult
from greenflow.report.data import load_experiment, power_lines
from greenflow.store import RunStatus, Store
from greenflow.store.db import BaselineRow

pytest.importorskip(
    "matplotlib", reason="the report needs the report extra: pip install 'greenflow-core[report]'"
)

# Sends at the asked rate for about a second; the "broken" target fails at once, as a
# load generator does when the broker is down.
LOADGEN = """
import sys, time
load, target = int(sys.argv[1]), sys.argv[2]
if target == "broken":
    print("connection refused: broker at 127.0.0.1:9092 is down")
    sys.exit(3)
end = time.time() + 1.0
while time.time() < end:
    sum(i * i for i in range(load * 20))
print("sent", load, "messages")
"""

PLAN = """
[experiment]
name = "report-e2e"
repetitions = 2
baseline = "1s"
output = "{out}"
shuffle = false

[platform]
type = "local"

[workload]
type = "command"
command = "{python} {script} {{load}} {{target}}"
params = {{ load = [200, 400], target = ["steady", "broken"] }}
units_pattern = "sent (\\\\d+) messages"
unit = "message"

[[collectors]]
type = "model"
interval_s = 0.2

[[collectors]]
type = "process"
interval_s = 0.2
"""

ABORT_ERROR = "interrupted by the user (SIGINT/SIGTERM)"


def greenflow(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "greenflow", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="module")
def experiment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The results directory of a real 8-run experiment: 4 failed, 1 aborted, 3 finished."""
    tmp = tmp_path_factory.mktemp("report")
    script = tmp / "loadgen.py"
    script.write_text(LOADGEN)
    plan = tmp / "plan.toml"
    plan.write_text(PLAN.format(out=tmp / "out", python=sys.executable, script=script))
    run = greenflow("run", str(plan), cwd=tmp)
    assert run.returncode == 1, run.stderr  # the broken target's runs failed
    with Store.open(tmp / "out") as store:
        exp = store.get_experiment("report-e2e")
        assert exp is not None
        runs = store.get_runs(exp.id)
        assert [r.status for r in runs].count(RunStatus.FAILED) == 4
        # One more attempt of a finished run, interrupted: stored as the runner stores a
        # Ctrl-C (reset, running, aborted with the reason; aborted runs keep no samples).
        last = [r for r in runs if r.status is RunStatus.FINISHED][-1]
        store.reset_run(last.run_id)
        store.set_run_status(last.run_id, RunStatus.RUNNING)
        store.record_phase(exp.id, last.run_id, "prepare", last.phases["prepare"])
        store.record_phase(exp.id, last.run_id, "measure", last.phases["measure"])
        store.set_run_status(last.run_id, RunStatus.ABORTED, ABORT_ERROR)
    yield tmp


@pytest.fixture(scope="module")
def report(experiment: Path) -> Path:
    out = experiment / "report.html"
    made = greenflow("report", str(experiment / "out"), "-o", str(out), cwd=experiment)
    assert made.returncode == 0, made.stderr
    assert "wrote" in made.stderr
    return out


def _without_plan(page: str) -> str:
    return re.sub(r"<pre>.*?</pre>", "", page, flags=re.S)


def test_report_shows_failed_and_aborted_runs(report: Path) -> None:
    """Failed and aborted runs are listed as such, with the first line of their error."""
    page = report.read_text()
    assert page.count('<span class="status-failed">failed</span>') == 4
    assert page.count('<span class="status-aborted">aborted</span>') == 1
    assert page.count('<span class="status-finished">finished</span>') == 3
    assert page.count('<tr class="run-failed">') == 4
    assert "command exited with 3" in page
    assert ABORT_ERROR in page
    assert "4 failed and 1 aborted runs are left out" in page


def test_report_states_methods_and_needs_no_network(report: Path) -> None:
    """Every figure says its method (the model is called an estimate) and the page
    references nothing outside itself."""
    page = report.read_text()
    assert "method: model:linear — an estimate" in page
    assert "method: model:linear+cpu-share" in page  # the breakdown is an attribution
    assert "method: workload" in page
    assert page.count("<figcaption") >= page.count("<svg")
    rest = _without_plan(page)
    assert "http://" not in rest and "https://" not in rest
    for tag in ("<script", "<link", "<img", "<iframe", "@import", " src="):
        assert tag not in rest
    # Every figure kind, and one power plot per run with samples (3 finished + 4 failed)
    # after the plots of the opening and closing baselines.
    for alt in (
        "energy per message vs load",
        "dynamic energy per message vs load",
        "achieved vs asked throughput",
        "energy breakdown by point",
        "power over time: #",
        "power over time: opening baseline",
        "power over time: closing baseline",
    ):
        assert f"<title>{alt}" in page
    assert page.count("<title>power over time: #") == 7
    assert "The workload reports no latency." in page
    assert "interval_s = 0.2" in page  # the plan text, escaped


def _text(page: str) -> str:
    """The page's text outside the plan (which is shown as stored) and the plots."""
    page = re.sub(r"<svg.*?</svg>", " ", _without_plan(page), flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", " ", page))


def test_report_shows_warnings_idle_power_and_dynamic_figures(report: Path) -> None:
    """A real run's report lists its warnings, its idle power per host and baseline with
    the model marked, draws the idle power on the power plots, and has the dynamic panel."""
    page = report.read_text()
    warnings = page[page.index('<h3 id="e0-warnings">') : page.index('<h3 id="e0-idle">')]
    assert "<code>repetitions</code>" in warnings  # 2 repetitions
    idle = page[page.index('<h3 id="e0-idle">') : page.index('<h3 id="e0-per-unit">')]
    assert "Idle power (opening baseline):" in idle and "<i>(model)</i>" in idle
    for cell in (">opening<", ">closing<", "yes, after"):
        assert cell in idle
    assert "idle power is the model's <code>idle_watts</code> input" in idle
    assert "idle, opening" in page and "idle, closing" in page  # lines on the power plots
    assert "<title>dynamic energy per message vs load</title>" in page
    assert "Dynamic J per message" in page


def test_report_has_no_local_paths_or_pids(report: Path, experiment: Path) -> None:
    """Outside the plan's own text, the page has no absolute path (the store, the
    interpreter, the tmp directory...) and no process id; the header names the store
    relative to its directory."""
    page = report.read_text()
    text = _text(page)
    assert str(experiment) not in text and str(Path.home()) not in text
    absolute = re.findall(r"(?<![\w.~/:%-])/(?:[\w.+@%=-]+/)+[\w.+@%=-]*", text)
    assert absolute == []
    assert "out/greenflow.sqlite" in page
    assert not re.search(r"\bpids?\b", text)
    assert "python_executable" in page  # still shown, relative


def test_report_prints_every_column(report: Path) -> None:
    """The page has a print stylesheet: scroll boxes opened, tables wrapped to the page
    width, headers repeated, figures kept whole."""
    page = report.read_text()
    css = page[page.index("@media print") : page.index("</style>")]
    for rule in (
        ".scroll { max-height: none; overflow: visible;",
        "table { width: 100%;",
        "white-space: normal; overflow-wrap: break-word;",
        "thead { display: table-header-group; }",
        "break-inside: avoid",
    ):
        assert rule in css


def _chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.skip(
            "chromium is not installed; bash scripts/setup-system installs Debian's "
            "chromium package"
        )
    return exe


def _browse(exe: str, tmp: Path, *extra: str, url: str) -> subprocess.CompletedProcess[str]:
    profile = tmp / f"profile-{len(list(tmp.glob('profile-*')))}"
    cmd = [
        exe,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--enable-logging=stderr",
        "--v=0",
        *extra,
        url,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=False)


def _keep(*files: Path) -> None:
    """Copy screenshots (and their page) to $GREENFLOW_TEST_ARTIFACTS, when it is set."""
    where = os.environ.get("GREENFLOW_TEST_ARTIFACTS")
    if not where:
        return
    target = Path(where)
    target.mkdir(parents=True, exist_ok=True)
    for f in files:
        shutil.copy(f, target / f.name)


def _console(stderr: str) -> list[str]:
    # Chromium logs every console message (errors included) as `...:CONSOLE:<line>] "..."`;
    # the page has no script, so any such line is a problem.
    return [line for line in stderr.splitlines() if "CONSOLE" in line]


def test_report_renders_in_headless_chromium(report: Path, tmp_path: Path) -> None:
    """Chromium loads the page with no console message, every plot is in the DOM, and
    the screenshot is a picture rather than a blank page."""
    exe = _chromium()
    shot = tmp_path / "report.png"
    taken = _browse(
        exe, tmp_path, f"--screenshot={shot}", "--window-size=1280,4000", url=report.as_uri()
    )
    if not shot.exists():
        probe = _browse(exe, tmp_path, "--dump-dom", url="about:blank")
        if probe.returncode != 0:
            tail = "\n".join(probe.stderr.strip().splitlines()[-5:])
            pytest.skip(f"chromium cannot start here (exit {probe.returncode}): {tail}")
        pytest.fail(f"chromium started but took no screenshot:\n{taken.stderr[-3000:]}")
    assert _console(taken.stderr) == []
    _keep(shot, report)

    dom = _browse(exe, tmp_path, "--dump-dom", url=report.as_uri())
    assert dom.returncode == 0, dom.stderr[-3000:]
    assert _console(dom.stderr) == []
    page = report.read_text()
    assert dom.stdout.count("<svg") == page.count("<svg") >= 10
    # Each plot was parsed as SVG with its drawing inside, not left as text.
    for svg in re.findall(r"<svg.*?</svg>", dom.stdout, flags=re.S):
        assert "<path" in svg and "<text" in svg

    from PIL import Image

    with Image.open(shot) as img:
        rgb = img.convert("RGB")
        assert rgb.size == (1280, 4000)
        # Downsample for speed: plots, shading and text give hundreds of colours; a blank
        # or unstyled page gives a handful.
        small = rgb.resize((320, 1000))
        colours = small.getcolors(maxcolors=1 << 20) or []
        assert len(colours) > 200, len(colours)
        white = sum(n for n, c in colours if min(c) > 245)
        assert white < 0.95 * 320 * 1000


# Run on a copy of the page (the page itself has no script): the print stylesheet applied
# on screen, then every table, figure and listing measured against the page's width.
_PRINT_PROBE = """<script>
addEventListener('load', () => {
  const width = document.documentElement.clientWidth;
  const over = [...document.querySelectorAll('table, figure, pre')]
    .filter(e => e.getBoundingClientRect().right > width + 1)
    .map(e => e.tagName + ':' + Math.round(e.getBoundingClientRect().right));
  document.body.setAttribute('data-overflow', over.join(' ') || 'none');
});
</script>"""


def test_report_fits_a_printed_page(report: Path, tmp_path: Path) -> None:
    """With the print stylesheet, nothing is wider than an A4 landscape page's printable
    width (about 1030 px at 96 dpi; 1000 is checked): no column is cut off on paper."""
    exe = _chromium()
    page = report.read_text().replace("@media print {", "@media all {")
    printed = tmp_path / "printed.html"
    printed.write_text(page.replace("</body>", _PRINT_PROBE + "</body>"))
    dom = _browse(exe, tmp_path, "--window-size=1000,3000", "--dump-dom", url=printed.as_uri())
    assert dom.returncode == 0, dom.stderr[-3000:]
    found = re.search(r'<body[^>]*data-overflow="([^"]*)"', dom.stdout)
    assert found is not None, "the probe did not run"
    assert found.group(1) == "none"
    shot = tmp_path / "report-printed.png"
    _browse(exe, tmp_path, f"--screenshot={shot}", "--window-size=1000,4000", url=printed.as_uri())
    if shot.exists():
        _keep(shot)


def test_report_cli_errors(experiment: Path, tmp_path: Path) -> None:
    """An unknown experiment or x axis is one line of error, exit status 1, no traceback."""
    out = str(tmp_path / "r.html")
    unknown = greenflow("report", str(experiment / "out"), "-e", "nope", "-o", out, cwd=tmp_path)
    assert unknown.returncode == 1
    assert "no experiment 'nope'" in unknown.stderr and "report-e2e" in unknown.stderr
    assert "Traceback" not in unknown.stderr
    axis = greenflow("report", str(experiment / "out"), "-x", "size", "-o", out, cwd=tmp_path)
    assert axis.returncode == 1 and "params.load" in axis.stderr
    missing = greenflow("report", str(tmp_path / "nothing"), "-o", out, cwd=tmp_path)
    assert missing.returncode == 1 and "no GreenFlow store" in missing.stderr


def test_report_without_matplotlib_says_what_to_install(
    experiment: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without matplotlib, `greenflow report` fails with the pip command for the extra."""
    import importlib.util

    from click.testing import CliRunner

    from greenflow.cli import main

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "matplotlib" else real(name, *a),
    )
    result = CliRunner().invoke(
        main, ["report", str(experiment / "out"), "-o", str(tmp_path / "r.html")]
    )
    assert result.exit_code == 1
    assert "pip install 'greenflow-core[report]'" in result.output


def test_help_does_not_import_matplotlib() -> None:
    """`greenflow --help` stays fast: the report's plotting library is imported lazily."""
    code = textwrap.dedent("""
        import sys
        from click.testing import CliRunner
        from greenflow.cli import main
        assert CliRunner().invoke(main, ["--help"]).exit_code == 0
        assert CliRunner().invoke(main, ["report", "--help"]).exit_code == 0
        print(sorted(m for m in sys.modules if m.split(".")[0] == "matplotlib"))
    """)
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]"


# -- a synthesized store: what the command workload does not produce ----------------------


def _synthesize(out: Path) -> None:
    """Two systems × two loads × three repetitions on two hosts with RAPL domains,
    service and load-generator attribution, latency and an asked rate; opening and
    closing baselines per host (RAPL, 3 W idle; the closing ones 10 % higher on n2) and
    two warnings. At 1000/s, redpanda's dynamic energy is ±40 J around 0 between
    repetitions: its interval includes 0."""
    with Store.open(out) as store:
        exp = store.upsert_experiment(
            "compare", "compare.toml", '[workload]\ntarget = ["kafka", "redpanda"]\n', 7
        )
        store.set_provenance(exp, {"axes": {"target": ["kafka", "redpanda"], "load": [1000, 2000]}})
        t = 1.9e9
        order = 0
        for target in ("kafka", "redpanda"):
            for load in (1000, 2000):
                for rep in range(3):
                    run_id = f"{target[0]}{load}{rep}"
                    store.add_run(
                        exp, run_id, {"target": target, "load": load}, rep, order, group="dep"
                    )
                    store.set_run_status(run_id, RunStatus.RUNNING)
                    for phase, at in (
                        ("prepare", t),
                        ("measure", t + 2),
                        ("cooldown", t + 12),
                        ("end", t + 13),
                    ):
                        store.record_phase(exp, run_id, phase, at)
                    samples = [
                        Sample(
                            t + i,
                            "energy_joules",
                            (30.0 + 5 * (2 <= i < 12)) * i,
                            "joules",
                            "rapl",
                            host,
                            {"domain": domain},
                        )
                        for host in ("n1", "n2")
                        for domain in ("package-0", "dram-0")
                        for i in range(14)
                    ]
                    store.add_samples(exp, run_id, samples)
                    energy = 100.0 * (1 + rep * 0.01) * (load / 1000)
                    units = load * 10
                    dynamic = energy - 40.0
                    if (target, load) == ("redpanda", 1000):
                        dynamic = (-40.0, 0.0, 40.0)[rep]
                    metrics = []
                    for host in ("n1", "n2"):
                        h = {"host": host, "scope": "host"}
                        metrics += [
                            Metric(
                                "active_energy_per_message_joules",
                                dynamic / units,
                                "joules",
                                "rapl",
                                h,
                            ),
                            *(
                                Metric(
                                    "energy_per_message_joules",
                                    (energy - 40) * share / units,
                                    "joules",
                                    "rapl+cpu-share",
                                    {"host": host, **labels},
                                )
                                for share, labels in (
                                    (0.6, {"scope": "service", "group": f"service:{target}"}),
                                    (0.3, {"scope": "loadgen", "group": "loadgen:kafka-ingest"}),
                                    (0.1, {"scope": "other"}),
                                )
                            ),
                            Metric("energy_joules", energy, "joules", "rapl", h),
                            Metric(
                                "energy_per_message_joules",
                                energy / (load * 10),
                                "joules",
                                "rapl",
                                h,
                            ),
                            Metric(
                                "idle_energy_joules",
                                40.0,
                                "joules",
                                "rapl",
                                {"host": host, "scope": "idle"},
                            ),
                            Metric(
                                "energy_joules",
                                (energy - 40) * 0.6,
                                "joules",
                                "rapl+cpu-share",
                                {"host": host, "scope": "service", "group": f"service:{target}"},
                            ),
                            Metric(
                                "energy_joules",
                                (energy - 40) * 0.3,
                                "joules",
                                "rapl+cpu-share",
                                {"host": host, "scope": "loadgen", "group": "loadgen:kafka-ingest"},
                            ),
                            Metric(
                                "energy_joules",
                                (energy - 40) * 0.1,
                                "joules",
                                "rapl+cpu-share",
                                {"host": host, "scope": "other"},
                            ),
                        ]
                    metrics.append(Metric("asked_messages_per_s", float(load), "", "workload"))
                    store.add_metrics(run_id, metrics)
                    store.set_result(
                        run_id,
                        WorkloadResult(
                            load * 10.0,
                            "message",
                            achieved_rate=load * 0.98,
                            latency_ms={"p50": 2.0 + rep, "p99": 9.0 + rep, "max": 30.0},
                        ),
                    )
                    store.set_run_status(run_id, RunStatus.FINISHED)
                    order += 1
                    t += 20
        for host, closing in (("n1", 3.0), ("n2", 3.3)):
            for kind, start, watts in (("opening", 1.9e9 - 20, 3.0), ("closing", t, closing)):
                store.add_baseline(
                    BaselineRow(
                        exp,
                        "dep",
                        kind,
                        start,
                        start + 10,
                        host,
                        "rapl",
                        watts,
                        0.05,
                        10,
                        True,
                        2.0,
                    )
                )
        # The opening baseline's readings, 1.5 W per domain (3 W per host).
        base = 1.9e9 - 20
        store.add_samples(
            exp,
            None,
            [
                Sample(base + i, "energy_joules", 1.5 * i, "joules", "rapl", host, {"domain": d})
                for host in ("n1", "n2")
                for d in ("package-0", "dram-0")
                for i in range(11)
            ],
        )
        store.add_warning(exp, None, "repetitions", "only 3 repetitions")
        store.add_warning(exp, "k10000", "background-load:n1", "9% of n1's busy CPU time")


def test_report_of_compared_systems(tmp_path: Path) -> None:
    """Systems of a target axis are separate series; multi-host RAPL, attribution, latency
    and the asked rate all appear, with 95 % intervals computed from the repetitions."""
    from greenflow.report import ReportOptions, render_report

    _synthesize(tmp_path / "out")
    with Store.open(tmp_path / "out", create=False) as store:
        exp = store.get_experiment("compare")
        assert exp is not None
        data = load_experiment(store, exp)
        assert data.x_axis == "load" and data.series_axes == ["target"]
        assert [(p.series, p.x) for p in data.points] == [
            ("kafka", 1000),
            ("kafka", 2000),
            ("redpanda", 1000),
            ("redpanda", 2000),
        ]
        first = data.runs[0]
        assert first.energy is not None and first.energy.value == pytest.approx(200.0)
        assert first.per_unit is not None and first.per_unit.value == pytest.approx(0.02)
        assert first.asked is not None and first.asked.value == 1000.0
        assert set(first.parts) == {"service:kafka", "loadgen:kafka-ingest", "other", "idle"}
        assert math.fsum(first.parts.values()) == pytest.approx(200.0)
        # Two hosts, each package + dram at 35 W during MEASURE.
        lines = power_lines(store.samples(exp.id, first.run.run_id, "energy_joules"))
        assert [line.host for line in lines] == ["n1", "n2"]
        assert lines[0].points[5][1] == pytest.approx(70.0)

        # kafka's own figures, over both hosts: (200 − 80) × 0.6 J of the host's 200 J.
        kafka = first.groups["service:kafka"]
        assert list(first.groups) == ["service:kafka", "loadgen:kafka-ingest", "other"]
        assert kafka.energy == pytest.approx(72.0) and kafka.share == pytest.approx(0.36)
        assert kafka.per_unit == pytest.approx(0.0072)
        assert first.active_per_unit is not None
        assert first.active_per_unit.value == pytest.approx(0.012)  # (100 − 40) J × 2 hosts
        n2 = next(i for i in data.idle if i.host == "n2")
        assert n2.opening is not None and n2.closing is not None
        assert n2.drift == pytest.approx(0.3) and n2.runs == 12 and n2.first_order == 0

        page = render_report(store, ReportOptions(power_plots=2))
    assert "asked: workload (asked_messages_per_s)" in page
    assert "method: rapl — measured" in page and "method: rapl+cpu-share" in page
    assert "Showing 2 of the 12 runs" in page
    # The system under test's own J per unit first, then the host's, then the dynamic.
    order = [
        page.index(f"<title>{alt}</title>")
        for alt in (
            "service kafka energy per message vs load",
            "service redpanda energy per message vs load",
            "energy per message vs load",
            "dynamic energy per message vs load",
            "energy breakdown by point",
            "latency p50",
            "latency p99",
        )
    ]
    assert order == sorted(order)
    # One latency percentile per panel, each saying what window it covers.
    assert page.count("does not know which window the workload measured it over") == 2
    # redpanda's dynamic energy at 1000/s (−40, 0, 40 J) has an interval across zero:
    # drawn below zero and named.
    assert "includes 0</strong> at redpanda, load=1000" in page
    # Host energy of kafka at 1000/s over its 3 repetitions (200, 202, 204 J; t(0.975, 2)
    # = 4.3027), as greenflow.stats summarizes it, in the points table.
    assert 4.3027 * 2.0 / math.sqrt(3) == pytest.approx(4.968, abs=1e-3)
    assert '<td class="num">202.0 ± 5.0</td>' in page
    # Idle power as a value, per host and deployment, opening and closing, and its drift.
    assert "Idle power (opening baseline): <b>n1</b> 3 W, <b>n2</b> 3 W." in page
    assert "+0.3 W (+10.0 %)" in page
    # ... as a line on the power plots, and the baseline's own power on the same axis.
    assert "n2 idle, closing 3.3 W" in page and "<title>power over time: opening baseline" in page
    # Warnings: the experiment's, then the runs' by their order and point.
    warnings = page[page.index('<ul class="warnings">') :]
    assert warnings.index("only 3 repetitions") < warnings.index("run #0 (kafka, load=1000)")
