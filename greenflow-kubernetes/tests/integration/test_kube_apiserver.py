"""The ``kubernetes`` client against a real kube-apiserver + etcd on loopback.

The binaries come from ``bash scripts/kube-apiserver`` (built from the Go modules once,
cached; docs/kubernetes-testing.md); without them these tests skip and say that command.

Only the API server and etcd run: no kubelet, scheduler or controller-manager. What
these tests prove is what the API server itself does: validation (a malformed Deployment
is refused with 422), server-side apply and its idempotence, listing by label, RBAC with
a static token. Where a controller would act, the test plays its part and says so: the
namespace controller's work (deleting what is in a namespace, then removing the
``kubernetes`` finalizer) is done by :func:`_finalize_namespace`.
"""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from greenflow.api import wait_until
from greenflow_kubernetes.testing.apiserver import (
    BUILD_HINT,
    ETCD_VERSION,
    KUBE_VERSION,
    KubeAPIServer,
    KubeBinaries,
    KubeBinariesMissing,
    find_kube_binaries,
)

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[3]
MANAGED = {"app.kubernetes.io/managed-by": "greenflow"}
FIELD_MANAGER = "greenflow"


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
    """One API server for the module (it takes seconds to become ready)."""
    with KubeAPIServer(tmp_path_factory.mktemp("kube"), binaries=kube_binaries) as server:
        yield server


@pytest.fixture(scope="module")
def k8s(kube: KubeAPIServer) -> Iterator[Any]:
    """The ``kubernetes`` package with an ApiClient configured from the kubeconfig."""
    import kubernetes  # a dependency of greenflow-kubernetes: always there

    api = kubernetes.config.new_client_from_config(config_file=str(kube.kubeconfig_path))
    try:
        yield kubernetes, api
    finally:
        api.close()


def _finalize_namespace(kubernetes: Any, api: Any, name: str) -> None:
    """Play the namespace controller (kube-controller-manager, not running here): delete
    what GreenFlow put in the namespace, then clear the ``kubernetes`` finalizer so the
    API server removes the namespace."""
    core = kubernetes.client.CoreV1Api(api)
    apps = kubernetes.client.AppsV1Api(api)
    apps.delete_collection_namespaced_deployment(name)
    core.delete_collection_namespaced_config_map(name)
    ns = core.read_namespace(name)
    ns.spec.finalizers = []
    core.replace_namespace_finalize(name, ns)


def _configmap(name: str, data: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "labels": dict(MANAGED)},
        "data": data,
    }


def _deployment(name: str) -> dict[str, Any]:
    labels = {"app.kubernetes.io/name": name, **MANAGED}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app.kubernetes.io/name": name}},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [
                        {
                            "name": "main",
                            "image": "registry.invalid/greenflow/pause:1",
                            "resources": {
                                "requests": {"cpu": "100m", "memory": "64Mi"},
                                "limits": {"cpu": "100m", "memory": "64Mi"},
                            },
                        }
                    ]
                },
            },
        },
    }


def test_server_reports_the_pinned_version(k8s: Any) -> None:
    kubernetes, api = k8s
    info = kubernetes.client.VersionApi(api).get_code()
    assert info.git_version == KUBE_VERSION


