"""The ``prometheus`` collector against a real Prometheus scraping a real exporter.

The exporter (conftest.py) serves a counter that rises at exactly 50 J/s, so every
figure the collector returns can be checked against the clock. What is left is scrape
timing: Prometheus answers a range query at time t with the last value it scraped at or
before t, at most one scrape interval old, and the exporter computes its value a few
milliseconds after the scrape's timestamp. The tolerances below are stated in those terms.
"""

from __future__ import annotations

import itertools
import socket
import statistics
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import attrs
import pytest

from greenflow.api import CollectorContext, Inventory, Sample, Window
from greenflow.builtin.prometheus import PrometheusCollector, PrometheusCollectorConfig
from greenflow.errors import CollectorError
from greenflow.testing import ENERGY_METHODS, CollectorContract
from greenflow.testing.prometheus import PrometheusServer

if TYPE_CHECKING:
    from conftest import EnergyExporter, Scraped

pytestmark = pytest.mark.slow

#: A scrape that starts late or an exporter that answers slowly, on a busy 2-core machine.
SLACK_S = 0.5
STEP_S = 0.5
COUNTER = "test_energy_joules_total"


def _ctx() -> CollectorContext:
    return CollectorContext(experiment="test", inventory=Inventory(()))


@pytest.fixture
def collectors() -> Iterator[list[PrometheusCollector]]:
    """Collectors a test creates, stopped afterwards whatever happens."""
    made: list[PrometheusCollector] = []
    yield made
    for c in made:
        c.stop()


def _started(made: list[PrometheusCollector], url: str, **config: object) -> PrometheusCollector:
    cfg = PrometheusCollectorConfig(url=url, step_s=STEP_S, **config)
    collector = PrometheusCollector("prom", cfg)
    made.append(collector)
    collector.start(_ctx())
    return collector


def _measure(seconds: float) -> Window:
    """The window a run would measure: now, plus ``seconds`` of the exporter running."""
    start = time.time()
    time.sleep(seconds)  # the workload's MEASURE phase: the interval itself is the subject
    return Window(start, time.time())


def _counter(exporter: EnergyExporter) -> str:
    """PromQL for the counter of one exporter (the server scrapes two)."""
    return f'{COUNTER}{{instance="{exporter.target}"}}'


def _ready(server: PrometheusServer) -> None:
    """Wait until enough scrapes exist for a 2 s rate() at the window's first point."""
    server.wait_for_series(f"count_over_time({COUNTER}[3s]) >= 5", timeout_s=30)


def test_counter_samples_cover_the_window_and_follow_the_known_rate(
    scraped: Scraped,
    collectors: list[PrometheusCollector],
) -> None:
    """Raw counter samples cover the window at both ends and match 50 J/s to one scrape interval."""
    server, exporter = scraped.server, scraped.steady
    _ready(server)
    collector = _started(
        collectors,
        server.url,
        method="test-exporter",
        queries={"test_energy_joules": _counter(exporter)},
    )
    window = _measure(2.0)

    samples = collector.collect(window)

    assert samples, "no samples over a window Prometheus scraped"
    times = [s.timestamp for s in samples]
    assert min(times) <= window.start and max(times) >= window.end, (window, times)
    assert times == sorted(times)
    assert all(b - a == pytest.approx(STEP_S) for a, b in itertools.pairwise(times))
    first = samples[0]
    assert (first.metric, first.unit, first.method, first.host) == (
        "test_energy_joules",
        "joules",
        "test-exporter",
        "127.0.0.1",
    )
    assert dict(first.labels) == {
        "domain": "package",
        "instance": exporter.target,
        "job": "targets",
    }
    for s in samples:
        low = exporter.value_at(s.timestamp - server.scrape_interval_s - SLACK_S)
        high = exporter.value_at(s.timestamp + SLACK_S)
        assert low <= s.value <= high, (s, low, high)


