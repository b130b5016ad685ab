"""Test support for brokers on Kubernetes against a real API server (no kubelet, no controllers).

Used by greenflow-kafka's and greenflow-redpanda's tests; it needs the ``kubernetes`` client and
``greenflow.testing.kube.KubeAPIServer``. Only the API server and etcd run, so nothing acts
on what is applied: the helpers here play the parts the tests need, and each says which.

- :func:`cluster_nodes` creates Node objects with role labels; :func:`kube_cluster` a
  namespace GreenFlow does not own (with its ``default`` service account, as the
  service-account controller would) (so that releasing the platform deletes the experiment's objects but leaves the
  namespace, whose deletion would need the namespace controller), and acquires a real
  ``kubernetes`` platform on them.
- :func:`set_statefulset_ready` plays the StatefulSet controller's status report.
- :class:`ClaimProtectionController` plays the pvc-protection controller (claims being
  deleted lose their finalizer).
- :class:`JobController` plays the Job controller and the kubelet: it makes the pods of every
  new Job from its template and sets the status a test chooses (succeeded, OOMKilled...).
- :class:`ScriptedLogs` plays the kubelet's log endpoint (pod logs from a dict), and
  :func:`empty_topic_read` the first offsets read of a run (before any producer writes).
"""

from __future__ import annotations

import contextlib
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs

from greenflow.api import Inventory

BROKER_LABEL = "node.kubernetes.io/broker"
WORKER_LABEL = "node.kubernetes.io/worker"
#: The nodes :func:`kube_cluster` creates by default: two broker nodes and one worker.
DEFAULT_NODES: dict[str, dict[str, str]] = {
    "broker-a": {BROKER_LABEL: "true"},
    "broker-b": {BROKER_LABEL: "true"},
    "worker-a": {WORKER_LABEL: "true"},
}


@attrs.define
class KubeCluster:
    """An acquired ``kubernetes`` platform on the test API server."""

    platform: Any
    inventory: Inventory
    api: Any
    namespace: str
    experiment: str

    @property
    def session(self) -> Any:
        return self.platform.kube


def _k8s() -> Any:
    """The ``kubernetes`` package, untyped here: these helpers pass plain dicts where its
    annotations ask for model objects (the client serialises both)."""
    import importlib

    return importlib.import_module("kubernetes")


def _client(kubeconfig: Path) -> Any:
    kubernetes = _k8s()
    return kubernetes.config.new_client_from_config(config_file=str(kubeconfig))


@contextlib.contextmanager
def cluster_nodes(
    kubeconfig: Path, nodes: Mapping[str, Mapping[str, str]] = DEFAULT_NODES
) -> Iterator[None]:
    """Node objects with these labels for the block (a node's status says nothing: no
    kubelet registers them)."""
    kubernetes = _k8s()
    api = _client(kubeconfig)
    core = kubernetes.client.CoreV1Api(api)
    try:
        for name, labels in nodes.items():
            core.create_node(
                {
                    "apiVersion": "v1",
                    "kind": "Node",
                    "metadata": {
                        "name": name,
                        "labels": {"kubernetes.io/hostname": name, **labels},
                    },
                }
            )
        yield
    finally:
        for name in nodes:
            with contextlib.suppress(kubernetes.client.exceptions.ApiException):
                core.delete_node(name)
        api.close()


@contextlib.contextmanager
def kube_cluster(
    kubeconfig: Path, work_dir: Path, *, namespace: str, experiment: str | None = None
) -> Iterator[KubeCluster]:
    """A ``kubernetes`` platform acquired on the API server (nodes must exist; see
    :func:`cluster_nodes`), in ``namespace``, created here without GreenFlow's labels so that
    release leaves it; released on exit."""
    kubernetes = _k8s()
    from greenflow.builtin.kubernetes.platform import KubernetesConfig, KubernetesPlatform
    from greenflow.testing import make_deploy_context

    experiment = experiment or f"it-{secrets.token_hex(3)}"
    api = _client(kubeconfig)
    core = kubernetes.client.CoreV1Api(api)
    try:
        core.create_namespace(
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
        )
    except kubernetes.client.exceptions.ApiException as exc:
        if exc.status != 409:
            raise
    # Play the service-account controller: pods are refused without the namespace's default
    # service account.
    try:
        core.create_namespaced_service_account(namespace, {"metadata": {"name": "default"}})
    except kubernetes.client.exceptions.ApiException as exc:
        if exc.status != 409:
            raise
    platform = KubernetesPlatform(
        KubernetesConfig(kubeconfig=str(kubeconfig), namespace=namespace, timeout_s=60.0)
    )
    try:
        inventory = platform.acquire(make_deploy_context(work_dir, experiment=experiment))
        yield KubeCluster(platform, inventory, api, namespace, experiment)
    finally:
        platform.release()
        api.close()


