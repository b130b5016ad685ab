"""`greenflow report` and `greenflow results` on a store made by a real local Kafka run:
a short version of examples/local-kafka.toml (one broker, two loads, the warm-up run, the
opening and closing baselines), then the page's panels and the results' sections."""

from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

from greenflow.store import Store
from greenflow.testing.cli import run_greenflow
from greenflow_kafka.distribution import KafkaDistribution

pytest.importorskip(
    "matplotlib", reason="the report needs the report extra: pip install 'greenflow-core[report]'"
)
# The module's experiment (a broker, a warm-up run, two baselines that wait for quiet, two
# runs) takes about a minute, more on a busy machine; it runs in the first test's setup.
pytestmark = pytest.mark.timeout(400)

PLAN = """\
[experiment]
name = "kafka-report"
repetitions = 1
seed = 3
output = "{output}"
baseline = "2s"
cooldown = "0s"

[platform]
type = "local"

[[services]]
type = "kafka"
version = "{version}"
brokers = 1
heap = "384m"

[workload]
type = "kafka-ingest"
load = [500, 1000]
message_size = 100
warmup = "2s"
duration = "3s"
tail = "0.5s"
producer_heap = "256m"
"""


def _stored(output: Path, figure: str) -> bool:
    """Whether a run's result has ``figure`` among the workload's figures."""
    with Store.open(output, create=False) as store:
        return any(
            (res := store.result(r.run_id)) is not None and figure in res.metrics
            for e in store.experiments()
            for r in store.get_runs(e.id)
        )


@attrs.frozen
class Made:
    root: Path
    output: Path
    run: subprocess.CompletedProcess[str]
    report: Path
    made: subprocess.CompletedProcess[str]
    results: subprocess.CompletedProcess[str]


def _greenflow(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Wide enough that the results table is not folded."""
    return run_greenflow(root, *args, env={**os.environ, "COLUMNS": "250"})


@pytest.fixture(scope="module")
def made(
    tmp_path_factory: pytest.TempPathFactory, kafka_distribution: KafkaDistribution
) -> Iterator[Made]:
    """A real 2-run experiment against one local broker, its report and its results."""
    root = tmp_path_factory.mktemp("kafka-report")
    output = root / "greenflow-output"
    (root / "plan.toml").write_text(PLAN.format(output=output, version=kafka_distribution.version))
    run = _greenflow(root, "run", "plan.toml")
    assert run.returncode == 0, f"{run.stdout}\n{run.stderr}"
    report = root / "report.html"
    made = _greenflow(root, "report", str(output), "-o", str(report))
    results = _greenflow(root, "results", str(output))
    yield Made(root, output, run, report, made, results)


def test_report_of_a_real_kafka_run(made: Made) -> None:
    """The page has kafka's own J per message first, then the host's and the dynamic one,
    the idle power (opening and closing baselines, model-marked) as a value and as lines,
    p50 and p99 panels saying the producers' window, the breakdown and the warnings."""
    assert made.made.returncode == 0, made.made.stderr
    page = made.report.read_text()
    order = [
        page.index(f"<title>{alt}</title>")
        for alt in (
            "service kafka energy per message vs load",
            "energy per message vs load",
            "dynamic energy per message vs load",
            "energy breakdown by point",
            "achieved vs asked throughput",
            "latency p50",
            "latency p99",
        )
    ]
    assert order == sorted(order)
    # Each latency caption says its window: the perf tool's steady state, or, with the
    # load generator that stores latency_samples, the intervals inside MEASURE.
    window = "inside MEASURE" if _stored(made.output, "latency_samples") else "not MEASURE"
    assert page.count("The <code>kafka-ingest</code> workload's latency is") == 2
    assert window in page
    for part in ("service:kafka", "loadgen:kafka-ingest", "other", "idle"):
        assert f">{part}<" in page  # in the breakdown's legend
    idle = page[page.index('<h3 id="e0-idle">') : page.index('<h3 id="e0-per-unit">')]
    assert ">opening<" in idle and ">closing<" in idle
    assert "<title>power over time: opening baseline</title>" in page
    assert page.count("idle, opening") >= 2  # a line on each run's power plot
    warnings = page[page.index('<h3 id="e0-warnings">') : page.index('<h3 id="e0-idle">')]
    assert "<code>repetitions</code>" in warnings  # 1 repetition
    # Nothing of this machine's layout outside the plan's own text.
    text = re.sub(r"<pre>.*?</pre>|<svg.*?</svg>", " ", page, flags=re.S)
    text = html.unescape(re.sub(r"<[^>]+>", " ", text))
    assert str(made.root) not in text and str(Path.home()) not in text
    assert re.findall(r"(?<![\w.~/:%-])/(?:[\w.+@%=-]+/)+[\w.+@%=-]*", text) == []
    assert "greenflow-output/greenflow.sqlite" in page
    where = os.environ.get("GREENFLOW_TEST_ARTIFACTS")
    if where:  # for CI to keep; never committed
        Path(where).mkdir(parents=True, exist_ok=True)
        shutil.copy(made.report, Path(where) / "kafka-report.html")


def test_results_of_a_real_kafka_run(made: Made) -> None:
    """`greenflow results` shows kafka's J per message before the host's, the idle power
    per host with both baselines, and the repetitions warning."""
    assert made.results.returncode == 0, made.results.stderr
    out = made.results.stdout
    header = next(line for line in out.splitlines() if "kafka J per message" in line)
    assert header.index("kafka J per message") < header.index("host J per message")
    assert header.index("host J per message") < header.index("loadgen % of host")
    assert "idle power per host" in out
    assert "(model)" in out or "rapl" in out
    assert "repetitions:" in out
