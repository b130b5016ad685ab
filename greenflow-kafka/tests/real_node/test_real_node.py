"""GreenFlow end to end on a REAL single-node Kubernetes cluster (scripts/kube-node).

Nothing is played here: a kubelet runs the pods in containerd with runc, the scheduler
places them, the Job, StatefulSet and namespace controllers do their work, kube-proxy and
coredns serve the headless Service. What is not the real thing, and why:

- the ``docker.io/apache/kafka`` image is a stand-in built locally (no registry here): a
  Debian JRE 21 rootfs with Kafka's own jars and shims for the official image's entry point
  and scripts (docs/kubernetes-testing.md, "The stand-in Kafka image");
- the ``prom/prometheus`` and ``hubblo/scaphandre`` images are stand-ins built from the same
  releases' sources (Go module proxy, crates.io), Scaphandre's with a shim answering
  /proc/modules, which this kernel lacks;
- the node has no RAPL (a VM): the Scaphandre test feeds a SIMULATED powercap tree
  (SimulatedPowercap), the only energy figures here. The other tests check the service and
  workload path and the teardown, which the API-server-only tests cannot (the first runs
  here found two bugs they had missed; docs/kubernetes-testing.md).

Each test runs the ``greenflow`` command as a user would, in its own directory, and reads
the results with ``greenflow results --json``.
"""

from __future__ import annotations

import json
import textwrap
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from greenflow.api import Probe
from greenflow.builtin.protocols import Criterion
from greenflow.store import Store
from greenflow.testing.cli import run_greenflow
from greenflow.testing.powercap import Powercap

pytest.importorskip(
    "kubernetes", reason='the kubernetes client is not installed: pip install "kubernetes>=30,<38"'
)

# A run is a few minutes of JVMs on 2 cores: broker, producer, consumer, probe and the
# offset-reading Jobs each start one.
pytestmark = pytest.mark.timeout(900)


def _plan(
    kubeconfig: Path,
    experiment: str,
    *,
    cpu: str = "1",
    kafka: str = "",
    workload: str = "",
    warm_up: bool = False,
) -> str:
    """A one-run plan. Without ``warm_up`` no unmeasured run comes first (Kafka asks for
    one, a whole run of JVMs: ~40 s here); the producers' test keeps it, so that a warm-up
    on Kubernetes, and its clean-up before the measured run, is tested once."""
    return (
        textwrap.dedent(f"""\
        [experiment]
        name = "{experiment}"
        repetitions = 1
        baseline = "2s"
        cooldown = "1s"
        ready_timeout = "4m"
        {"" if warm_up else "warmup_runs = 0"}

        [platform]
        type = "kubernetes"
        kubeconfig = "{kubeconfig}"

        [[services]]
        type = "kafka"
        brokers = 1
        cpu = "{cpu}"
        memory = "1Gi"
        """)
        + textwrap.dedent(kafka)
        + textwrap.dedent("""
        [workload]
        type = "kafka-ingest"
        load = 200
        message_size = 1024
        producers = 1
        warmup = "5s"
        duration = "15s"
        """)
        + textwrap.dedent(workload)
    )


def _run(tmp_path: Path, plan: str) -> dict[str, Any]:
    """``greenflow run`` then ``greenflow results --json``; the one run's row."""
    (tmp_path / "plan.toml").write_text(plan)
    run = run_greenflow(tmp_path, "run", "plan.toml")
    results = run_greenflow(tmp_path, "results", "--json")
    assert results.returncode == 0, results.stderr
    rows = json.loads(results.stdout)
    assert len(rows) == 1, (rows, run.stderr[-3000:])
    row: dict[str, Any] = rows[0]
    assert run.returncode == 0 and row["status"] == "finished", (
        f"greenflow run exit {run.returncode}, run {row['status']}: {row.get('error')}\n"
        f"{run.stderr[-4000:]}"
    )
    return row


def _api(kubeconfig: Path) -> Any:
    from kubernetes import client, config

    return client.CoreV1Api(config.new_client_from_config(config_file=str(kubeconfig)))


