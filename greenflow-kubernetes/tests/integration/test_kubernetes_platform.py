"""The ``kubernetes`` platform and its ``prometheus`` and ``scaphandre`` services against a
real kube-apiserver + etcd on loopback (``greenflow_kubernetes.testing.apiserver``).

Without the binaries (``bash scripts/kube-apiserver``) the API-server tests skip and say
how to build them. Only the API server and etcd run, no kubelet, scheduler or
controllers: objects are validated and stored as on a real cluster but nothing acts on
them. Where a controller would, the test plays its part and says so:

* the three Node objects are created by the test (a kubelet registers them);
* the namespace controller is played by a thread (:func:`_namespace_controller`): once a
  GreenFlow namespace is Terminating *and* nothing labelled by GreenFlow is left in it, it
  clears the ``kubernetes`` finalizer. So release's wait for the namespace to vanish
  only ends when release itself deleted everything — as on a real cluster, where the
  namespace disappears on its own;
* pod, Deployment and DaemonSet status is written through the status subresource (the
  scheduler, the kubelet and the workload controllers).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from greenflow.api import Capability, Inventory
from greenflow.errors import GreenFlowError, PlatformError, ReadinessTimeout
from greenflow.plan.durations import Duration
from greenflow.testing import PlatformContract, StateRecorder, make_deploy_context
from greenflow_kubernetes.platform import KubernetesConfig, KubernetesPlatform
from greenflow_kubernetes.services.prometheus import PrometheusService, PrometheusServiceConfig
from greenflow_kubernetes.services.scaphandre import ScaphandreService, ScaphandreServiceConfig
from greenflow_kubernetes.session import (
    EXPERIMENT_LABEL,
    MANAGED_BY_LABEL,
    KubeApiError,
    KubeSession,
    pod_blocking_reason,
)
from greenflow_kubernetes.testing.apiserver import (
    KubeAPIServer,
    KubeBinaries,
    KubeBinariesMissing,
    find_kube_binaries,
)

MANAGED = "app.kubernetes.io/managed-by=greenflow"
#: The test cluster's nodes: name → (labels, InternalIP). Roles as the original's k3s
#: clusters label them; n-control carries kubeadm's empty control-plane label.
NODES = {
    "n-control": ({"node-role.kubernetes.io/control-plane": ""}, "10.0.0.1"),
    "n-broker": ({"node.kubernetes.io/broker": "true"}, "10.0.0.2"),
    "n-worker": ({"node.kubernetes.io/worker": "true", "disk": "ssd"}, "10.0.0.3"),
}
UNSCHEDULABLE = (
    "0/3 nodes are available: 3 node(s) didn't match Pod's node "
    "affinity/selector. preemption: 0/3 nodes are available."
)


# -- the cluster ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def kube_binaries() -> KubeBinaries:
    try:
        return find_kube_binaries()
    except KubeBinariesMissing as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def kube(
    kube_binaries: KubeBinaries, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[KubeAPIServer]:
    with KubeAPIServer(tmp_path_factory.mktemp("kube"), binaries=kube_binaries) as server:
        yield server


def _dynamic(kube: KubeAPIServer) -> tuple[Any, Any]:
    import importlib

    kubernetes: Any = importlib.import_module("kubernetes")
    api = kubernetes.config.new_client_from_config(config_file=str(kube.kubeconfig_path))
    return api, kubernetes.dynamic.DynamicClient(
        api, cache_file=str(kube.work_dir / "discovery.json")
    )


def _all_kinds(dyn: Any) -> list[Any]:
    """Every listable kind in its preferred version (the test's own discovery)."""
    from kubernetes.dynamic import Resource

    return [
        r
        for group in dyn.resources
        for r in group
        if type(r) is Resource and r.preferred and "list" in (r.verbs or ())
    ]


def _labelled(dyn: Any, selector: str, namespace: str | None = None) -> list[str]:
    """``Kind namespace/name`` of every object matching ``selector``: of any kind in any
    namespace, or with ``namespace``, of the namespaced kinds in that namespace."""
    kinds = [
        r for r in _all_kinds(dyn) if r.kind != "Event" and (namespace is None or r.namespaced)
    ]

    def one(r: Any) -> list[str]:
        items = r.get(label_selector=selector, namespace=namespace).items
        return [f"{r.kind} {i.metadata.namespace or ''}/{i.metadata.name}" for i in items]

    with ThreadPoolExecutor(8) as pool:
        return sorted(o for found in pool.map(one, kinds) for o in found)


def _namespace_controller(kube: KubeAPIServer, stop: threading.Event, errors: list[str]) -> None:
    """Play the namespace controller for GreenFlow's namespaces: finalize one that is
    Terminating once nothing labelled by GreenFlow is left in it (the real controller would
    delete what is left itself; not doing so makes release prove that it did)."""
    import kubernetes

    api, dyn = _dynamic(kube)
    core: Any = kubernetes.client.CoreV1Api(api)
    try:
        while not stop.wait(0.05):
            try:
                for ns in core.list_namespace(label_selector=MANAGED).items:
                    if not ns.metadata.deletion_timestamp or not ns.spec.finalizers:
                        continue
                    if _labelled(dyn, MANAGED, ns.metadata.name):
                        continue
                    ns.spec.finalizers = []
                    core.replace_namespace_finalize(ns.metadata.name, ns)
            except Exception as exc:  # reported by the fixture; a 409 race is retried
                if "409" not in str(exc):
                    errors.append(f"{type(exc).__name__}: {str(exc)[:300]}")
    finally:
        api.close()


@pytest.fixture(scope="module")
def cluster(kube: KubeAPIServer) -> Iterator[KubeAPIServer]:
    """The API server with three nodes (created by the test, as kubelets would) and the
    namespace controller played by a thread."""
    api, dyn = _dynamic(kube)
    nodes = dyn.resources.get(api_version="v1", kind="Node")
    for name, (labels, ip) in NODES.items():
        nodes.create(
            body={
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {"name": name, "labels": labels},
                "status": {
                    "addresses": [
                        {"type": "InternalIP", "address": ip},
                        {"type": "Hostname", "address": name},
                    ],
                    "capacity": {"cpu": "16", "memory": "64Gi"},
                    "nodeInfo": {
                        "kernelVersion": "6.12.0-amd64",
                        "osImage": "Debian GNU/Linux 13",
                        "containerRuntimeVersion": "containerd://2.1.4",
                        "kubeletVersion": "v1.37.2",
                        "architecture": "amd64",
                    },
                },
            }
        )
    stop, errors = threading.Event(), list[str]()
    thread = threading.Thread(target=_namespace_controller, args=(kube, stop, errors), daemon=True)
    thread.start()
    try:
        yield kube
    finally:
        stop.set()
        thread.join(10)
        api.close()
    assert not errors, f"the namespace controller played by the test failed: {errors}"


@pytest.fixture(scope="module")
def dyn(cluster: KubeAPIServer) -> Iterator[Any]:
    """The test's own dynamic client, to look at what GreenFlow did."""
    api, client = _dynamic(cluster)
    yield client
    api.close()


def _platform(cluster: KubeAPIServer, **config: Any) -> KubernetesPlatform:
    return KubernetesPlatform(KubernetesConfig(kubeconfig=str(cluster.kubeconfig_path), **config))


@pytest.fixture
def acquired(
    cluster: KubeAPIServer, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[tuple[KubernetesPlatform, Inventory, StateRecorder]]:
    """An acquired platform for experiment ``<test name>``, released after the test."""
    platform = _platform(cluster)
    state = StateRecorder()
    experiment = request.node.name.removeprefix("test_").replace("_", "-")[:40]
    ctx = make_deploy_context(tmp_path / "platform", experiment=experiment, record_state=state)
    inventory = platform.acquire(ctx)
    try:
        yield platform, inventory, state
    finally:
        platform.release()


def _deploy(
    service: Any, platform: KubernetesPlatform, inventory: Inventory, tmp_path: Path
) -> StateRecorder:
    state = StateRecorder()
    service.deploy(
        platform, inventory, make_deploy_context(tmp_path / service.name, record_state=state)
    )
    return state


def _patch_status(
    dyn: Any, api_version: str, kind: str, namespace: str, name: str, status: dict[str, Any]
) -> None:
    resource = dyn.resources.get(api_version=api_version, kind=kind)
    resource.status.patch(
        body={"status": status},
        name=name,
        namespace=namespace,
        content_type="application/merge-patch+json",
    )


# -- tests that need no server ---------------------------------------------------------------


def test_platform_and_services_are_registered_and_need_kubernetes() -> None:
    """The entry points load the classes; both services require the KUBERNETES capability."""
    from greenflow.plugins import Kind, load

    assert load(Kind.PLATFORM, "kubernetes", where="test") is KubernetesPlatform
    assert KubernetesPlatform.capabilities == frozenset({Capability.KUBERNETES})
    for name, cls in (("prometheus", PrometheusService), ("scaphandre", ScaphandreService)):
        assert load(Kind.SERVICE, name, where="test") is cls
        assert cls.requires == frozenset({Capability.KUBERNETES})


def test_pod_blocking_reason_names_phase_condition_and_containers() -> None:
    """An unschedulable pod reads as its phase and the PodScheduled condition; a crashing
    one as its waiting reason and its last termination."""
    pending = {
        "metadata": {"name": "p"},
        "status": {
            "phase": "Pending",
            "conditions": [
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "message": UNSCHEDULABLE,
                }
            ],
        },
    }
    assert pod_blocking_reason(pending) == (
        f"pod p: phase Pending; PodScheduled False, reason Unschedulable: {UNSCHEDULABLE}"
    )
    crashing = {
        "metadata": {"name": "k"},
        "spec": {"nodeName": "n1"},
        "status": {
            "phase": "Running",
            "containerStatuses": [
                {
                    "name": "kafka",
                    "ready": False,
                    "restartCount": 3,
                    "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s"}},
                    "lastState": {"terminated": {"reason": "OOMKilled", "exitCode": 137}},
                }
            ],
        },
    }
    reason = pod_blocking_reason(crashing)
    assert "container kafka waiting: CrashLoopBackOff (back-off 40s)" in reason
    assert "last: OOMKilled (exit code 137)" in reason and "on node n1" in reason


