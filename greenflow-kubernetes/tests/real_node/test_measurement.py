"""The Kubernetes measurement layer on a REAL single-node cluster (scripts/kube-node), with
no broker: the ``kubernetes`` platform, the ``prometheus`` and ``scaphandre`` services and
the ``scaphandre`` collector, driven by ``greenflow run`` as a user would.

Nothing is played: a kubelet runs the pods in containerd, Prometheus discovers them through
the API server. What is not the real thing, and why: the ``prom/prometheus`` and
``hubblo/scaphandre`` images are stand-ins built from the same releases' sources (no
registry here; Scaphandre's with a shim answering /proc/modules, which this kernel lacks),
and the node has no RAPL (a VM): the energy counter is SIMULATED, a powercap tree advanced
at a constant 30 W (greenflow.testing.powercap.ConstantPower), the only energy figure here.
"""

from __future__ import annotations

import json
import textwrap
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from greenflow.store import Store
from greenflow.testing.cli import run_greenflow
from greenflow.testing.powercap import ConstantPower

# A run is a minute or two on 2 cores: image pulls are local, pods start in seconds.
pytestmark = pytest.mark.timeout(900)

POWER_W = 30.0
NODE_PORT = 30090


def _core_api(kubeconfig: Path) -> Any:
    from kubernetes import client, config

    return client.CoreV1Api(config.new_client_from_config(config_file=str(kubeconfig)))


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read().decode())


def _plan(kubeconfig: Path, powercap: Path, address: str) -> str:
    return textwrap.dedent(f"""\
        [experiment]
        name = "rn-kube-measure"
        repetitions = 1
        baseline = "3s"
        cooldown = "1s"
        ready_timeout = "4m"

        [platform]
        type = "kubernetes"
        kubeconfig = "{kubeconfig}"

        [[services]]
        type = "prometheus"
        node_port = {NODE_PORT}
        scrape_interval = "3s"  # Scaphandre 1.0 refreshes only > 2 s after the last request
        cpu = "250m"
        memory = "512Mi"

        [[services]]
        type = "scaphandre"
        cpu = "100m"
        powercap_path = "{powercap}"

        [workload]
        type = "command"
        command = "sleep 15"

        [[collectors]]
        type = "scaphandre"
        url = "http://{address}:{NODE_PORT}"
        step_s = 3
        """)


def _energy_over_measure(out: Path) -> tuple[dict[tuple[str, str], float], float, str]:
    """The one run's scaphandre energy figures over MEASURE, keyed ("host", node) and
    ("pod", pod), MEASURE's length in seconds and the run's status, from the store."""
    with Store.open(out, create=False) as store:
        (experiment,) = store.experiments()
        (run,) = store.get_runs(experiment.id)
        window = run.window()
        assert window is not None, run
        figures = {}
        for m in store.metrics(run.run_id):
            if m.name != "energy_joules" or m.method != "scaphandre":
                continue
            scope = m.labels.get("scope")
            if scope == "host":
                figures[("host", m.labels["host"])] = m.value
            elif scope == "pod":
                figures[("pod", m.labels["pod"])] = m.value
        return figures, window.end - window.start, str(run.status)


def test_node_and_pod_energy_from_scaphandre_through_the_plans_prometheus(
    kube_node: Path, tmp_path: Path
) -> None:
    """`greenflow up` deploys Prometheus and the Scaphandre DaemonSet; Prometheus discovers
    and scrapes Scaphandre (not itself), labelling its series with node, namespace, pod and
    service; a `greenflow run` reusing them measures the node's energy over MEASURE through
    a counter wrap within 2 % of power × time, and each pod's share, which together never
    exceed the node's; `greenflow down` leaves nothing on the cluster."""
    node = _core_api(kube_node).read_node("kubenode")
    address = next(a.address for a in node.status.addresses if a.type == "InternalIP")
    namespace = "greenflow-rn-kube-measure"
    (tmp_path / "plan.toml").write_text(_plan(kube_node, tmp_path / "powercap", address))
    with ConstantPower(tmp_path / "powercap", POWER_W, range_uj=360_000_000) as power:
        up = run_greenflow(tmp_path, "up", "plan.toml")
        try:
            assert up.returncode == 0, up.stderr[-4000:]
            base = f"http://{address}:{NODE_PORT}/api/v1"
            deadline = time.monotonic() + 120
            while True:  # discovery through the API server, then the first scrape
                try:
                    targets = _get_json(f"{base}/targets")["data"]["activeTargets"]
                except OSError:
                    targets = []
                if any(t["health"] == "up" for t in targets):
                    break
                assert time.monotonic() < deadline, f"nothing scraped: {targets}"
                time.sleep(2)
            # Only annotated pods are kept: Scaphandre, not Prometheus itself.
            assert [t["labels"]["service"] for t in targets] == ["scaphandre"]
            labels = targets[0]["labels"]
            assert labels["node"] == "kubenode" and labels["namespace"] == namespace
            assert labels["pod"].startswith("scaphandre-")
            run = run_greenflow(tmp_path, "run", "plan.toml")
            assert run.returncode == 0, run.stderr[-4000:]
        finally:
            down = run_greenflow(tmp_path, "down", "plan.toml")
            assert down.returncode == 0, down.stderr[-4000:]
    assert power.wraps >= 2  # 12 s per wrap: the 15 s MEASURE window holds at least one
    figures, measure_s, status = _energy_over_measure(tmp_path / "greenflow-output")
    assert status == "finished"
    node_j = figures[("host", "kubenode")]
    pods_j = {name: joules for (scope, name), joules in figures.items() if scope == "pod"}
    print(
        f"node {node_j:.2f} J over {measure_s:.3f} s ({POWER_W * measure_s:.2f} J at 30 W); {pods_j}"
    )
    # Within 2 % (0.3 s of power over 15 s): the counter's increase is exact, but each end
    # is stamped at the scrape's start while Scaphandre (100m of CPU, throttled on this busy
    # 2-core VM) reads the counter some time later, and the two ends' delays differ; plus
    # the feeder's 50 ms step. Measured -0.1 to +1.1 % in CI. A lost or doubled wrap (360 J)
    # or a missed scrape interval (90 J, 20 %) stays far outside.
    assert node_j == pytest.approx(POWER_W * measure_s, rel=0.02), (node_j, measure_s)
    # Scaphandre attributes the node's power by CPU share (--containers names each
    # process's pod): both services' pods burn some CPU, and together never more than the node.
    assert any(p.startswith("scaphandre-") for p in pods_j), pods_j
    assert any(p.startswith("prometheus") for p in pods_j), pods_j
    assert sum(pods_j.values()) <= node_j * 1.02, (pods_j, node_j)
    # The namespace is deleted by the namespace controller (not just marked) and no pod runs.
    from kubernetes.client.exceptions import ApiException

    api = _core_api(kube_node)
    with pytest.raises(ApiException) as gone:
        api.read_namespace(namespace)
    assert gone.value.status == 404
    pods = api.list_pod_for_all_namespaces(label_selector="app.kubernetes.io/managed-by=greenflow")
    assert [p.metadata.name for p in pods.items] == []
