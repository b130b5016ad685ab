"""The ``scaphandre`` collector against a real Prometheus (Debian's binary, on loopback).

Prometheus runs with its remote-write receiver; the tests write Scaphandre-named series
into it at chosen timestamps and values (what a Kubernetes Prometheus scraping Scaphandre
``--containers`` every 2 s would hold), so that every figure has an exact expected value.

The scenario (seconds from ``T0``, a few minutes ago; one sample every 2 s at x.25):

* idle until 40, load from 40 to 100, idle after; MEASURE is 41.0–97.5 (56.5 s), the
  baseline 5–35. Both ends of MEASURE fall between samples of constant power, so linear
  interpolation of a counter there is exact.
* node A, named ``10.42.0.11`` after its ``instance`` (no ``node`` label: the fallback):
  40 W idle, 160 W loaded. Its host counter is package + DRAM (no PSYS), and the package
  counter wraps at 262143328850 µJ at 61.0: the sum drops by that range but stays
  ~5e10 µJ, which ``increase()``'s rule would count as ~55 kJ. Scraped by **two jobs**
  (``scaphandre`` and ``kubernetes-service-endpoints``) with identical samples: a
  duplicated target.
* ``node-b`` (label ``node``): 35 W idle, 120 W loaded. Its exporter pod is replaced at
  71.0: the old series ends with a stale marker at 72.25, the new pod (another name and
  address, so new series) answers from 76.25 with a counter restarted from 0 at 71.0.
* pods: ``kafka-0`` on node A, two processes (java 5 W idle / 80 W loaded, a 2 W
  sidecar), duplicated like node A's host series; ``ingest-7f9c`` on node-b, one process
  from 40 to 100 whose power ramps 20 W + 0.5 W/s, through the exporter's replacement.
  A process outside any pod (pid 1) on each node is not a pod's.

Hand-computed energies over MEASURE: node A 160 W × 56.5 s = 9040 J, node-b
120 × 56.5 = 6780 J, kafka-0 (80 + 2) × 56.5 = 4633 J, ingest-7f9c
∫₄₁^97.5 (20 + 0.5 (t − 40)) dt = 1130 + 0.25 × (57.5² − 1²) = 1956.5625 J.
"""

from __future__ import annotations

import math
import socket
import struct
import time
import urllib.request
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from structlog.testing import capture_logs

from greenflow.api import CollectorContext, Inventory, Sample, Window
from greenflow.errors import CollectorError
from greenflow.measure.attribution import compute_run_metrics, idle_power_from_baseline
from greenflow.measure.integrate import counter_delta, split_series
from greenflow.store.remote_write import PROTOCOL_VERSION, compress, encode_write_request
from greenflow.testing import CollectorContract, assert_valid_samples
from greenflow.testing.prometheus import INSTALL_HINT, PrometheusServer, find_prometheus
from greenflow_kubernetes.collectors.scaphandre import (
    HOST_ENERGY,
    PROCESS_POWER,
    ScaphandreCollector,
    ScaphandreCollectorConfig,
    integrate_power,
    unwrap_counter,
)

pytestmark = pytest.mark.slow

REL = 1e-3  # 0.1 %

SCRAPE_S = 2.0
TIMES = [0.25 + SCRAPE_S * k for k in range(-5, 66)]  # -9.75 .. 130.25
LOAD = (40.0, 100.0)
RUN = (0.0, 120.0)
MEASURE = (41.0, 97.5)
BASELINE = (5.0, 35.0)
ORIGIN = -20.0  # where the pretend energy integrals start

#: A typical Intel package ``max_energy_range_uj``.
PKG_RANGE_UJ = 262_143_328_850.0
WRAP_AT = 61.0
RESTART_AT = 71.0
EXPORTER_DOWN = (72.25, 74.25)  # the two scrapes that failed while the pod was replaced
STALE_NAN = struct.unpack("<d", struct.pack("<Q", 0x7FF0000000000002))[
    0
]  # Prometheus' stale marker

