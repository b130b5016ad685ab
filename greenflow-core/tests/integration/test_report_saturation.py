"""A real max-throughput experiment (``local``, a ``command`` workload emulating a system of
known capacity whose load generator bursts once saturated, the model collector for energy)
shown by ``greenflow results`` and ``greenflow report``, and the report opened in headless
Chromium.

No assertion depends on timing: the plan's tolerance (0.5) is wide enough that scheduling
noise cannot flip a verdict, and the checks compare what is shown with what the protocol
stored. Screenshots go to the test's tmp_path (and $GREENFLOW_TEST_ARTIFACTS when set)."""

from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from greenflow.report.conclusions import amount, interval_text, read_conclusions
from greenflow.store import Store

pytest.importorskip(
    "matplotlib", reason="the report needs the report extra: pip install 'greenflow-core[report]'"
)

CAPACITY = 3000
PLAN = """
[experiment]
name = "saturation"
baseline = 0
output = "{out}"

[platform]
type = "local"

[workload]
type = "command"
# One second of work at the asked rate; past the capacity, a backlog drained: 5 × asked.
command = "python3 -c 'import sys, time; l = float(sys.argv[1]); time.sleep(1.0); print(\\"processed\\", int(l if l <= {cap} else 5 * l))' {{load}}"
params = {{ load = 1 }}
units_pattern = "processed (\\\\d+)"
unit = "item"

[protocol]
type = "max-throughput"
axis = "params.load"
start = 1000
tolerance = 0.5

[[collectors]]
type = "model"
interval_s = 0.2
"""


def greenflow(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "greenflow", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={**os.environ, "COLUMNS": "300"},
    )


@pytest.fixture(scope="module")
def experiment(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """The results directory of the search and the protocol record it stored."""
    tmp = tmp_path_factory.mktemp("saturation")
    plan = tmp / "plan.toml"
    plan.write_text(PLAN.format(out=tmp / "out", cap=CAPACITY))
    run = greenflow("run", str(plan), cwd=tmp)
    assert run.returncode == 0, run.stderr
    with Store.open(tmp / "out") as store:
        exp = store.get_experiment("saturation")
        assert exp is not None
        return tmp, exp.provenance


def test_results_shows_the_stored_maximum_and_the_curve_with_its_method(
    experiment: tuple[Path, dict[str, Any]],
) -> None:
    """The max throughput table has the stored maximum and its confirmation interval; the
    curve has every probe, the J per item with the model named, and why the bursts failed."""
    tmp, provenance = experiment
    (c,) = read_conclusions(provenance)
    assert c.maximum is not None and c.maximum <= CAPACITY
    shown = greenflow("results", str(tmp / "out"), cwd=tmp)
    assert shown.returncode == 0, shown.stderr
    text = shown.stdout
    table = text[text.index("saturation: max throughput (max-throughput, axis params.load") :]
    row = next(line for line in table.splitlines() if f"│ {amount(c.maximum)} " in line)
    assert interval_text(c.confirmation) in row and "3/3 sustained" in row
    curve = text[text.index("saturation curve (") :]
    assert curve.count("J (model:") == sum(p.achieved is not None for p in c.curve)
    assert "above-asked" in curve


def test_report_draws_the_saturation_curve_and_chromium_renders_it(
    experiment: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    """The report's saturation section has the figure with the energy method named, and
    Chromium loads the page with no console message and every plot parsed as SVG."""
    tmp, provenance = experiment
    (c,) = read_conclusions(provenance)
    page = tmp_path / "report.html"
    made = greenflow("report", str(tmp / "out"), "-o", str(page), cwd=tmp)
    assert made.returncode == 0, made.stderr
    text = page.read_text()
    part = text[text.index('<h3 id="e0-saturation">') : text.index('<h3 id="e0-per-unit">')]
    assert f"<b>{amount(c.maximum)}</b> items/s" in part
    (figure,) = re.findall(r"<figure>.*?</figure>", part, flags=re.S)
    method = next(p.energy_method for p in c.curve if p.energy_method)
    assert method is not None and method.startswith("model:")
    assert html.escape(f"host J per item ({method})", quote=False) in figure
    assert f"method: {method} — an estimate" in figure

    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.skip("chromium is not installed; bash scripts/setup-system installs it")
    shot = tmp_path / "saturation.png"
    taken = _browse(exe, tmp_path, f"--screenshot={shot}", "--window-size=1280,3000", url=page)
    if not shot.exists():
        probe = _browse(exe, tmp_path, "--dump-dom", url=None)
        if probe.returncode != 0:
            pytest.skip(f"chromium cannot start here (exit {probe.returncode})")
        pytest.fail(f"chromium started but took no screenshot:\n{taken.stderr[-3000:]}")
    assert [line for line in taken.stderr.splitlines() if "CONSOLE" in line] == []
    where = os.environ.get("GREENFLOW_TEST_ARTIFACTS")
    if where:
        Path(where).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(where) / shot.name)
    dom = _browse(exe, tmp_path, "--dump-dom", url=page)
    assert dom.returncode == 0, dom.stderr[-3000:]
    assert dom.stdout.count("<svg") == text.count("<svg")
    assert "<title>saturation curve</title>" in dom.stdout


def _browse(exe: str, tmp: Path, *extra: str, url: Path | None) -> subprocess.CompletedProcess[str]:
    profile = tmp / f"profile-{len(list(tmp.glob('profile-*')))}"
    cmd = [
        exe,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        f"--user-data-dir={profile}",
        "--enable-logging=stderr",
        "--v=0",
        *extra,
        url.as_uri() if url is not None else "about:blank",
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=False)