def test_validate_a_kubernetes_plan_without_connecting(tmp_path: Path) -> None:
    """`greenflow validate` accepts a plan on the kubernetes platform with prometheus and
    scaphandre, without a cluster (the kubeconfig does not exist) and without importing
    the kubernetes client."""
    plan = tmp_path / "plan.toml"
    plan.write_text(
        '[experiment]\nname = "k8s-validate"\n\n'
        '[platform]\ntype = "kubernetes"\nkubeconfig = "/nonexistent/kubeconfig"\n'
        'context = "nowhere"\nrole_labels = { worker = "greenflow.io/role=worker" }\n\n'
        '[[services]]\ntype = "scaphandre"\nroles = ["broker", "worker"]\n\n'
        '[[services]]\ntype = "prometheus"\nscrape_interval = "2s"\n'
        'remote_write_url = "http://vm.example:8428/api/v1/write"\n\n'
        '[workload]\ntype = "command"\ncommand = "true"\n'
    )
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from greenflow.cli import main\n"
        f"result = CliRunner().invoke(main, ['validate', '--offline', {str(plan)!r}])\n"
        "print(result.output)\n"
        "assert result.exit_code == 0, result.output\n"
        "assert 'kubernetes' not in sys.modules, 'validate imported the kubernetes client'\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ok" in done.stdout