def leftovers(kubeconfig: Path, namespace: str, experiment: str) -> list[str]:
    """``"Kind name"`` of everything still carrying the experiment's labels (any kind,
    cluster-scoped ones included), through a fresh session."""
    from greenflow.builtin.kubernetes import KubeSession

    session = KubeSession.connect(
        experiment=experiment, namespace=namespace, kubeconfig=str(kubeconfig)
    )
    try:
        return [f"{o['kind']} {o['metadata']['name']}" for o in session.labelled()]
    finally:
        session.close()


@contextlib.contextmanager
def api_server_with_nodes(work_dir: Path) -> Iterator[Any]:
    """A real kube-apiserver (:class:`greenflow.testing.kube.KubeAPIServer`) with the
    :func:`cluster_nodes`, for a module-scoped fixture; the test skips, saying how to build
    them, when the binaries are not built (and fails under CI=true, see noxfile.py)."""
    import pytest

    from greenflow.testing.kube import KubeAPIServer, KubeBinariesMissing, find_kube_binaries

    try:
        binaries = find_kube_binaries()
    except KubeBinariesMissing as exc:
        pytest.skip(str(exc))
    with (
        KubeAPIServer(work_dir, binaries=binaries) as server,
        cluster_nodes(server.kubeconfig_path),
    ):
        yield server


@contextlib.contextmanager
def checked_cluster(kubeconfig: Path, work_dir: Path, *, namespace: str) -> Iterator[KubeCluster]:
    """:func:`kube_cluster`, then the check every test relies on: after release nothing
    with the experiment's labels is left."""
    with kube_cluster(kubeconfig, work_dir, namespace=namespace) as c:
        yield c
    assert leftovers(kubeconfig, namespace, c.experiment) == []


def set_statefulset_ready(api: Any, namespace: str, name: str, ready: int) -> None:
    """Play the StatefulSet controller: report ``ready`` replicas, all current."""
    kubernetes = _k8s()
    apps = kubernetes.client.AppsV1Api(api)
    sts = apps.read_namespaced_stateful_set(name, namespace)
    apps.patch_namespaced_stateful_set_status(
        name,
        namespace,
        {
            "status": {
                "observedGeneration": sts.metadata.generation,
                "replicas": ready,
                "readyReplicas": ready,
                "currentReplicas": ready,
                "updatedReplicas": ready,
                "availableReplicas": ready,
            }
        },
    )


def container_status(pod: Mapping[str, Any], **state: Any) -> list[dict[str, Any]]:
    """``containerStatuses`` of ``pod`` with every container in ``state`` (e.g.
    ``terminated={"exitCode": 137, "reason": "OOMKilled"}``)."""
    return [
        {
            "name": c["name"],
            "image": c["image"],
            "imageID": "",
            "ready": False,
            "restartCount": 0,
            "state": state,
        }
        for c in pod["spec"]["containers"]
    ]


def succeeded(pod: Mapping[str, Any]) -> dict[str, Any]:
    """A pod status: ran to completion with exit code 0."""
    return {
        "phase": "Succeeded",
        "containerStatuses": container_status(
            pod, terminated={"exitCode": 0, "reason": "Completed"}
        ),
    }


def oom_killed(pod: Mapping[str, Any]) -> dict[str, Any]:
    """A pod status: its container was killed by the kernel for exceeding its memory limit."""
    return {
        "phase": "Failed",
        "containerStatuses": container_status(
            pod, terminated={"exitCode": 137, "reason": "OOMKilled"}
        ),
    }


#: Decides the status of pod ``index`` of a Job (``None``: leave it Pending).
Outcome = Callable[[Mapping[str, Any], Mapping[str, Any], int], dict[str, Any] | None]