def _assert_nothing_left(kubeconfig: Path, namespace: str) -> None:
    """The namespace is gone (deleted by the namespace controller, not just marked) and no
    pod of it runs: what a run's teardown promises on a real cluster."""
    from kubernetes.client.exceptions import ApiException

    api = _api(kubeconfig)
    try:
        ns = api.read_namespace(namespace)
    except ApiException as exc:
        assert exc.status == 404
    else:
        pytest.fail(f"namespace {namespace} still exists after teardown (phase {ns.status.phase})")
    pods = api.list_pod_for_all_namespaces(label_selector="app.kubernetes.io/managed-by=greenflow")
    assert [p.metadata.name for p in pods.items] == []


def test_producers_measure_the_asked_load_and_teardown_leaves_nothing(
    kube_node: Path, tmp_path: Path
) -> None:
    """A 1-broker StatefulSet of the (stand-in) apache/kafka image and one producer Job at
    200 msg/s of 1 KiB: the count between the two offset reads is the load over the read
    interval, the producer's own summary agrees, and teardown deletes the namespace."""
    row = _run(tmp_path, _plan(kube_node, "rn-producers", warm_up=True))
    messages = row["messages_total"]
    interval = row["offsets_read_interval_s"]
    # The count is exact between the reads; the producer tool's throttle keeps 200 msg/s.
    assert messages / interval == pytest.approx(200, rel=0.05)
    assert row["producer_reported_messages_per_s"] == pytest.approx(200, rel=0.05)
    assert row["latency_p99_ms"] > 0
    # MEASURE is entered at the reads' own stamps (one clock on one node): the energy window
    # is the counting window, so the achieved rate is the asked one. (Before, MEASURE was
    # entered when each read was seen complete: 14.07 s against a 14.73 s read interval,
    # and a 1.047 achieved ratio.)
    assert row["boundaries_on_read_clock"] == 1
    assert abs(row["measure_window_minus_read_interval_s"]) < 0.01
    assert row["achieved_ratio"] == pytest.approx(1.0, abs=0.05)
    # The open-loop generator's own account, as locally: on schedule, next to nothing given
    # up (a send more than 10 ms late is; one in ~3000 was, once, in CI: a scheduling
    # hiccup), so the protocols' sustained-rate criterion holds the run to the same test.
    assert row["producer_missed_sends"] <= 0.01 * row["producer_sent_messages"]
    assert abs(row["schedule_lag_trend_s_per_s"]) <= 0.05
    with Store.open(tmp_path / "greenflow-output", create=False) as store:
        (exp,) = store.experiments()
        (stored,) = store.get_runs(exp.id)
        probe = Probe(200, 0, stored.status.value, store.result(stored.run_id))
    verdict = Criterion().judge(probe, None)
    assert verdict.sustained and "schedule" in verdict.checked, verdict
    _assert_nothing_left(kube_node, "greenflow-rn-producers")


def test_consumers_and_end_to_end_probe(kube_node: Path, tmp_path: Path) -> None:
    """consumers = 1: a consumer-group Job reads everything produced in MEASURE, and the
    end-to-end latency probe reports its percentiles. The node has 2 CPUs: broker 500m,
    consumer 500m, producer 500m, a boundary read 250m and the probe 250m fill it exactly."""
    row = _run(tmp_path, _plan(kube_node, "rn-consumers", cpu="500m", workload="consumers = 1\n"))
    # Consumed counts come from committed offsets, which move once per auto-commit interval
    # (1 s = 200 messages here, 7 % of a 14 s window): measured 1.056 on this node.
    assert row["consumed_ratio"] == pytest.approx(1.0, abs=0.15)
    assert row["consumer_lag_messages"] >= 0
    # The lag trend the criterion reads: a consumer that keeps up does not fall behind.
    assert abs(row["consumer_lag_trend_messages_per_s"]) <= 0.05 * 200
    assert 0 < row["e2e_latency_p50_ms"] <= row["e2e_latency_p99_ms"]
    assert row["e2e_probe_coverage_ratio"] > 0
    _assert_nothing_left(kube_node, "greenflow-rn-consumers")