# -- against the API server ------------------------------------------------------------------


@pytest.mark.slow
def test_acquire_builds_the_inventory_from_node_labels(
    cluster: KubeAPIServer, dyn: Any, acquired: tuple[KubernetesPlatform, Inventory, StateRecorder]
) -> None:
    """Each node is a host with its InternalIP and the roles its labels give; the namespace
    exists with GreenFlow's labels; the recorded state names it without any credential."""
    platform, inventory, state = acquired
    assert [(h.name, h.address, sorted(h.roles)) for h in inventory.hosts] == [
        ("n-broker", "10.0.0.2", ["broker"]),
        ("n-control", "10.0.0.1", ["control"]),
        ("n-worker", "10.0.0.3", ["worker"]),
    ]
    kube = platform.kube
    assert kube is not None and kube.namespace == f"greenflow-{kube.experiment}"
    ns = dyn.resources.get(api_version="v1", kind="Namespace").get(name=kube.namespace)
    assert ns.metadata.labels[MANAGED_BY_LABEL] == "greenflow"
    assert ns.metadata.labels[EXPERIMENT_LABEL] == kube.experiment
    assert ns.metadata.labels["pod-security.kubernetes.io/enforce"] == "privileged"
    recorded = state.state
    assert recorded["namespace"] == kube.namespace
    assert recorded["context"] == "greenflow-test"
    assert recorded["kubeconfig"] == str(cluster.kubeconfig_path)
    assert cluster.token not in json.dumps(state.calls)
    facts = platform.describe()
    assert cluster.token not in json.dumps(facts)
    assert facts["server_version"]["gitVersion"] == "v1.37.2"
    worker = next(n for n in facts["nodes"] if n["name"] == "n-worker")
    assert worker["capacity"] == {"cpu": "16", "memory": "64Gi"}
    assert worker["kernel"] == "6.12.0-amd64"
    assert worker["container_runtime"] == "containerd://2.1.4"
    assert worker["labels"]["disk"] == "ssd" and worker["roles"] == ["worker"]