NODE_A = "10.42.0.11"  # no node label: from instance="10.42.0.11:8080"
NODE_B = "node-b"
JOBS_A = ("scaphandre", "kubernetes-service-endpoints")

EXPECTED_HOST = {NODE_A: 160.0 * 56.5, NODE_B: 120.0 * 56.5}
EXPECTED_IDLE_W = {NODE_A: 40.0, NODE_B: 35.0}
EXPECTED_POD = {
    ("greenflow-e1", "kafka-0", NODE_A): (80.0 + 2.0) * 56.5,
    ("greenflow-e1", "ingest-7f9c", NODE_B): 1130.0 + 0.25 * (57.5**2 - 1.0),
}


# -- the pretend cluster -------------------------------------------------------------------


def _power(t: float, idle: float, load: float) -> float:
    return load if LOAD[0] <= t < LOAD[1] else idle


def _energy_j(t: float, idle: float, load: float) -> float:
    """∫ from ORIGIN to t of :func:`_power`."""
    loaded = max(0.0, min(t, LOAD[1]) - LOAD[0])
    return idle * (t - ORIGIN) + (load - idle) * loaded


def _host_a(t: float) -> float:
    """Node A's scaph_host_energy_microjoules: package (wraps) + DRAM, in µJ."""
    pkg0 = PKG_RANGE_UJ - _energy_j(WRAP_AT, 30.0, 140.0) * 1e6
    pkg = (pkg0 + _energy_j(t, 30.0, 140.0) * 1e6) % PKG_RANGE_UJ
    dram = 5.5e10 + _energy_j(t, 10.0, 20.0) * 1e6
    return pkg + dram


def _host_b(t: float) -> float:
    """node-b's counter, restarted from zero at RESTART_AT."""
    if t < RESTART_AT:
        return 7.7e10 + _energy_j(t, 35.0, 120.0) * 1e6
    return (_energy_j(t, 35.0, 120.0) - _energy_j(RESTART_AT, 35.0, 120.0)) * 1e6


def _ingest_w(t: float) -> float:
    return 20.0 + 0.5 * (t - LOAD[0])


_Series = tuple[dict[str, str], list[tuple[float, float]]]