def test_namespace_apply_validate_list_delete(k8s: Any) -> None:
    """The life of a GreenFlow namespace, with the namespace controller played by the test."""
    kubernetes, api = k8s
    ApiException = kubernetes.client.exceptions.ApiException
    core = kubernetes.client.CoreV1Api(api)
    apps = kubernetes.client.AppsV1Api(api)
    ns = "greenflow-it"

    core.create_namespace(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": dict(MANAGED)}}
    )

    # Server-side apply, twice with the same body: the second is a no-op.
    body = _configmap("plan", {"interval": "1s", "brokers": "3"})
    first = core.patch_namespaced_config_map(
        "plan", ns, body, field_manager=FIELD_MANAGER, _content_type="application/apply-patch+yaml"
    )
    second = core.patch_namespaced_config_map(
        "plan",
        ns,
        copy.deepcopy(body),
        field_manager=FIELD_MANAGER,
        _content_type="application/apply-patch+yaml",
    )
    assert second.metadata.resource_version == first.metadata.resource_version
    assert [m.manager for m in second.metadata.managed_fields] == [FIELD_MANAGER]
    assert [m.operation for m in second.metadata.managed_fields] == ["Apply"]
    # A changed apply is a write, and the server drops what the manager no longer sets.
    third = core.patch_namespaced_config_map(
        "plan",
        ns,
        _configmap("plan", {"interval": "2s"}),
        field_manager=FIELD_MANAGER,
        _content_type="application/apply-patch+yaml",
    )
    assert third.metadata.resource_version != first.metadata.resource_version
    assert third.data == {"interval": "2s"}

    # A well-formed Deployment passes validation (nothing runs it: no controllers).
    created = apps.create_namespaced_deployment(ns, _deployment("broker"))
    assert created.spec.template.spec.containers[0].resources.limits == {
        "cpu": "100m",
        "memory": "64Mi",
    }
    assert created.status.replicas is None  # no ReplicaSet controller, no status

    # A malformed one (selector does not match the template's labels) is refused.
    bad = _deployment("bad")
    bad["spec"]["selector"]["matchLabels"] = {"app.kubernetes.io/name": "other"}
    with pytest.raises(ApiException) as refused:
        apps.create_namespaced_deployment(ns, bad)
    assert refused.value.status == 422, refused.value.body
    assert "selector" in refused.value.body and "does not match template" in refused.value.body

    selector = "app.kubernetes.io/managed-by=greenflow"
    assert [
        d.metadata.name for d in apps.list_namespaced_deployment(ns, label_selector=selector).items
    ] == ["broker"]
    assert [
        c.metadata.name for c in core.list_namespaced_config_map(ns, label_selector=selector).items
    ] == ["plan"]

    # Deleting marks the namespace Terminating; without the namespace controller it
    # stays so until the test does the controller's work.
    core.delete_namespace(ns)
    assert core.read_namespace(ns).status.phase == "Terminating"
    _finalize_namespace(kubernetes, api, ns)

    def gone() -> tuple[bool, str]:
        try:
            phase = core.read_namespace(ns).status.phase
        except ApiException as exc:
            return exc.status == 404, f"HTTP {exc.status}"
        return False, f"phase {phase}"

    wait_until(gone, what=f"namespace {ns} to be deleted", timeout_s=30, interval_s=0.1)
    assert core.list_namespace(label_selector=selector).items == []


def test_token_is_admin_and_rbac_denies_others(kube: KubeAPIServer, k8s: Any) -> None:
    """The static token is in system:masters; an unknown token is not authenticated."""
    kubernetes, api = k8s
    review = kubernetes.client.AuthorizationV1Api(api).create_self_subject_access_review(
        {"spec": {"resourceAttributes": {"verb": "*", "group": "*", "resource": "*"}}}
    )
    assert review.status.allowed is True
    cfg = kubernetes.client.Configuration()
    cfg.host = kube.url
    cfg.ssl_ca_cert = str(kube.ca_path)
    cfg.api_key = {"authorization": "Bearer not-the-token"}
    with (
        kubernetes.client.ApiClient(cfg) as stranger,
        pytest.raises(kubernetes.client.exceptions.ApiException) as denied,
    ):
        kubernetes.client.CoreV1Api(stranger).list_namespace()
    assert denied.value.status == 401


def test_stops_everything_and_never_logs_the_token(kube_binaries: KubeBinaries) -> None:
    """A server of its own (temporary dir): after exit no process is left and the dir is gone."""
    with KubeAPIServer(binaries=kube_binaries) as server:
        pids = server.pids()
        work_dir = server.work_dir
        assert len(pids) == 2
        assert server.ready_after_s is not None and server.ready_after_s < 120
        assert (server.kubeconfig_path.stat().st_mode & 0o777) == 0o600
        for log in (server.etcd_log_path, server.apiserver_log_path):
            assert server.token not in log.read_text(errors="replace")
        assert server.token not in repr(server)
    assert not any(
        psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE for p in pids
    )
    assert not work_dir.exists()


def test_missing_binaries_say_how_to_build(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GREENFLOW_KUBE_BIN_DIR", str(tmp_path))
    with pytest.raises(KubeBinariesMissing) as missing:
        KubeAPIServer().start()
    assert BUILD_HINT in str(missing.value)
    assert "kube-apiserver and etcd not built" in str(missing.value)


def test_build_script_pins_the_same_version() -> None:
    """scripts/kube-apiserver and greenflow_kubernetes.testing.apiserver agree on the version and place."""
    script = REPO / "scripts" / "kube-apiserver"
    if not script.exists():
        pytest.skip("scripts/kube-apiserver is not in this checkout")
    text = script.read_text()
    assert f"KUBE_VERSION=${{GREENFLOW_KUBE_VERSION:-{KUBE_VERSION}}}" in text
    assert f"ETCD_VERSION=${{GREENFLOW_ETCD_VERSION:-{ETCD_VERSION}}}" in text
    env = {k: v for k, v in os.environ.items() if not k.startswith("GREENFLOW_KUBE")}
    printed = subprocess.run(
        [shutil.which("bash") or "/bin/bash", str(script), "--print-dir"],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    ).stdout.strip()
    code = "from greenflow_kubernetes.testing.apiserver import kube_bin_dir; print(kube_bin_dir())"
    from_python = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    ).stdout.strip()
    assert printed == from_python
