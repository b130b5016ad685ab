"""The parts of a cluster that do not run under a bare API server, played by the test.

- :func:`set_statefulset_ready` plays the StatefulSet controller's status report.
- :class:`ClaimProtectionController` plays the pvc-protection controller (claims being
  deleted lose their finalizer).
- :class:`JobController` plays the Job controller and the kubelet: it makes the pods of every
  new Job from its template and sets the status a test chooses (succeeded, OOMKilled...).
- :class:`ScriptedLogs` plays the kubelet's log endpoint (pod logs from a dict).
"""

from __future__ import annotations

import contextlib
import secrets
import threading
from collections.abc import Callable, Mapping
from typing import Any

from greenflow_kubernetes.testing.cluster import kubernetes_package


def set_statefulset_ready(api: Any, namespace: str, name: str, ready: int) -> None:
    """Play the StatefulSet controller: report ``ready`` replicas, all current."""
    kubernetes = kubernetes_package()
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
        kubernetes = kubernetes_package()
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
        kubernetes = kubernetes_package()
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
        kubernetes = kubernetes_package()
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


__all__ = [
    "ClaimProtectionController",
    "JobController",
    "Outcome",
    "ScriptedLogs",
    "by_component",
    "container_status",
    "oom_killed",
    "set_statefulset_ready",
    "succeeded",
]