@pytest.mark.slow
def test_check_roles_lists_the_nodes_and_their_labels(cluster: KubeAPIServer) -> None:
    """A role no node carries is refused with every node and its labels (read without
    acquiring); the roles the nodes carry are accepted."""
    platform = _platform(cluster, role_labels={"gpu": "example.com/gpu=true"})
    assert platform.check_roles(frozenset({"broker", "worker", "control"})) is None
    reason = platform.check_roles(frozenset({"gpu", "broker"}))
    assert reason is not None
    assert "no node carries role(s) gpu (label example.com/gpu=true)" in reason
    for name, (labels, _ip) in NODES.items():
        line = next(ln for ln in reason.splitlines() if ln.strip().startswith(f"{name}:"))
        for key, value in labels.items():
            assert f"{key}={value}" in line
    assert "kubectl label node NODE example.com/gpu=true" in reason
    unknown = platform.check_roles(frozenset({"storage"}))
    assert unknown is not None and "role_labels" in unknown


def test_validate_refuses_a_role_no_node_carries(cluster: KubeAPIServer, tmp_path: Path) -> None:
    """`greenflow validate` reads the nodes (read-only) and refuses a plan whose services
    need a role no node carries, listing the nodes."""
    from click.testing import CliRunner

    from greenflow.cli import main

    plan = tmp_path / "plan.toml"
    plan.write_text(
        '[experiment]\nname = "k8s-roles"\n\n'
        f'[platform]\ntype = "kubernetes"\nkubeconfig = "{cluster.kubeconfig_path}"\n'
        'role_labels = { gpu = "example.com/gpu=true" }\n\n'
        '[[services]]\ntype = "scaphandre"\nroles = ["gpu"]\n\n'
        '[workload]\ntype = "command"\ncommand = "true"\n'
    )
    result = CliRunner().invoke(main, ["validate", str(plan)])
    assert result.exit_code == 1, result.output
    assert "[platform]" in result.output and "gpu" in result.output
    for name in NODES:
        assert name in result.output
    assert "Traceback" not in result.output


@pytest.mark.slow
def test_an_unreachable_cluster_is_a_clear_error(cluster: KubeAPIServer, tmp_path: Path) -> None:
    """A kubeconfig whose server does not answer: acquire says which API it could not reach
    and with which context; nothing is left for release to do."""
    config = json.loads(cluster.kubeconfig_path.read_text())
    config["clusters"][0]["cluster"]["server"] = "https://127.0.0.1:9"  # discard: refused
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(json.dumps(config))
    platform = KubernetesPlatform(KubernetesConfig(kubeconfig=str(kubeconfig)))
    with pytest.raises(
        PlatformError,
        match=r"cannot reach the Kubernetes API at https://127.0.0.1:9 \(context 'greenflow-test'",
    ):
        platform.acquire(make_deploy_context(tmp_path / "p", experiment="unreachable"))
    platform.release()
    with pytest.raises(GreenFlowError, match=r"cannot reach the API at https://127\.0\.0\.1:9"):
        platform.check_roles(frozenset({"broker"}))
    missing = KubernetesPlatform(KubernetesConfig(kubeconfig=str(tmp_path / "nope")))
    with pytest.raises(PlatformError, match=r"kubeconfig .*nope' does not exist"):
        missing.check_roles(frozenset({"broker"}))


