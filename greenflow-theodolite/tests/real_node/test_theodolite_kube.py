"""Theodolite's UC2 on a real single-node Kubernetes cluster, through `greenflow run`.

Nothing is played: a kubelet runs the pods in containerd — one Kafka broker, the schema
registry, the topics tool, the UC2 application and the load generator under their default
(Theodolite v0.9.0 and Confluent) names — and Scaphandre attributes the node's power to
each pod. SIMULATED: the energy counter only (this VM has no RAPL: a constant 30 W
powercap tree). The images are GreenFlow's own builds under those names (Theodolite's
cannot be pulled here; scripts/kube-node/build-theodolite-standin.sh), and the Prometheus
and Scaphandre images stand-ins built from their releases' sources
(docs/kubernetes-testing.md).
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from greenflow.store import Store
from greenflow.testing.cli import run_greenflow
from greenflow.testing.powercap import ConstantPower

pytest.importorskip(
    "kubernetes", reason='the kubernetes client is not installed: pip install "kubernetes>=30,<38"'
)
pytestmark = pytest.mark.timeout(1200)

NODE_PORT = 30092
POWER_W = 30.0
LOAD = 200


def _core_api(kubeconfig: Path) -> Any:
    from kubernetes import client, config

    return client.CoreV1Api(config.new_client_from_config(config_file=str(kubeconfig)))


def _plan(kubeconfig: Path, powercap: Path, address: str) -> str:
    return textwrap.dedent(f"""\
        [experiment]
        name = "rn-theodolite"
        repetitions = 1
        warmup_runs = 0
        baseline = "3s"
        cooldown = "1s"
        ready_timeout = "4m"

        [platform]
        type = "kubernetes"
        kubeconfig = "{kubeconfig}"

        [[services]]
        type = "kafka"
        brokers = 1
        cpu = "500m"
        memory = "1Gi"

        [[services]]
        type = "prometheus"
        node_port = {NODE_PORT}
        scrape_interval = "3s"
        cpu = "250m"
        memory = "512Mi"

        [[services]]
        type = "scaphandre"
        cpu = "100m"
        powercap_path = "{powercap}"

        [workload]
        type = "theodolite"
        use_case = "uc2"
        load = {LOAD}
        partitions = 2
        heap = "256m"
        memory = "768Mi"
        downsample_interval = "5s"
        warmup = "15s"
        duration = "30s"

        [[collectors]]
        type = "scaphandre"
        url = "http://{address}:{NODE_PORT}"
        step_s = 3
        """)


def _row(out: Path) -> dict[str, Any]:
    result = run_greenflow(out.parent, "results", "--json")
    assert result.returncode == 0, result.stderr
    (row,) = json.loads(result.stdout)
    return dict(row)


def _energy(out: Path, name: str = "energy_joules") -> dict[tuple[str, str], float]:
    """The run's Scaphandre figures called ``name``, keyed ("host", node) and ("pod", pod)."""
    with Store.open(out, create=False) as store:
        (experiment,) = store.experiments()
        (run,) = store.get_runs(experiment.id)
        figures = {}
        for m in store.metrics(run.run_id):
            if m.name == name and m.method == "scaphandre":
                scope = m.labels.get("scope")
                if scope == "host":
                    figures[("host", m.labels["host"])] = m.value
                elif scope == "pod":
                    figures[("pod", m.labels["pod"])] = m.value
        return figures


def test_uc2_on_kubernetes_meets_its_slo_with_energy_per_pod(
    kube_node: Path, tmp_path: Path
) -> None:
    """The application and generator run as pods placed on the worker node; the run counts
    the asked records at MEASURE's boundaries, UC2 writes its window statistics, the lag
    trend is flat (SLO met), Scaphandre gives the application pod its share of the node's
    energy, and teardown leaves nothing on the cluster."""
    node = _core_api(kube_node).read_node("kubenode")
    address = next(a.address for a in node.status.addresses if a.type == "InternalIP")
    (tmp_path / "plan.toml").write_text(_plan(kube_node, tmp_path / "powercap", address))
    with ConstantPower(tmp_path / "powercap", POWER_W, range_uj=360_000_000):
        run = run_greenflow(tmp_path, "run", "plan.toml")
    row = _row(tmp_path / "greenflow-output")
    assert run.returncode == 0 and row["status"] == "finished", (
        row.get("error"),
        run.stderr[-4000:],
    )
    assert row["unit"] == "record"
    assert row["input_records_per_s"] == pytest.approx(LOAD, rel=0.05)
    # UC2 writes a sensor's window statistics at every cache flush (each 1 s commit), as
    # Theodolite's does (no suppression): at least one per sensor and window, at most one
    # per input record.
    assert LOAD / 5 * 0.8 <= row["output_records_per_s"] <= row["input_records_per_s"] * 1.05
    assert row["slo_lag_trend_met"] == 1.0
    assert abs(row["lag_trend_records_per_s"]) < 0.1 * LOAD, row["lag_trend_records_per_s"]
    figures = _energy(tmp_path / "greenflow-output")
    node_j = figures[("host", "kubenode")]
    pods = {name: j for (scope, name), j in figures.items() if scope == "pod"}
    print(f"node {node_j:.1f} J; pods {pods}")
    app = [j for name, j in pods.items() if name.startswith("theodolite-uc2-app-")]
    generator = [j for name, j in pods.items() if name.startswith("theodolite-uc2-load-generator")]
    assert app and app[0] > 0, pods
    assert generator and generator[0] > 0, pods
    assert sum(pods.values()) <= node_j * 1.02, (pods, node_j)
    # Per input record too: the application pod's joules over the records MEASURE counted.
    per_record = _energy(tmp_path / "greenflow-output", "energy_per_record_joules")
    app_per_record = [
        j for (scope, n), j in per_record.items() if n.startswith("theodolite-uc2-app-")
    ]
    records = row["input_records_per_s"] * row["measure.duration_s"]
    assert app_per_record == [pytest.approx(app[0] / records, rel=0.02)], per_record
    api = _core_api(kube_node)
    left = api.list_pod_for_all_namespaces(label_selector="app.kubernetes.io/managed-by=greenflow")
    assert [p.metadata.name for p in left.items] == []