def test_rate_query_reproduces_the_known_power(
    scraped: Scraped,
    collectors: list[PrometheusCollector],
) -> None:
    """rate() of the counter, named *_watts, is what Prometheus answers and 50 W on average."""
    server, exporter = scraped.server, scraped.steady
    _ready(server)
    promql = f"rate({_counter(exporter)}[2s])"
    collector = _started(
        collectors, server.url, method="test-exporter", queries={"test_power_watts": promql}
    )
    window = _measure(3.0)

    samples = collector.collect(window)

    assert {(s.metric, s.unit, s.method) for s in samples} == {
        ("test_power_watts", "watts", "test-exporter")
    }
    inside = [s for s in samples if window.contains(s.timestamp)]
    assert len(inside) >= 5, samples
    # Each step is exactly what Prometheus answers for that instant.
    for s in samples:
        (answer,) = server.query(promql, at=s.timestamp)
        assert float(answer["value"][1]) == pytest.approx(s.value, rel=1e-9), s
    # A scrape is stamped when it was due but the exporter reads the clock when it
    # answers, up to SLACK_S later on a busy machine. rate() is the slope between samples
    # at least 2 s - one interval apart, so one point may be off by SLACK_S over that.
    per_point = SLACK_S / (2.0 - server.scrape_interval_s)
    for s in inside:
        assert s.value == pytest.approx(exporter.rate_w, rel=per_point), s
    # Those delays vary from scrape to scrape and mostly cancel over the window.
    mean = statistics.fmean(s.value for s in inside)
    assert mean == pytest.approx(exporter.rate_w, rel=0.10), [s.value for s in inside]


def test_non_energy_queries_are_labelled_prometheus(
    scraped: Scraped,
    collectors: list[PrometheusCollector],
) -> None:
    """A query that is neither energy nor power keeps method "prometheus", whatever method says."""
    server = scraped.server
    _ready(server)
    collector = _started(
        collectors,
        server.url,
        method="test-exporter",
        queries={
            "scrape_duration_seconds": 'scrape_duration_seconds{job="targets"}',
            "test_energy_joules": COUNTER,
        },
    )
    samples = collector.collect(_measure(1.0))

    methods = {s.metric: s.method for s in samples}
    assert methods == {
        "scrape_duration_seconds": "prometheus",
        "test_energy_joules": "test-exporter",
    }


def test_counter_reset_inside_the_window_is_corrected(
    scraped: Scraped,
    collectors: list[PrometheusCollector],
) -> None:
    """An exporter restart mid-window leaves the energy counter non-decreasing, as increase() would."""
    server, exporter = scraped.server, scraped.restarting
    _ready(server)
    collector = _started(
        collectors,
        server.url,
        method="test-exporter",
        queries={"test_energy_joules": _counter(exporter)},
    )
    start = time.time()
    time.sleep(2.0)
    exporter.reset()
    time.sleep(2.0)
    window = Window(start, time.time())

    samples = collector.collect(window)

    values = [s.value for s in samples]
    assert all(b >= a for a, b in itertools.pairwise(values)), values
    span = samples[-1].timestamp - samples[0].timestamp
    gained = values[-1] - values[0]
    # Each end may be one interval (+ slack) stale, and the energy between the last
    # scrape before the reset and the reset itself is lost, as with increase().
    lost_at_most = exporter.rate_w * (3 * server.scrape_interval_s + 2 * SLACK_S)
    assert exporter.rate_w * span - lost_at_most <= gained
    assert gained <= exporter.rate_w * (span + SLACK_S)


def test_bad_promql_is_refused_at_start_naming_the_query(
    scraped: Scraped,
    collectors: list[PrometheusCollector],
) -> None:
    """A query Prometheus cannot parse fails start(), before any run, with its name and the parse error."""
    server = scraped.server
    with pytest.raises(CollectorError, match=r"query host_power_watts = 'rate\(' .*parse error"):
        _started(collectors, server.url, method="test", queries={"host_power_watts": "rate("})


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_start_fails_clearly_within_its_timeout_when_nothing_answers(
    collectors: list[PrometheusCollector],
) -> None:
    """start() against a port nobody listens on raises CollectorError naming the URL, within timeout_s."""
    url = f"http://127.0.0.1:{_closed_port()}"
    began = time.monotonic()
    with pytest.raises(CollectorError) as info:
        _started(collectors, url, timeout_s=1.0, queries={"up_ratio": "up"})
    message = str(info.value)
    assert url in message and "does not answer" in message
    assert "Connection refused" in message or "Max retries" in message, message
    assert time.monotonic() - began < 1.0 + 5.0  # the deadline plus one request's retries