def _scenario(t0: float, case: str) -> list[_Series]:
    """Every series the pretend Prometheus holds, as (labels, [(unix s, value)])."""
    series: list[_Series] = []
    pod_labels = {
        "container_scheduler": "kubernetes",
        "container_runtime": "containerd",
        "kubernetes_pod_namespace": "greenflow-e1",
    }

    def target_a(job: str) -> dict[str, str]:
        # No node label: the node is named by the exporter pod's address.
        return {
            "case": case,
            "job": job,
            "instance": "10.42.0.11:8080",
            "namespace": "monitoring",
            "pod": "scaphandre-x7k2p",
            "service": "scaphandre",
        }

    for job in JOBS_A:
        target = target_a(job)
        series.append(
            (
                {"__name__": HOST_ENERGY, **target, "value_source": "powercap_rapl_pkg"},
                [(t0 + t, _host_a(t)) for t in TIMES],
            )
        )
        series.append(
            (
                {
                    "__name__": PROCESS_POWER,
                    **target,
                    **pod_labels,
                    "pid": "4242",
                    "exe": "java",
                    "cmdline": "java -Xmx1g kafka.Kafka server.properties",
                    "container_id": "0f3c",
                    "kubernetes_pod_name": "kafka-0",
                    "kubernetes_node_name": "node-a",
                },
                [(t0 + t, _power(t, 5.0, 80.0) * 1e6) for t in TIMES],
            )
        )
        series.append(
            (
                {
                    "__name__": PROCESS_POWER,
                    **target,
                    **pod_labels,
                    "pid": "4300",
                    "exe": "sh",
                    "cmdline": "sh -c sleep infinity",
                    "container_id": "9a1d",
                    "kubernetes_pod_name": "kafka-0",
                    "kubernetes_node_name": "node-a",
                },
                [(t0 + t, 2.0e6) for t in TIMES],
            )
        )
        series.append(
            (
                {
                    "__name__": PROCESS_POWER,
                    **target,
                    "pid": "1",
                    "exe": "systemd",
                    "cmdline": "/sbin/init",
                },
                [(t0 + t, 1.0e6) for t in TIMES],
            )
        )

    # node-b's exporter pod is replaced at RESTART_AT: the new one has another name and
    # address (new series), and its counter starts again from zero. Prometheus ends the
    # old series with a stale marker at the first failed scrape.
    before = {
        "case": case,
        "job": "scaphandre",
        "node": NODE_B,
        "instance": "10.42.1.7:8080",
        "namespace": "monitoring",
        "pod": "scaphandre-q9d4w",
        "service": "scaphandre",
    }
    after = {**before, "instance": "10.42.1.8:8080", "pod": "scaphandre-m3v8z"}
    stale = (t0 + EXPORTER_DOWN[0], STALE_NAN)

    def split(labels: dict[str, str], value: Any, keep: Any = lambda t: True) -> None:
        old = [(t0 + t, value(t)) for t in TIMES if t < RESTART_AT and keep(t)]
        new = [(t0 + t, value(t)) for t in TIMES if t > EXPORTER_DOWN[1] and keep(t)]
        series.append(({**before, **labels}, [*old, stale] if old else old))
        series.append(({**after, **labels}, new))

    split({"__name__": HOST_ENERGY, "value_source": "powercap_rapl_pkg"}, _host_b)
    split(
        {
            "__name__": PROCESS_POWER,
            **pod_labels,
            "pid": "777",
            "exe": "java",
            "cmdline": "java kafka.tools.ProducerPerformance",
            "container_id": "77aa",
            "kubernetes_pod_name": "ingest-7f9c",
            "kubernetes_node_name": NODE_B,
        },
        lambda t: _ingest_w(t) * 1e6,
        lambda t: LOAD[0] <= t <= LOAD[1] + 0.25,
    )
    split(
        {"__name__": PROCESS_POWER, "pid": "1", "exe": "systemd", "cmdline": "/sbin/init"},
        lambda t: 1.0e6,
    )
    return series