class JobController(threading.Thread):
    """Plays the Job controller and the kubelet: for each Job that appears in ``namespace``
    it creates ``parallelism`` pods from the template (labelled with the completion index as
    the controller does) and sets each pod's status to ``outcome(job, pod, index)``.

    ``jobs`` keeps every Job seen, as stored by the API server. Use as a context manager.
    """

    def __init__(
        self, api: Any, namespace: str, outcome: Outcome, interval_s: float = 0.05
    ) -> None:
        super().__init__(name="job-controller", daemon=True)
        self.api = api
        self.namespace = namespace
        self.outcome = outcome
        self.interval_s = interval_s
        self.jobs: dict[str, dict[str, Any]] = {}
        self.errors: list[BaseException] = []
        self._stop_event = threading.Event()

    def run(self) -> None:
        kubernetes = _k8s()
        batch = kubernetes.client.BatchV1Api(self.api)
        while not self._stop_event.wait(self.interval_s):
            try:
                listed = batch.list_namespaced_job(self.namespace)
                for job in listed.items:
                    name = job.metadata.name
                    if name not in self.jobs and not job.metadata.deletion_timestamp:
                        stored = self.api.sanitize_for_serialization(job)
                        self.jobs[name] = stored
                        self._start(stored)
            except Exception as exc:  # reported by __exit__, never swallowed
                self.errors.append(exc)
                return

    def _start(self, job: Mapping[str, Any]) -> None:
        kubernetes = _k8s()
        core = kubernetes.client.CoreV1Api(self.api)
        template = job["spec"]["template"]
        for index in range(int(job["spec"].get("parallelism") or 1)):
            labels = {
                **(template["metadata"].get("labels") or {}),
                "batch.kubernetes.io/job-name": job["metadata"]["name"],
                "batch.kubernetes.io/job-completion-index": str(index),
            }
            pod = {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": f"{job['metadata']['name']}-{index}-{secrets.token_hex(3)}",
                    "labels": labels,
                },
                "spec": template["spec"],
            }
            created = self.api.sanitize_for_serialization(
                core.create_namespaced_pod(self.namespace, pod)
            )
            status = self.outcome(job, created, index)
            if status is not None:
                core.patch_namespaced_pod_status(
                    created["metadata"]["name"], self.namespace, {"status": status}
                )

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=10)

    def __enter__(self) -> JobController:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        if self.errors:
            raise self.errors[0]


class ClaimProtectionController(threading.Thread):
    """Plays the pvc-protection controller: removes the ``kubernetes.io/pvc-protection``
    finalizer (added by the API server's admission) from claims being deleted in
    ``namespace``, which no pod uses here, so that their deletion completes. A context
    manager."""

    def __init__(self, api: Any, namespace: str, interval_s: float = 0.05) -> None:
        super().__init__(name="pvc-protection-controller", daemon=True)
        self.api = api
        self.namespace = namespace
        self.interval_s = interval_s
        self.released: list[str] = []
        self._stop_event = threading.Event()

    def run(self) -> None:
        kubernetes = _k8s()
        core = kubernetes.client.CoreV1Api(self.api)
        while not self._stop_event.wait(self.interval_s):
            for claim in core.list_namespaced_persistent_volume_claim(self.namespace).items:
                if claim.metadata.deletion_timestamp and claim.metadata.finalizers:
                    with contextlib.suppress(kubernetes.client.exceptions.ApiException):
                        core.patch_namespaced_persistent_volume_claim(
                            claim.metadata.name, self.namespace, {"metadata": {"finalizers": None}}
                        )
                        self.released.append(claim.metadata.name)

    def __enter__(self) -> ClaimProtectionController:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop_event.set()
        self.join(timeout=10)


def by_component(**outcomes: Callable[[Mapping[str, Any]], dict[str, Any] | None]) -> Outcome:
    """An :data:`Outcome` by the Job's ``app.kubernetes.io/component`` label (``"producer"``,
    ``"topic-create"``...); ``default`` for the others, else pods stay Pending."""

    def outcome(
        job: Mapping[str, Any], pod: Mapping[str, Any], _index: int
    ) -> dict[str, Any] | None:
        component = (job["metadata"].get("labels") or {}).get("app.kubernetes.io/component", "")
        chosen = outcomes.get(component.replace("-", "_")) or outcomes.get("default")
        return chosen(pod) if chosen is not None else None

    return outcome


class ScriptedLogs:
    """The platform's session with pod logs from a dict: plays the kubelet's log endpoint,
    which the API server proxies to and which does not run here. Everything else is the real
    session's."""

    def __init__(self, session: Any) -> None:
        self._session = session
        self.logs: dict[str, str] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)

    def pod_logs(self, name: str, **_kw: Any) -> str:
        return self.logs.get(name, "")


def empty_topic_read(
    logs: ScriptedLogs, topic: str, partitions: int = 1
) -> Callable[[Mapping[str, Any]], dict[str, Any]]:
    """A pod outcome for the ``offsets-warmup`` Job, which kafka-ingest runs before the
    producers start: the pod succeeds and its log prints every partition of ``topic`` at offset
    0 between clock stamps of now, as the offsets tool's wrapper does."""

    def outcome(pod: Mapping[str, Any]) -> dict[str, Any]:
        now = time.time()
        offsets = "".join(f"{topic}:{p}:0\n" for p in range(partitions))
        logs.logs[pod["metadata"]["name"]] = (
            f"greenflow-read-start {now - 0.5:.6f}\n{offsets}greenflow-read-end {now:.6f}\n"
        )
        return succeeded(pod)

    return outcome


__all__ = [
    "DEFAULT_NODES",
    "ClaimProtectionController",
    "JobController",
    "KubeCluster",
    "ScriptedLogs",
    "by_component",
    "cluster_nodes",
    "container_status",
    "empty_topic_read",
    "kube_cluster",
    "leftovers",
    "oom_killed",
    "set_statefulset_ready",
    "succeeded",
]