@pytest.mark.slow
def test_services_are_accepted_labelled_and_idempotent(
    dyn: Any, tmp_path: Path, acquired: tuple[KubernetesPlatform, Inventory, StateRecorder]
) -> None:
    """Both services' manifests pass the API server's validation; every object carries the
    managed-by and experiment labels (pod templates too); applying again changes no
    resourceVersion; the remote-write password is in a Secret, not in the ConfigMap."""
    platform, inventory, _state = acquired
    kube = platform.kube
    assert kube is not None
    prometheus = PrometheusService(
        "prometheus",
        PrometheusServiceConfig(
            scrape_interval=Duration(2),
            remote_write_url="https://writer:s3cret@vm.example:8428/api/v1/write",
        ),
    )
    scaphandre = ScaphandreService("scaphandre", ScaphandreServiceConfig())
    p_state = _deploy(prometheus, platform, inventory, tmp_path)
    _deploy(scaphandre, platform, inventory, tmp_path)
    assert p_state.state["session"]["namespace"] == kube.namespace

    selector = kube.selector()
    ours = _labelled(dyn, selector)
    assert ours == sorted(
        [
            f"Namespace /{kube.namespace}",
            f"ServiceAccount {kube.namespace}/prometheus",
            f"ClusterRole /{kube.namespace}-prometheus",
            f"ClusterRoleBinding /{kube.namespace}-prometheus",
            f"ConfigMap {kube.namespace}/prometheus-config",
            f"Secret {kube.namespace}/prometheus-remote-write",
            f"Deployment {kube.namespace}/prometheus",
            f"Service {kube.namespace}/prometheus",
            f"ServiceAccount {kube.namespace}/scaphandre",
            f"ClusterRole /{kube.namespace}-scaphandre",
            f"ClusterRoleBinding /{kube.namespace}-scaphandre",
            f"DaemonSet {kube.namespace}/scaphandre",
        ]
    )
    # Nothing in the namespace lacks the labels (no controller adds objects here).
    assert _labelled(dyn, "", kube.namespace) == [o for o in ours if f" {kube.namespace}/" in o]

    ds = kube.get("DaemonSet", "scaphandre")
    assert ds is not None
    template = ds["spec"]["template"]
    for key, value in kube.labels.items():
        assert template["metadata"]["labels"][key] == value
    assert template["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
    assert template["metadata"]["annotations"]["prometheus.io/port"] == "8080"
    pod = template["spec"]
    assert pod["hostPID"] is True
    container = pod["containers"][0]
    assert container["securityContext"]["privileged"] is True
    assert container["args"][0] == "prometheus" and "--containers" in container["args"]
    assert {m["mountPath"]: m.get("readOnly") for m in container["volumeMounts"]} == {
        "/proc": True,
        "/sys/class/powercap": True,
    }
    # The node's own RAPL tree unless powercap_path says otherwise.
    assert {v["name"]: v["hostPath"]["path"] for v in pod["volumes"]} == {
        "proc": "/proc",
        "powercap": "/sys/class/powercap",
    }
    terms = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"
    ]
    assert [t["matchExpressions"][0]["key"] for t in terms] == [
        "node.kubernetes.io/broker",
        "node.kubernetes.io/worker",
    ]

    deployment = kube.get("Deployment", "prometheus")
    assert deployment is not None
    placement = deployment["spec"]["template"]["spec"]
    # kubeadm's control-plane label is empty: the selector uses the value the node carries.
    assert placement["nodeSelector"] == {"node-role.kubernetes.io/control-plane": ""}
    assert {"key": "node-role.kubernetes.io/control-plane", "operator": "Exists"} in placement[
        "tolerations"
    ]
    config_map = kube.get("ConfigMap", "prometheus-config")
    assert config_map is not None
    scrape = json.loads(config_map["data"]["prometheus.yml"])
    assert "s3cret" not in config_map["data"]["prometheus.yml"]
    assert scrape["global"]["scrape_interval"] == "2s"
    assert scrape["remote_write"] == [
        {
            "url": "https://vm.example:8428/api/v1/write",
            "basic_auth": {
                "username_file": "/etc/prometheus/secret/username",
                "password_file": "/etc/prometheus/secret/password",
            },
        }
    ]
    sd = scrape["scrape_configs"][0]
    assert sd["kubernetes_sd_configs"] == [
        {"role": "pod", "namespaces": {"names": [kube.namespace]}}
    ]
    assert sd["relabel_configs"][0]["source_labels"] == [
        "__meta_kubernetes_pod_annotation_prometheus_io_scrape"
    ]
    # Scaphandre 1.0 sends no Content-Type; the default Prometheus (3.x) needs this to scrape it.
    assert sd["fallback_scrape_protocol"] == "PrometheusText0.0.4"
    assert prometheus.endpoints() == {"url": f"http://prometheus.{kube.namespace}.svc:9090"}

    versions = {
        o["metadata"]["name"] + o["kind"]: o["metadata"]["resourceVersion"] for o in kube.labelled()
    }
    _deploy(prometheus, platform, inventory, tmp_path)
    _deploy(scaphandre, platform, inventory, tmp_path)
    again = {
        o["metadata"]["name"] + o["kind"]: o["metadata"]["resourceVersion"] for o in kube.labelled()
    }
    assert again == versions