def _write(server: PrometheusServer, series: Sequence[_Series]) -> None:
    """Remote-write ``series`` (protocol 1.0) and check Prometheus accepted them."""
    payload = encode_write_request(
        (sorted(labels.items()), [(round(t * 1000), v) for t, v in points])
        for labels, points in series
    )
    request = urllib.request.Request(
        server.write_url,
        data=compress(payload),
        method="POST",
        headers={
            "Content-Encoding": "snappy",
            "Content-Type": "application/x-protobuf",
            "X-Prometheus-Remote-Write-Version": PROTOCOL_VERSION,
        },
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status in (200, 204)


# -- fixtures ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    binary = find_prometheus()
    if binary is None:
        pytest.skip(f"the prometheus binary is not installed; install it with: {INSTALL_HINT}")
    with PrometheusServer(
        tmp_path_factory.mktemp("prom-scaph"), binary=binary, remote_write_receiver=True
    ) as server:
        yield server


class Cluster:
    """The scenario written into Prometheus: ``t0`` and the selector that isolates it."""

    def __init__(self, server: PrometheusServer) -> None:
        self.server = server
        self.t0 = float(math.floor(time.time()) - 400)
        self.case = f"scenario-{uuid.uuid4().hex[:8]}"
        _write(server, _scenario(self.t0, self.case))

    def window(self, span: tuple[float, float]) -> Window:
        return Window(self.t0 + span[0], self.t0 + span[1])

    def config(self, **overrides: Any) -> ScaphandreCollectorConfig:
        settings: dict[str, Any] = {
            "url": self.server.url,
            "step_s": SCRAPE_S,
            "selector": f'case="{self.case}"',
            **overrides,
        }
        return ScaphandreCollectorConfig(**settings)


@pytest.fixture(scope="module")
def cluster(prometheus: PrometheusServer) -> Cluster:
    return Cluster(prometheus)


@pytest.fixture
def collectors() -> Iterator[list[ScaphandreCollector]]:
    made: list[ScaphandreCollector] = []
    yield made
    for c in made:
        c.stop()


def _started(
    made: list[ScaphandreCollector], config: ScaphandreCollectorConfig
) -> ScaphandreCollector:
    collector = ScaphandreCollector("scaph", config)
    made.append(collector)
    collector.start(CollectorContext(experiment="test", inventory=Inventory(())))
    return collector


def _pods(samples: Sequence[Sample]) -> dict[tuple[str, str, str], list[Sample]]:
    out: dict[tuple[str, str, str], list[Sample]] = {}
    for (host, metric, _method, labels), series in split_series(samples).items():
        if metric == "pod_energy_joules":
            d = dict(labels)
            assert d["node"] == host
            out[(d["namespace"], d["pod"], host)] = series
    return out


# -- the figures ---------------------------------------------------------------------------


def test_node_energy_over_measure_through_attribution(
    cluster: Cluster, collectors: list[ScaphandreCollector]
) -> None:
    """Energy per node over MEASURE, through greenflow's attribution, is the hand-computed
    value to 0.1 % across a package-counter wrap, an exporter restart and a duplicated target;
    the baseline's idle power comes out too (nothing of the load leaks into it)."""
    collector = _started(collectors, cluster.config())
    run, measure = cluster.window(RUN), cluster.window(MEASURE)

    samples = collector.collect(run)

    baseline = idle_power_from_baseline(samples, cluster.window(BASELINE))
    assert {h: m for h, (_, m) in baseline.items()} == {NODE_A: "scaphandre", NODE_B: "scaphandre"}
    for host, watts in EXPECTED_IDLE_W.items():
        assert baseline[host][0] == pytest.approx(watts, rel=REL), host
    metrics = compute_run_metrics(samples, measure, baseline)
    energy = {
        m.labels["host"]: m
        for m in metrics
        if m.name == "energy_joules" and m.labels["scope"] == "host"
    }
    assert set(energy) == set(EXPECTED_HOST)
    for host, joules in EXPECTED_HOST.items():
        assert energy[host].method == "scaphandre"
        assert energy[host].value == pytest.approx(joules, rel=REL), host
    active = {m.labels["host"]: m.value for m in metrics if m.name == "active_energy_joules"}
    for host, joules in EXPECTED_HOST.items():
        idle_j = EXPECTED_IDLE_W[host] * measure.duration_s
        assert active[host] == pytest.approx(joules - idle_j, rel=REL), host


def test_one_energy_series_per_node_with_the_host_domain(
    cluster: Cluster, collectors: list[ScaphandreCollector]
) -> None:
    """Exactly one cumulative energy_joules{domain="host"} series per node: the duplicated
    target is not a second series, node A is named after its instance (port dropped), and
    node-b's two exporter pods make one series."""
    collector = _started(collectors, cluster.config())
    samples = collector.collect(cluster.window(MEASURE))

    hosts = [
        (host, dict(labels))
        for (host, metric, method, labels) in split_series(samples)
        if metric == "energy_joules"
    ]
    labels = {"domain": "host", "value_source": "powercap_rapl_pkg"}
    assert sorted(hosts) == sorted([(NODE_A, labels), (NODE_B, labels)])
    assert_valid_samples(samples, cluster.window(MEASURE))


def test_duplicate_target_is_detected_not_summed_and_warned(
    cluster: Cluster, collectors: list[ScaphandreCollector]
) -> None:
    """Node A scraped by two jobs: one series kept (the first job by name), both named in a
    scaphandre.duplicate_series warning, for the host counter and for the pod processes.
    node-b's successive exporter pods are no duplicates: their series are joined."""
    collector = _started(collectors, cluster.config())
    measure = cluster.window(MEASURE)
    with capture_logs() as logs:
        samples = collector.collect(measure)

    warnings = [e for e in logs if e["event"] == "scaphandre.duplicate_series"]
    assert {(e["metric"], e["node"]) for e in warnings} == {
        (HOST_ENERGY, NODE_A),
        (PROCESS_POWER, NODE_A),
    }
    for e in warnings:
        assert e["log_level"] == "warning"
        assert len(e["kept"]) == 1 and 'job="kubernetes-service-endpoints"' in e["kept"][0]
        assert len(e["dropped"]) == 1 and 'job="scaphandre"' in e["dropped"][0]
    (node_a,) = [
        s
        for key, s in split_series(samples).items()
        if key[0] == NODE_A and key[1] == "energy_joules"
    ]
    # Summed, the two jobs would double it.
    assert counter_delta(node_a, measure) == pytest.approx(EXPECTED_HOST[NODE_A], rel=REL)


def test_pod_energy_integrates_power_within_the_window_only(
    cluster: Cluster, collectors: list[ScaphandreCollector]
) -> None:
    """pod_energy_joules per pod over MEASURE is the hand-computed integral to 0.1 %, whether
    collected over MEASURE itself or over the whole run (idle phases on both sides) and read
    as a counter over MEASURE; processes outside pods and the duplicated job are left out."""
    collector = _started(collectors, cluster.config())
    measure = cluster.window(MEASURE)

    over_measure = _pods(collector.collect(measure))
    over_run = _pods(collector.collect(cluster.window(RUN)))

    assert set(over_measure) == set(EXPECTED_POD) == set(over_run)
    for pod, joules in EXPECTED_POD.items():
        series = over_measure[pod]
        assert (series[0].timestamp, series[0].value) == (measure.start, 0.0)
        assert series[-1].timestamp == measure.end
        assert series[-1].value == pytest.approx(joules, rel=REL), pod
        assert counter_delta(over_run[pod], measure) == pytest.approx(joules, rel=REL), pod
        assert {(s.unit, s.method) for s in series} == {("joules", "scaphandre")}


def test_reading_in_chunks_changes_nothing(
    cluster: Cluster, collectors: list[ScaphandreCollector], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Long windows are read as several range selectors; their joins lose or repeat no sample."""
    collector = _started(collectors, cluster.config())
    window = cluster.window(RUN)
    whole = collector.collect(window)
    monkeypatch.setattr("greenflow_kubernetes.collectors.scaphandre._CHUNK_S", 7.0)
    assert collector.collect(window) == whole


def test_samples_pass_the_collector_checks(
    cluster: Cluster, collectors: list[ScaphandreCollector]
) -> None:
    """Counters never go backwards (the wrap and the restart undone), at most one sample
    on each side of the window, every energy sample says scaphandre."""
    collector = _started(collectors, cluster.config())
    for span in (RUN, MEASURE, BASELINE):
        window = cluster.window(span)
        samples = collector.collect(window)
        assert_valid_samples(samples, window)
        assert {s.metric for s in samples} == {"energy_joules", "pod_energy_joules"}


# -- the rules, on their own ------------------------------------------------------------------


def test_counter_drop_is_bridged_by_the_neighbouring_power() -> None:
    """A drop (wrap of one summed domain, restart to zero) costs what its neighbours'
    power says; with no neighbour the new value counts, as increase() does."""
    # 10 W for 1 s steps; between t=2 and t=3 the counter drops by a domain's range.
    raw = [(0.0, 100.0), (1.0, 110.0), (2.0, 120.0), (3.0, 130.0 - 1e6), (4.0, 140.0 - 1e6)]
    assert unwrap_counter(raw) == [
        (0.0, 100.0),
        (1.0, 110.0),
        (2.0, 120.0),
        (3.0, 130.0),
        (4.0, 140.0),
    ]
    # Neighbours at 10 W and 30 W: the dropped interval is taken at 20 W.
    raw = [(0.0, 0.0), (1.0, 10.0), (3.0, 5.0), (4.0, 35.0)]
    assert unwrap_counter(raw)[-2:] == [(3.0, 50.0), (4.0, 80.0)]
    assert unwrap_counter([(0.0, 50.0), (1.0, 7.0)]) == [(0.0, 50.0), (1.0, 57.0)]


def test_power_integral_stops_at_the_window() -> None:
    """The trapezoid rule inside the window, the power at its ends interpolated; the
    1000 W outside the window counts for nothing."""
    points = [(0.0, 1000.0), (10.0, 10.0), (12.0, 20.0), (14.0, 20.0), (20.0, 1000.0)]
    energy = integrate_power(points, Window(10.0, 14.0))
    assert energy == [(10.0, 0.0), (12.0, 30.0), (14.0, 70.0)]
    # Window ends between samples: 11 → 15 W, 13 → 20 W.
    assert integrate_power(points, Window(11.0, 13.0))[-1] == (13.0, 17.5 + 20.0)


# -- failures --------------------------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_start_fails_naming_the_url_when_prometheus_does_not_answer(
    collectors: list[ScaphandreCollector],
) -> None:
    """start() against a port nobody listens on: CollectorError naming the URL, within timeout_s."""
    url = f"http://127.0.0.1:{_closed_port()}"
    began = time.monotonic()
    with pytest.raises(CollectorError) as info:
        _started(collectors, ScaphandreCollectorConfig(url=url, timeout_s=1.0))
    assert url in str(info.value) and "does not answer" in str(info.value)
    assert time.monotonic() - began < 1.0 + 5.0


def test_a_bad_selector_fails_at_start_naming_the_query(
    cluster: Cluster, collectors: list[ScaphandreCollector]
) -> None:
    """A selector Prometheus cannot parse fails start(), before any run."""
    with pytest.raises(CollectorError, match=r"scaph_host_energy_microjoules\{job=~\"\(\"\}.*"):
        _started(collectors, cluster.config(selector='job=~"("'))


def test_no_scaphandre_series_is_a_clear_error(
    cluster: Cluster, collectors: list[ScaphandreCollector]
) -> None:
    """A selector matching nothing: collect() says which series it looked for, and where."""
    collector = _started(collectors, cluster.config(selector='case="nobody"'))
    with pytest.raises(
        CollectorError,
        match=r"no scaph_host_energy_microjoules\{case=\"nobody\"\} "
        r"samples at http://127\.0\.0\.1:\d+",
    ):
        collector.collect(cluster.window(MEASURE))


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("node_label", "node-name"),
        ("pod_label", ""),
        ("selector", '{job="x"}'),
        ("selector", 'job="x" namespace="y"'),
        ("step_s", 0.0),
        ("url", "127.0.0.1:9090"),
    ],
)
def test_config_refuses_bad_values_naming_the_key(key: str, value: object) -> None:
    settings: dict[str, Any] = {"url": "http://127.0.0.1:9090", key: value}
    with pytest.raises(ValueError, match=rf"^{key}: "):
        ScaphandreCollectorConfig(**settings)


# -- the contract, on live series ------------------------------------------------------------


class TestScaphandreCollectorContract(CollectorContract):
    """The collector contract, against series written around the present (a node at
    100 W and one pod, sampled every 0.5 s from 20 s ago to 20 s ahead)."""

    collector_class = ScaphandreCollector
    entry_point_name = "scaphandre"

    @pytest.fixture
    def config(self, prometheus: PrometheusServer) -> ScaphandreCollectorConfig:
        case = f"contract-{uuid.uuid4().hex[:8]}"
        now = math.floor(time.time())
        times = [now - 20 + 0.5 * i for i in range(81)]
        target = {"case": case, "job": "scaphandre", "instance": "10.42.2.9:8080"}
        _write(
            prometheus,
            [
                ({"__name__": HOST_ENERGY, **target}, [(t, 1e12 + 1e8 * (t - now)) for t in times]),
                (
                    {
                        "__name__": PROCESS_POWER,
                        **target,
                        "pid": "9",
                        "exe": "java",
                        "kubernetes_pod_name": "p",
                        "kubernetes_pod_namespace": "n",
                    },
                    [(t, 3e7) for t in times],
                ),
            ],
        )
        return ScaphandreCollectorConfig(url=prometheus.url, step_s=0.5, selector=f'case="{case}"')