def test_collect_fails_clearly_when_prometheus_goes_away(
    own_scraped: Scraped,
    collectors: list[PrometheusCollector],
) -> None:
    """collect() after the server stopped raises CollectorError naming the query and the URL."""
    server = own_scraped.server
    collector = _started(collectors, server.url, timeout_s=2.0, queries={"up_ratio": "up"})
    server.stop()
    now = time.time()
    with pytest.raises(CollectorError, match=rf"query up_ratio = 'up' at {server.url} failed"):
        collector.collect(Window(now - 3, now - 2))


def test_samples_are_greenflow_samples(
    scraped: Scraped,
    collectors: list[PrometheusCollector],
) -> None:
    """What collect() returns are plain greenflow.api.Sample values the store can keep."""
    server = scraped.server
    _ready(server)
    collector = _started(collectors, server.url, queries={"up_ratio": 'up{job="targets"}'})
    samples = collector.collect(_measure(0.5))
    assert samples and all(type(s) is Sample for s in samples)
    assert {s.value for s in samples} == {1.0}


class TestPrometheusCollectorContract(CollectorContract):
    """The collector contract every plugin passes, against the real Prometheus."""

    collector_class = PrometheusCollector
    entry_point_name = "prometheus"
    energy_methods = ENERGY_METHODS | {"test-exporter"}

    @pytest.fixture
    def config(self, scraped: Scraped) -> PrometheusCollectorConfig:
        _ready(scraped.server)
        return PrometheusCollectorConfig(
            url=scraped.server.url,
            step_s=STEP_S,
            method="test-exporter",
            queries={
                # The name the runner reads a host's energy from (the contract checks it).
                "host_energy_joules": _counter(scraped.restarting),
                "test_power_watts": f"rate({_counter(scraped.steady)}[2s])",
                "up_ratio": "up",
            },
        )


def test_a_prometheus_behind_the_platforms_gateway_is_queried_where_reach_says(
    scraped: Scraped, collectors: list[PrometheusCollector]
) -> None:
    """The plan names Prometheus as the nodes see it (a NodePort this machine cannot
    reach); the platform's ``reach`` (core's Forwarding: an SSH-forwarded local port on
    k3s or Grid'5000 behind a gateway) gives the URL to query: the collector starts and
    collects through it, and its errors name both URLs."""
    server, exporter = scraped.server, scraped.steady
    _ready(server)
    behind = "http://node-1.behind-a-gateway.invalid:30090"
    asked: list[str] = []

    def reach(url: str) -> str:
        asked.append(url)
        return server.url if url == behind else url

    cfg = PrometheusCollectorConfig(
        url=behind,
        step_s=STEP_S,
        method="test-exporter",
        queries={"test_energy_joules": _counter(exporter)},
    )
    collector = PrometheusCollector("prom", cfg)
    collectors.append(collector)
    collector.start(CollectorContext(experiment="test", inventory=Inventory(()), reach=reach))
    assert asked == [behind]
    samples = collector.collect(_measure(1.0))
    assert samples and all(s.metric == "test_energy_joules" for s in samples)
    # A forward to nothing: the error says which URL was meant and which was tried.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
    lost = PrometheusCollector("prom", attrs.evolve(cfg, timeout_s=1.0))
    collectors.append(lost)
    with pytest.raises(CollectorError) as failed:
        lost.start(
            CollectorContext(experiment="test", inventory=Inventory(()), reach=lambda _u: dead)
        )
    assert f"{behind} (through {dead})" in str(failed.value)