@pytest.mark.slow
def test_wait_ready_passes_once_the_controllers_report(
    dyn: Any, tmp_path: Path, acquired: tuple[KubernetesPlatform, Inventory, StateRecorder]
) -> None:
    """wait_ready times out while no controller reported; once the test, playing the
    DaemonSet and Deployment controllers, writes their status, it returns."""
    platform, inventory, _state = acquired
    kube = platform.kube
    assert kube is not None
    scaphandre = ScaphandreService("scaphandre", ScaphandreServiceConfig())
    prometheus = PrometheusService("prometheus", PrometheusServiceConfig())
    _deploy(scaphandre, platform, inventory, tmp_path)
    _deploy(prometheus, platform, inventory, tmp_path)
    with pytest.raises(ReadinessTimeout, match="numberReady 0 of desiredNumberScheduled 0"):
        scaphandre.wait_ready(0.5)

    _patch_status(
        dyn,
        "apps/v1",
        "DaemonSet",
        kube.namespace,
        "scaphandre",
        {
            "observedGeneration": 1,
            "desiredNumberScheduled": 2,
            "currentNumberScheduled": 2,
            "numberMisscheduled": 0,
            "numberReady": 1,
            "numberAvailable": 1,
        },
    )
    with pytest.raises(ReadinessTimeout, match="numberReady 1 of desiredNumberScheduled 2"):
        scaphandre.wait_ready(0.5)
    _patch_status(
        dyn,
        "apps/v1",
        "DaemonSet",
        kube.namespace,
        "scaphandre",
        {"numberReady": 2, "numberAvailable": 2, "updatedNumberScheduled": 2},
    )
    started = time.monotonic()
    scaphandre.wait_ready(10)
    _patch_status(
        dyn,
        "apps/v1",
        "Deployment",
        kube.namespace,
        "prometheus",
        {
            "observedGeneration": 1,
            "replicas": 1,
            "readyReplicas": 1,
            "availableReplicas": 1,
            "updatedReplicas": 1,
        },
    )
    prometheus.wait_ready(10)
    assert time.monotonic() - started < 5


@pytest.mark.slow
def test_waits_time_out_with_the_blocking_condition(
    dyn: Any, tmp_path: Path, acquired: tuple[KubernetesPlatform, Inventory, StateRecorder]
) -> None:
    """A pod whose nodeSelector no node matches, marked Unschedulable by the test playing
    the scheduler: waiting for it, or for the Deployment it belongs to, times out with
    phase Pending, PodScheduled False, reason Unschedulable and the scheduler's message."""
    platform, inventory, _state = acquired
    kube = platform.kube
    assert kube is not None
    prometheus = PrometheusService("prometheus", PrometheusServiceConfig())
    _deploy(prometheus, platform, inventory, tmp_path)
    deployment = kube.get("Deployment", "prometheus")
    assert deployment is not None
    # The ReplicaSet controller's part: a pod from the Deployment's template...
    template = deployment["spec"]["template"]
    kube.apply(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": "prometheus-7d4b9-x2x7q",
                "labels": template["metadata"]["labels"],
            },
            "spec": {**template["spec"], "nodeSelector": {"greenflow.io/nobody": "true"}},
        }
    )
    # ... and the scheduler's: it fits no node.
    _patch_status(
        dyn,
        "v1",
        "Pod",
        kube.namespace,
        "prometheus-7d4b9-x2x7q",
        {
            "phase": "Pending",
            "conditions": [
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "message": UNSCHEDULABLE,
                    "lastTransitionTime": "2026-01-01T00:00:00Z",
                }
            ],
        },
    )

    def running(pod: dict[str, Any]) -> tuple[bool, str]:
        phase = pod.get("status", {}).get("phase")
        return phase == "Running", f"phase {phase}"

    with pytest.raises(ReadinessTimeout) as pod_wait:
        kube.wait("Pod", "prometheus-7d4b9-x2x7q", running, 0.5, "the pod to run", interval_s=0.1)
    message = str(pod_wait.value)
    assert "timed out after 0.5s waiting for the pod to run" in message
    assert (
        "blocking: pod prometheus-7d4b9-x2x7q: phase Pending; PodScheduled False, reason "
        f"Unschedulable: {UNSCHEDULABLE}"
    ) in message

    # A pod that never ran has an empty log; one that does not exist is the server's 404.
    assert kube.pod_logs("prometheus-7d4b9-x2x7q", tail_lines=20) == ""
    with pytest.raises(KubeApiError, match=r"read the log of Pod .*/nobody: HTTP 404: .*not found"):
        kube.pod_logs("nobody")

    with pytest.raises(ReadinessTimeout) as deployment_wait:
        prometheus.wait_ready(0.5)
    message = str(deployment_wait.value)
    assert "Deployment prometheus: availableReplicas 0/1" in message
    assert f"PodScheduled False, reason Unschedulable: {UNSCHEDULABLE}" in message