def test_a_node_without_room_for_the_boundary_read_fails_saying_so(
    kube_node: Path, tmp_path: Path
) -> None:
    """With a 1-CPU broker, the consumer and the producer the 2-CPU node is full: the start
    read cannot be scheduled, and the run fails at once with the scheduler's reason and
    what to change (it used to wait until the producer ended and fail as "producer-0
    finished before MEASURE ended … raise `tail`", which was not the cause)."""
    (tmp_path / "plan.toml").write_text(_plan(kube_node, "rn-full", workload="consumers = 1\n"))
    run = run_greenflow(tmp_path, "run", "plan.toml")
    assert run.returncode != 0
    results = json.loads(run_greenflow(tmp_path, "results", "--json").stdout)
    assert [r["status"] for r in results] == ["failed"]
    assert "cannot be scheduled" in results[0]["error"]
    assert "Insufficient cpu" in results[0]["error"]
    _assert_nothing_left(kube_node, "greenflow-rn-full")


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read().decode())


class SimulatedPowercap:
    """A powercap tree (``intel-rapl:0``, ``package-0``; greenflow.testing.powercap) whose
    counter a thread advances at ``power_w``, wrapping as RAPL counters do. The node is a
    VM without RAPL: this tree is the SIMULATED part, standing in for the CPU's energy
    counter; Scaphandre, Prometheus and GreenFlow read it as they would the real one."""

    ZONE = "intel-rapl:0"

    def __init__(self, root: Path, power_w: float, range_uj: int) -> None:
        self.tree, self.power_w = Powercap(root), power_w
        self.tree.add(self.ZONE, "package-0", range_uj)
        self.wraps = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._advance, daemon=True)

    def _advance(self) -> None:
        start = time.monotonic()
        while not self._stop.wait(0.05):
            total = int((time.monotonic() - start) * self.power_w * 1e6)
            self.wraps = self.tree.wraps(self.ZONE, total)
            self.tree.set(self.ZONE, total)

    def __enter__(self) -> SimulatedPowercap:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def test_prometheus_scrapes_broker_and_scaphandre_and_energy_is_measured(
    kube_node: Path, tmp_path: Path
) -> None:
    """The measurement path on a real node, deployed once by `greenflow up` and measured by
    a `greenflow run` that reuses it:

    - kafka ``metrics = true``: the JMX exporter jar travels in a ConfigMap, the broker JVM
      loads it, the pod is annotated for port 9404;
    - [[services]] prometheus: its RBAC lets kubernetes_sd list the experiment's pods, the
      relabelling keeps the annotated pods (broker and Scaphandre, not itself) and labels
      their series with node, namespace, pod and service; both are scraped (Scaphandre's
      blank Content-Type needs fallback_scrape_protocol on Prometheus 3); read from
      outside through the NodePort, as the collector reads it;
    - the scaphandre DaemonSet (privileged, host /proc, --containers asking the API server
      which pod each process is in) and the scaphandre collector, started once Prometheus
      is up: energy per node over MEASURE through a counter wrap, and per pod.

    SIMULATED: the energy counter only (this VM has no RAPL) — SimulatedPowercap at a
    constant 30 W, wrapping every 12 s, mounted through ``powercap_path``. The Prometheus
    and Scaphandre images are stand-ins built from the same releases' sources, Scaphandre's
    with a shim answering /proc/modules, which this kernel lacks
    (docs/kubernetes-testing.md)."""
    from urllib.parse import quote

    power_w = 30.0
    node = _api(kube_node).read_node("kubenode")
    address = next(a.address for a in node.status.addresses if a.type == "InternalIP")
    services = f"""\
        metrics = true

        [[services]]
        type = "prometheus"
        node_port = 30090
        scrape_interval = "3s"  # Scaphandre 1.0 refreshes only > 2 s after the last request
        cpu = "250m"
        memory = "512Mi"

        [[services]]
        type = "scaphandre"
        cpu = "100m"
        powercap_path = "{tmp_path / "powercap"}"
        """
    collector = f"""
        [[collectors]]
        type = "scaphandre"
        url = "http://{address}:30090"
        step_s = 3
        """
    (tmp_path / "plan.toml").write_text(
        _plan(kube_node, "rn-measure", cpu="500m", kafka=services, workload=collector)
    )
    namespace = "greenflow-rn-measure"
    with SimulatedPowercap(tmp_path / "powercap", power_w, range_uj=360_000_000) as powercap:
        up = run_greenflow(tmp_path, "up", "plan.toml")
        try:
            assert up.returncode == 0, up.stderr[-4000:]
            pods = _api(kube_node).list_namespaced_pod(
                namespace, label_selector="app.kubernetes.io/managed-by=greenflow"
            )
            broker = next(p for p in pods.items if p.metadata.name == "kafka-0")
            assert (broker.metadata.annotations or {}).get("prometheus.io/port") == "9404"
            base = f"http://{address}:30090/api/v1"
            deadline = time.monotonic() + 120
            while True:  # discovery, then scrapes once the broker's JVM serves its metrics
                try:
                    targets = _get_json(f"{base}/targets")["data"]["activeTargets"]
                except OSError:
                    targets = []
                up_by_service = {
                    t["labels"].get("service"): t for t in targets if t["health"] == "up"
                }
                if {"kafka", "scaphandre"} <= up_by_service.keys():
                    break
                assert time.monotonic() < deadline, f"not both scraped: {targets}"
                time.sleep(2)
            # Only annotated pods are kept: the broker and Scaphandre, not Prometheus itself.
            assert sorted(t["labels"]["service"] for t in targets) == ["kafka", "scaphandre"]
            kafka = up_by_service["kafka"]
            assert kafka["labels"]["pod"] == "kafka-0"
            assert kafka["labels"]["node"] == "kubenode"
            assert kafka["labels"]["namespace"] == namespace
            assert kafka["scrapeUrl"].endswith(":9404/metrics")
            query = quote('count({__name__=~"kafka_server_.*", pod="kafka-0", service="kafka"})')
            result = _get_json(f"{base}/query?query={query}")["data"]["result"]
            assert result and float(result[0]["value"][1]) > 10, result

            row = _run(tmp_path, (tmp_path / "plan.toml").read_text())
        finally:
            down = run_greenflow(tmp_path, "down", "plan.toml")
            assert down.returncode == 0, down.stderr[-4000:]
    assert powercap.wraps >= 2  # so the MEASURE window (15 s) holds at least one
    metrics, measure_s = _energy_over_measure(tmp_path, row["run_id"])
    node_j = metrics[("host", "kubenode")]
    # A constant 30 W over the window, across a wrap, read at scrape timestamps on both
    # ends: the counter's increase is exact, its placement in time within the feeder's
    # 50 ms step and the delay between a scrape's start and Scaphandre's read (throttled
    # at 100m of CPU). Measured: 441.50 J for 441.83 J (-0.075 %); the same pipeline in
    # greenflow-kubernetes' real-node test once measured +1.1 %, hence 2 %.
    assert node_j == pytest.approx(power_w * measure_s, rel=0.02), (node_j, measure_s)
    pods_j = {name: joules for (scope, name), joules in metrics.items() if scope == "pod"}
    # Scaphandre attributes the node's power by CPU share (--containers names the pod of
    # each process): the loaded broker has some, and all pods together never more than
    # the node.
    assert pods_j.get("kafka-0", 0) > 0, pods_j
    assert sum(pods_j.values()) <= node_j * 1.02, (pods_j, node_j)
    _assert_nothing_left(kube_node, namespace)


def _energy_over_measure(tmp_path: Path, run_id: str) -> tuple[dict[tuple[str, str], float], float]:
    """The run's scaphandre energy figures over MEASURE, keyed ("host", node) and
    ("pod", pod), and MEASURE's length in seconds, from the store `greenflow run` wrote."""
    from greenflow.store import Store

    with Store.open(tmp_path / "greenflow-output", create=False) as store:
        run = store.get_run(run_id)
        assert run is not None
        window = run.window()
        assert window is not None
        figures = {}
        for m in store.metrics(run_id):
            if m.name != "energy_joules" or m.method != "scaphandre":
                continue
            scope = m.labels.get("scope")
            if scope == "host":
                figures[("host", m.labels["host"])] = m.value
            elif scope == "pod":
                figures[("pod", m.labels["pod"])] = m.value
    assert ("host", "kubenode") in figures, figures
    return figures, window.end - window.start