@pytest.mark.slow
def test_remove_deletes_only_that_service_and_remove_recorded_the_rest(
    dyn: Any, tmp_path: Path, acquired: tuple[KubernetesPlatform, Inventory, StateRecorder]
) -> None:
    """remove() deletes one service's objects (cluster-scoped ones too) and waits; the other
    service is left; remove_recorded from its recorded state alone deletes that one."""
    platform, inventory, _state = acquired
    kube = platform.kube
    assert kube is not None
    prometheus = PrometheusService("prometheus", PrometheusServiceConfig())
    scaphandre = ScaphandreService("scaphandre", ScaphandreServiceConfig())
    _deploy(prometheus, platform, inventory, tmp_path)
    s_state = _deploy(scaphandre, platform, inventory, tmp_path)
    namespace = f"Namespace /{kube.namespace}"
    prometheus.remove()
    left = _labelled(dyn, kube.selector())
    assert namespace in left and all("scaphandre" in o for o in left if o != namespace), left
    prometheus.remove()  # idempotent
    ScaphandreService.remove_recorded(scaphandre.config, s_state.state)
    assert _labelled(dyn, kube.selector()) == [namespace]


@pytest.mark.slow
def test_release_leaves_nothing_with_the_experiment_label(
    cluster: KubeAPIServer, dyn: Any, tmp_path: Path
) -> None:
    """After both services and a pod are deployed, release deletes every labelled object
    of every kind (cluster-scoped included) and the namespace, and waits until they are
    gone; release again and release_recorded (greenflow down) are no-ops."""
    platform = _platform(cluster, timeout_s=30)
    state = StateRecorder()
    inventory = platform.acquire(
        make_deploy_context(tmp_path / "p", experiment="release-all", record_state=state)
    )
    kube = platform.kube
    assert kube is not None
    namespace, selector = kube.namespace, kube.selector()
    _deploy(
        PrometheusService("prometheus", PrometheusServiceConfig()), platform, inventory, tmp_path
    )
    _deploy(
        ScaphandreService("scaphandre", ScaphandreServiceConfig()), platform, inventory, tmp_path
    )
    kube.apply(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "loose"},
            # An existing service account: no controller makes the "default" one here.
            "spec": {
                "serviceAccountName": "scaphandre",
                "containers": [{"name": "c", "image": "registry.invalid/x:1"}],
            },
        }
    )
    assert len(_labelled(dyn, selector)) == 12  # 6 + 4 of the services, the pod, the namespace

    started = time.monotonic()
    platform.release()
    took = time.monotonic() - started
    assert _labelled(dyn, selector) == []
    assert _labelled(dyn, f"{EXPERIMENT_LABEL}={kube.experiment}") == []
    namespaces = dyn.resources.get(api_version="v1", kind="Namespace")
    assert namespace not in [n.metadata.name for n in namespaces.get().items]
    assert platform.kube is None and took < 15
    platform.release()
    KubernetesPlatform.release_recorded(platform.config, state.state)


@pytest.mark.slow
def test_release_recorded_cleans_up_after_a_crash(
    cluster: KubeAPIServer, dyn: Any, tmp_path: Path
) -> None:
    """A process that acquired and deployed, then vanished: release_recorded from the
    platform's recorded state (and remove_recorded first, as `greenflow down` does)
    deletes everything."""
    platform = _platform(cluster)
    state = StateRecorder()
    inventory = platform.acquire(
        make_deploy_context(tmp_path / "p", experiment="crashed", record_state=state)
    )
    p_state = _deploy(
        PrometheusService("prometheus", PrometheusServiceConfig()), platform, inventory, tmp_path
    )
    _deploy(
        ScaphandreService("scaphandre", ScaphandreServiceConfig()), platform, inventory, tmp_path
    )
    assert platform.kube is not None
    selector = platform.kube.selector()
    platform.kube.close()  # the process is gone: nothing of it is used below
    platform.kube = None
    PrometheusService.remove_recorded(PrometheusServiceConfig(), p_state.state)
    assert _labelled(dyn, selector) and all("prometheus" not in o for o in _labelled(dyn, selector))
    KubernetesPlatform.release_recorded(platform.config, state.state)
    assert _labelled(dyn, selector) == []


def test_teardown_still_deletes_after_the_runner_set_cancel(
    cluster: KubeAPIServer, dyn: Any, tmp_path: Path
) -> None:
    """The runner sets its cancel event *before* teardown (to stop its threads). The
    readiness waits stop on it, but remove and release must still delete and wait: on a
    real node, where pods take their grace period to go, they used to give up at the
    first poll (KeyboardInterrupt → "teardown.skipped") and leave everything up."""
    cancel = threading.Event()
    platform = _platform(cluster, timeout_s=30)
    inventory = platform.acquire(
        make_deploy_context(tmp_path / "p", experiment="cancelled", cancel=cancel)
    )
    kube = platform.kube
    assert kube is not None
    namespace, selector = kube.namespace, kube.selector()
    prometheus = PrometheusService("prometheus", PrometheusServiceConfig())
    _deploy(prometheus, platform, inventory, tmp_path)
    cancel.set()
    with pytest.raises(KeyboardInterrupt):  # a readiness wait still stops at once
        kube.poll(lambda: (False, "never"), what="nothing", timeout_s=30)
    try:
        prometheus.remove()
        assert all("prometheus" not in o for o in _labelled(dyn, selector))
        platform.release()
    except KeyboardInterrupt:  # would end the pytest session instead of failing
        pytest.fail("a delete wait stopped on the cancel event")
    assert _labelled(dyn, selector) == []
    namespaces = dyn.resources.get(api_version="v1", kind="Namespace")
    assert namespace not in [n.metadata.name for n in namespaces.get().items]


@pytest.mark.slow
def test_a_namespace_not_created_by_greenflow_is_never_deleted(
    cluster: KubeAPIServer, dyn: Any, tmp_path: Path
) -> None:
    """With [platform] namespace naming an existing namespace, release deletes GreenFlow's
    objects in it but leaves the namespace (and what is not GreenFlow's) alone."""
    namespaces = dyn.resources.get(api_version="v1", kind="Namespace")
    namespaces.create(
        body={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}}
    )
    config_maps = dyn.resources.get(api_version="v1", kind="ConfigMap")
    config_maps.create(
        namespace="team-a",
        body={"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "theirs"}},
    )
    platform = _platform(cluster, namespace="team-a")
    inventory = platform.acquire(make_deploy_context(tmp_path / "p", experiment="shared"))
    _deploy(
        ScaphandreService("scaphandre", ScaphandreServiceConfig()), platform, inventory, tmp_path
    )
    assert platform.kube is not None
    selector = platform.kube.selector()
    platform.release()
    assert _labelled(dyn, selector) == []
    ns = namespaces.get(name="team-a")
    assert ns.metadata.deletionTimestamp is None and not (ns.metadata.labels or {}).get(
        EXPERIMENT_LABEL
    )
    assert config_maps.get(name="theirs", namespace="team-a").metadata.name == "theirs"


@pytest.mark.slow
def test_kube_session_reconnects_from_its_state(
    cluster: KubeAPIServer, acquired: tuple[KubernetesPlatform, Inventory, StateRecorder]
) -> None:
    """KubeSession.from_state(state()) talks to the same namespace of the same cluster."""
    platform, _inventory, _state = acquired
    assert platform.kube is not None
    again = KubeSession.from_state(platform.kube.state())
    try:
        assert again.namespace == platform.kube.namespace
        assert again.get("Namespace", again.namespace) is not None
        assert again.node_selector("broker") == {"node.kubernetes.io/broker": "true"}
    finally:
        again.close()


@pytest.mark.slow
class TestKubernetesPlatformContract(PlatformContract):
    """The platform contract of greenflow.testing, on the test cluster."""

    platform_class = KubernetesPlatform
    entry_point_name = "kubernetes"

    @pytest.fixture
    def config(self, cluster: KubeAPIServer) -> KubernetesConfig:
        return KubernetesConfig(kubeconfig=str(cluster.kubeconfig_path), timeout_s=30)
