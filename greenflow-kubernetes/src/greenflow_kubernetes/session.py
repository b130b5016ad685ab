"""``KubeSession``: what services use to put objects on the cluster, wait for them and remove
them, and :func:`session_of`, which takes it from the platform. docs/kubernetes.md ("For
plugin authors") lists its calls and the labels everything applied carries."""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import structlog

from greenflow.api import Deadline
from greenflow.errors import ReadinessTimeout, ServiceError
from greenflow_kubernetes import _api
from greenflow_kubernetes._api import KubeApiError
from greenflow_kubernetes.names import label_value, split_role_label

if TYPE_CHECKING:
    from greenflow.api import Platform

log = structlog.get_logger("greenflow.kubernetes")

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "greenflow"
EXPERIMENT_LABEL = "greenflow.io/experiment"
#: Put on a service's objects (and its pod templates) by :meth:`KubeSession.service_labels`.
SERVICE_LABEL = "greenflow.io/service"
INSTANCE_LABEL = "app.kubernetes.io/instance"
FIELD_MANAGER = "greenflow"

#: apiVersion of the kinds services use, so that ``get("Deployment", name)`` needs no
#: discovery round trip; other kinds are found by discovery (preferred version).
API_VERSIONS: dict[str, str] = {
    **dict.fromkeys(
        [
            "Pod",
            "Service",
            "ConfigMap",
            "Secret",
            "ServiceAccount",
            "PersistentVolumeClaim",
            "Namespace",
            "Node",
            "Endpoints",
            "PersistentVolume",
        ],
        "v1",
    ),
    **dict.fromkeys(["Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"], "apps/v1"),
    **dict.fromkeys(["Job", "CronJob"], "batch/v1"),
    **dict.fromkeys(
        ["Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"],
        "rbac.authorization.k8s.io/v1",
    ),
    "PodDisruptionBudget": "policy/v1",
    "NetworkPolicy": "networking.k8s.io/v1",
    "StorageClass": "storage.k8s.io/v1",
}
#: Never deleted by label whatever they carry: the namespace goes last, on its own; a
#: node is the cluster's; events are not ours to delete (and carry no labels).
NEVER_DELETED = frozenset({"Namespace", "Node", "Event"})
#: Listing these fails in ways that only mean "nothing of ours can be there".
_SKIPPABLE_LIST_STATUS = frozenset({403, 404, 405, 503})


def _conditions(obj: Mapping[str, Any], *, only_false: bool = True) -> list[str]:
    out = []
    for c in (obj.get("status") or {}).get("conditions") or []:
        if only_false and c.get("status") == "True":
            continue
        text = f"{c.get('type')} {c.get('status')}"
        if c.get("reason"):
            text += f", reason {c['reason']}"
        if c.get("message"):
            text += f": {c['message']}"
        out.append(text)
    return out


def _container_states(status: Mapping[str, Any]) -> list[str]:
    out = []
    for key in ("initContainerStatuses", "containerStatuses"):
        for cs in status.get(key) or []:
            name = cs.get("name", "?")
            state = cs.get("state") or {}
            last = (cs.get("lastState") or {}).get("terminated")
            if "waiting" in state:
                w = state["waiting"] or {}
                text = f"container {name} waiting: {w.get('reason', '?')}"
                if w.get("message"):
                    text += f" ({w['message']})"
                out.append(text)
            elif "terminated" in state:
                t = state["terminated"] or {}
                out.append(
                    f"container {name} terminated: {t.get('reason', '?')} "
                    f"(exit code {t.get('exitCode')})"
                )
            elif "running" in state and not cs.get("ready", False):
                out.append(f"container {name} running but not ready")
            if last and cs.get("restartCount"):
                out.append(
                    f"container {name} restarted {cs['restartCount']}×, last: "
                    f"{last.get('reason', '?')} (exit code {last.get('exitCode')})"
                )
    return out


def pod_blocking_reason(pod: Mapping[str, Any]) -> str:
    """Why a pod is not running and ready, as one line: its phase, every condition that is
    not True with reason and message (``PodScheduled False, reason Unschedulable: 0/3 nodes
    are available: ...``), waiting or failed containers (``ImagePullBackOff``,
    ``OOMKilled``), and deletion in progress."""
    meta = pod.get("metadata") or {}
    status = pod.get("status") or {}
    parts = [f"phase {status.get('phase') or 'unknown'}"]
    if meta.get("deletionTimestamp"):
        parts.append(f"being deleted since {meta['deletionTimestamp']}")
    if status.get("reason"):
        parts.append(
            f"reason {status['reason']}"
            + (f": {status['message']}" if status.get("message") else "")
        )
    parts += _conditions(pod)
    parts += _container_states(status)
    node = (pod.get("spec") or {}).get("nodeName")
    if node:
        parts.append(f"on node {node}")
    return f"pod {meta.get('name', '?')}: " + "; ".join(parts)


def _workload_summary(kind: str, obj: Mapping[str, Any]) -> str:
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    if kind == "DaemonSet":
        return (
            f"numberReady {status.get('numberReady', 0)} of desiredNumberScheduled "
            f"{status.get('desiredNumberScheduled', 0)}"
        )
    if kind == "Job":
        return (
            f"active {status.get('active', 0)}, succeeded {status.get('succeeded', 0)}, "
            f"failed {status.get('failed', 0)}"
        )
    wanted = spec.get("replicas", 1)
    if kind == "Deployment":
        return f"availableReplicas {status.get('availableReplicas', 0)}/{wanted}"
    return f"readyReplicas {status.get('readyReplicas', 0)}/{wanted}"


def _selector_string(match_labels: Mapping[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(match_labels.items()))


class KubeSession:
    """One experiment's view of one cluster: its namespace, its labels, and the calls
    services need. Built by the ``kubernetes`` platform at ``acquire`` (``platform.kube``),
    or from recorded state with :meth:`from_state` (``greenflow down``).

    Attributes: ``namespace``; ``experiment`` (the experiment label's value); ``labels``
    (managed-by and experiment, added to everything applied); ``kubeconfig`` and
    ``context`` (what it connected with; never a credential); ``server`` (the API URL);
    ``role_labels`` (role → ``"key"`` or ``"key=value"``); ``nodes`` (the Node objects read
    at acquire, as dicts); ``timeout_s`` (the default deadline of deletes).
    """

    def __init__(
        self,
        client: Any,
        *,
        namespace: str,
        experiment: str,
        kubeconfig: str | None = None,
        context: str | None = None,
        server: str = "",
        role_labels: Mapping[str, str] | None = None,
        nodes: Sequence[Mapping[str, Any]] = (),
        timeout_s: float = 300.0,
        cancel: threading.Event | None = None,
    ) -> None:
        self._client = client
        self._dynamic: Any = None
        self._resources: dict[tuple[str, str], Any] = {}
        self._deletable: list[Any] | None = None
        self.namespace = namespace
        self.experiment = label_value(experiment)
        self.labels: dict[str, str] = {
            MANAGED_BY_LABEL: MANAGED_BY,
            EXPERIMENT_LABEL: self.experiment,
        }
        self.kubeconfig = kubeconfig
        self.context = context
        self.server = server
        self.role_labels: dict[str, str] = dict(role_labels or {})
        self.nodes: list[dict[str, Any]] = [dict(n) for n in nodes]
        self.timeout_s = timeout_s
        self.cancel = cancel

    def __repr__(self) -> str:
        return (
            f"KubeSession(namespace={self.namespace!r}, context={self.context!r}, "
            f"server={self.server!r})"
        )

    # -- connecting ----------------------------------------------------------------------

    @classmethod
    def connect(
        cls,
        *,
        experiment: str,
        namespace: str,
        kubeconfig: str | None = None,
        context: str | None = None,
        role_labels: Mapping[str, str] | None = None,
        timeout_s: float = 300.0,
        cancel: threading.Event | None = None,
    ) -> KubeSession:
        """Connect with the usual kubeconfig resolution (``kubeconfig`` or ``$KUBECONFIG``
        or ``~/.kube/config``; ``context`` or the current one)."""
        conn = _api.connect(kubeconfig, context)
        return cls(
            conn.client,
            namespace=namespace,
            experiment=experiment,
            kubeconfig=conn.kubeconfig,
            context=conn.context,
            server=conn.server,
            role_labels=role_labels,
            timeout_s=timeout_s,
            cancel=cancel,
        )

    def state(self) -> dict[str, Any]:
        """What :meth:`from_state` needs to reconnect (JSON; paths and names, no token)."""
        return {
            "kubeconfig": self.kubeconfig,
            "context": self.context,
            "namespace": self.namespace,
            "experiment": self.experiment,
            "role_labels": dict(self.role_labels),
            "timeout_s": self.timeout_s,
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> KubeSession:
        """Reconnect from :meth:`state` (recorded by a process that is gone)."""
        return cls.connect(
            experiment=state["experiment"],
            namespace=state["namespace"],
            kubeconfig=state.get("kubeconfig"),
            context=state.get("context"),
            role_labels=state.get("role_labels"),
            timeout_s=float(state.get("timeout_s", 300.0)),
        )

    def close(self) -> None:
        """Close the connection pool. The session is unusable afterwards."""
        close = getattr(self._client, "close", None)
        if callable(close):
            close()

    # -- plumbing ------------------------------------------------------------------------

    @property
    def dynamic(self) -> Any:
        """The ``kubernetes.dynamic.DynamicClient`` (for what this class does not cover)."""
        if self._dynamic is None:
            try:  # it asks the server for its version and API groups at once
                self._dynamic = _api.dynamic_client(self._client)
            except Exception as exc:
                if _api.is_api_error(exc) or _api.is_network_error(exc):
                    raise self._fail("discover the API of", "the cluster", exc) from None
                raise
        return self._dynamic

    @property
    def api_client(self) -> Any:
        """The ``kubernetes.client.ApiClient`` (for the typed APIs, e.g. ``CoreV1Api``)."""
        return self._client

    def _resource(self, kind: str, api_version: str | None = None) -> Any:
        api_version = api_version or API_VERSIONS.get(kind)
        key = (api_version or "", kind)
        if key not in self._resources:
            try:
                if api_version:
                    found = self.dynamic.resources.get(api_version=api_version, kind=kind)
                else:
                    found = self.dynamic.resources.get(kind=kind, preferred=True)
            except _api.discovery_errors() as exc:
                msg = (
                    f"kind {kind!r}{f' ({api_version})' if api_version else ''} is not "
                    f"served (or is ambiguous: pass api_version) by the cluster at "
                    f"{self.server}: {exc}"
                )
                raise KubeApiError(msg) from exc
            self._resources[key] = found
        return self._resources[key]

    def _ns(self, resource: Any) -> str | None:
        return self.namespace if resource.namespaced else None

    def _where(self, resource: Any, name: str) -> str:
        return (
            f"{resource.kind} {self.namespace}/{name}"
            if resource.namespaced
            else f"{resource.kind} {name}"
        )

    def _fail(self, verb: str, what: str, exc: BaseException) -> KubeApiError:
        if not _api.is_api_error(exc):
            return KubeApiError(f"{verb} {what}: cannot reach the API at {self.server}: {exc}")
        status = _api.status_of(exc)
        return KubeApiError(f"{verb} {what}: HTTP {status}: {_api.api_error_message(exc)}", status)

    def selector(self, labels: Mapping[str, str] | None = None) -> str:
        """A label selector for this experiment's objects (plus ``labels``)."""
        return _selector_string({**self.labels, **(labels or {})})

    def _check_cancel(self) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise KeyboardInterrupt

    def _sleep(self, seconds: float, *, cancellable: bool = True) -> None:
        if self.cancel is not None and cancellable:
            if self.cancel.wait(seconds):
                raise KeyboardInterrupt
        else:
            time.sleep(seconds)

    # -- objects -------------------------------------------------------------------------

    def apply(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        """Create or update ``manifest`` by server-side apply (field manager ``greenflow``,
        conflicts forced) and return the object as stored.

        Adds :attr:`labels` to its metadata and to the pod/volume-claim templates it holds,
        and sets ``metadata.namespace`` to the session's for a namespaced kind (a manifest
        naming another namespace is refused). Idempotent: applying the same manifest again
        changes nothing, not even ``resourceVersion``. The API server validates it; a
        refusal is a :class:`KubeApiError` with the server's message.
        """
        body = copy.deepcopy(dict(manifest))
        kind, api_version = body.get("kind"), body.get("apiVersion")
        meta = body.setdefault("metadata", {})
        name = meta.get("name")
        if not (kind and api_version and name):
            msg = f"a manifest needs apiVersion, kind and metadata.name; got {kind=} {api_version=} {name=}"
            raise ValueError(msg)
        resource = self._resource(kind, api_version)
        meta["labels"] = {**(meta.get("labels") or {}), **self.labels}
        if resource.namespaced:
            if meta.get("namespace") not in (None, self.namespace):
                msg = (
                    f"{kind} {name} names namespace {meta['namespace']!r}; objects of this "
                    f"experiment live in {self.namespace!r} (leave metadata.namespace out)"
                )
                raise ValueError(msg)
            meta["namespace"] = self.namespace
        else:
            meta.pop("namespace", None)
        _label_templates(body, self.labels)
        try:
            result = resource.server_side_apply(
                body=body,
                name=name,
                namespace=self._ns(resource),
                field_manager=FIELD_MANAGER,
                force_conflicts=True,
                _request_timeout=_api.REQUEST_TIMEOUT,
            )
        except Exception as exc:
            if _api.is_api_error(exc) or _api.is_network_error(exc):
                raise self._fail("apply", self._where(resource, name), exc) from None
            raise
        obj: dict[str, Any] = result.to_dict()
        log.debug(
            "kube.applied",
            kind=kind,
            name=name,
            resource_version=obj.get("metadata", {}).get("resourceVersion"),
        )
        return obj

    def get(self, kind: str, name: str, *, api_version: str | None = None) -> dict[str, Any] | None:
        """The object as a dict, or None when it does not exist."""
        resource = self._resource(kind, api_version)
        try:
            found = resource.get(
                name=name, namespace=self._ns(resource), _request_timeout=_api.REQUEST_TIMEOUT
            )
        except Exception as exc:
            if _api.is_api_error(exc):
                if _api.status_of(exc) == 404:
                    return None
                raise self._fail("get", self._where(resource, name), exc) from None
            if _api.is_network_error(exc):
                raise self._fail("get", self._where(resource, name), exc) from None
            raise
        obj: dict[str, Any] = found.to_dict()
        return obj

    def list_objects(
        self,
        kind: str,
        labels: Mapping[str, str] | None = None,
        *,
        api_version: str | None = None,
        selector: str | None = None,
    ) -> list[dict[str, Any]]:
        """Objects of ``kind`` in the namespace (or the cluster, for a cluster-scoped kind)
        carrying this experiment's labels plus ``labels``; ``selector`` (a label selector
        string) replaces that filter when given."""
        resource = self._resource(kind, api_version)
        return self._list(resource, selector if selector is not None else self.selector(labels))

    def _list(self, resource: Any, selector: str) -> list[dict[str, Any]]:
        try:
            found = resource.get(
                namespace=self._ns(resource),
                label_selector=selector,
                _request_timeout=_api.REQUEST_TIMEOUT,
            )
        except Exception as exc:
            if _api.is_api_error(exc) or _api.is_network_error(exc):
                raise self._fail("list", f"{resource.kind} ({selector})", exc) from None
            raise
        items: list[dict[str, Any]] = found.to_dict().get("items") or []
        for item in items:  # list items come without their type
            item.setdefault("kind", resource.kind)
            item.setdefault("apiVersion", resource.group_version)
        return items

    def delete(
        self,
        kind: str,
        name: str,
        *,
        api_version: str | None = None,
        wait: bool = True,
        timeout_s: float | None = None,
    ) -> None:
        """Delete an object (background propagation: the cluster's garbage collector
        removes what it owns) and, with ``wait``, return once it is gone. Nothing to
        delete is not an error."""
        resource = self._resource(kind, api_version)
        self._delete(resource, name)
        if wait:
            timeout = self.timeout_s if timeout_s is None else timeout_s

            def gone() -> tuple[bool, str]:
                obj = self.get(kind, name, api_version=api_version)
                return obj is None, "gone" if obj is None else _still_there(obj)

            self.poll(
                gone,
                what=f"{self._where(resource, name)} to be deleted",
                timeout_s=timeout,
                cancellable=False,
            )

    def _delete(self, resource: Any, name: str) -> bool:
        try:
            resource.delete(
                name=name,
                namespace=self._ns(resource),
                propagation_policy="Background",
                _request_timeout=_api.REQUEST_TIMEOUT,
            )
        except Exception as exc:
            if _api.is_api_error(exc):
                if _api.status_of(exc) == 404:
                    return False
                raise self._fail("delete", self._where(resource, name), exc) from None
            if _api.is_network_error(exc):
                raise self._fail("delete", self._where(resource, name), exc) from None
            raise
        return True

    def _deletable_resources(self) -> list[Any]:
        """Every kind the server serves in its preferred version that can be listed and
        deleted, except :data:`NEVER_DELETED` (discovered once per session)."""
        if self._deletable is None:
            dynamic = _api.module("kubernetes.dynamic")
            found: dict[tuple[str, str], Any] = {}
            for group in self.dynamic.resources:
                for r in group:
                    if (
                        type(r) is dynamic.Resource
                        and r.preferred
                        and r.kind not in NEVER_DELETED
                        and {"list", "delete"} <= set(r.verbs or ())
                    ):
                        found.setdefault((r.group_version, r.kind), r)
            self._deletable = list(found.values())
        return self._deletable

    def labelled(self, labels: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
        """Every object of every kind (cluster-scoped ones included) carrying this
        experiment's labels plus ``labels``: namespaced ones in the session's namespace."""
        from concurrent.futures import ThreadPoolExecutor

        selector = self.selector(labels)

        def one(resource: Any) -> list[dict[str, Any]]:
            try:
                return self._list(resource, selector)
            except KubeApiError as exc:
                if exc.status not in _SKIPPABLE_LIST_STATUS:
                    raise
                log.debug("kube.list_skipped", kind=resource.kind, status=exc.status)
                return []

        # Some 60 kinds on a bare cluster, more with CRDs: one round trip each, in parallel.
        with ThreadPoolExecutor(max_workers=8, thread_name_prefix="greenflow-kube-list") as pool:
            return [obj for found in pool.map(one, self._deletable_resources()) for obj in found]

    def delete_labelled(
        self, labels: Mapping[str, str] | None = None, *, timeout_s: float | None = None
    ) -> list[str]:
        """Delete every object carrying this experiment's labels plus ``labels`` (every
        kind, cluster-scoped ones included) and return once none is left; returns what was
        deleted (``"Kind name"``). Deletes again what reappears (a controller recreating a
        pod) until the deadline; a timeout lists what is left and why (finalizers, pods
        being deleted)."""
        timeout = self.timeout_s if timeout_s is None else timeout_s
        deleted: list[str] = []

        def sweep() -> tuple[bool, str]:
            left = self.labelled(labels)
            for obj in left:
                meta = obj.get("metadata") or {}
                if meta.get("deletionTimestamp"):
                    continue
                resource = self._resource(obj["kind"], obj.get("apiVersion"))
                if self._delete(resource, meta["name"]):
                    deleted.append(f"{obj['kind']} {meta['name']}")
            return not left, "; ".join(_still_there(o) for o in left[:10]) + (
                f"; and {len(left) - 10} more" if len(left) > 10 else ""
            )

        self.poll(
            sweep,
            what=f"objects labelled {self.selector(labels)} to be deleted",
            timeout_s=timeout,
            interval_s=0.2,
            cancellable=False,
        )
        if deleted:
            log.info("kube.deleted", namespace=self.namespace, objects=len(deleted))
        return deleted

    def delete_managed(self, *, timeout_s: float | None = None) -> list[str]:
        """Delete everything of this experiment (namespace excepted) and wait until it is
        gone; see :meth:`delete_labelled`."""
        return self.delete_labelled(None, timeout_s=timeout_s)

    # -- waiting -------------------------------------------------------------------------

    def poll(
        self,
        check: Callable[[], tuple[bool, str]],
        *,
        what: str,
        timeout_s: float,
        interval_s: float = 0.5,
        blocking: Callable[[], str] | None = None,
        cancellable: bool = True,
    ) -> None:
        """Call ``check`` every ``interval_s`` until it returns ``(True, _)``; on timeout
        raise ``ReadinessTimeout`` with ``what``, the last thing seen and, when given,
        ``blocking()``. Stops with KeyboardInterrupt when the session's cancel event is set,
        unless ``cancellable`` is false: the waits of deletes, which are teardown. The runner
        sets the event *before* it tears down (to stop its threads), so a cancellable delete
        wait would give up at once and leave everything behind; a second SIGINT/SIGTERM
        still interrupts it (the runner's handler raises KeyboardInterrupt itself)."""
        deadline = Deadline(timeout_s)
        while True:
            if cancellable:
                self._check_cancel()
            done, last = check()
            if done:
                return
            if deadline.expired:
                msg = f"timed out after {timeout_s:g}s waiting for {what}; last seen: {last}"
                if blocking is not None:
                    try:
                        msg += f"; blocking: {blocking()}"
                    except Exception as exc:  # the diagnosis must not hide the timeout
                        msg += f"; (could not tell why: {exc})"
                raise ReadinessTimeout(msg)
            self._sleep(min(interval_s, max(deadline.remaining_s, 0.01)), cancellable=cancellable)

    def wait(
        self,
        kind: str,
        name: str,
        check: Callable[[dict[str, Any]], tuple[bool, str]],
        timeout_s: float,
        what: str,
        *,
        api_version: str | None = None,
        interval_s: float = 0.5,
    ) -> dict[str, Any]:
        """Poll the object until ``check(obj)`` returns ``(True, _)``; return the object.

        ``check`` returns ``(done, what it saw)``. On timeout raise ``ReadinessTimeout``
        saying ``what`` was awaited, the last thing ``check`` saw and the blocking condition
        (:meth:`blocking_reason`: for a pod its phase, failing conditions and container
        states; for a Deployment, StatefulSet, DaemonSet or Job its counts and conditions
        plus the same for each of its pods). An absent object counts as not done.
        """
        resource = self._resource(kind, api_version)
        seen: dict[str, Any] = {}

        def probe() -> tuple[bool, str]:
            try:
                obj = self.get(kind, name, api_version=api_version)
            except KubeApiError as exc:
                if exc.status is not None and exc.status < 500 and exc.status != 429:
                    raise
                return False, str(exc)  # the API server may be busy or restarting: retried
            seen["obj"] = obj
            if obj is None:
                return False, f"{self._where(resource, name)} does not exist"
            return check(obj)

        def blocking() -> str:
            obj = seen.get("obj")
            return "it does not exist" if obj is None else self.blocking_reason(obj)

        self.poll(
            probe,
            what=f"{what} ({self._where(resource, name)})",
            timeout_s=timeout_s,
            interval_s=interval_s,
            blocking=blocking,
        )
        result: dict[str, Any] = seen["obj"]
        return result

    def blocking_reason(self, obj: Mapping[str, Any]) -> str:
        """Why ``obj`` is not done, in one line (see :meth:`wait`)."""
        kind = obj.get("kind", "")
        if kind == "Pod":
            return pod_blocking_reason(obj)
        name = (obj.get("metadata") or {}).get("name", "?")
        parts = []
        meta, status = obj.get("metadata") or {}, obj.get("status") or {}
        if kind in ("Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet"):
            parts.append(_workload_summary(kind, obj))
        observed = status.get("observedGeneration")
        if observed is not None and meta.get("generation") and observed < meta["generation"]:
            parts.append(
                f"status is for generation {observed}, spec is generation {meta['generation']}"
            )
        parts += _conditions(obj)
        match = ((obj.get("spec") or {}).get("selector") or {}).get("matchLabels")
        if kind in ("Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet") and match:
            pods = self.list_objects("Pod", selector=_selector_string(match))
            if not pods:
                parts.append(
                    f"no pod matches {_selector_string(match)} (is the controller "
                    "running? are there events on the object?)"
                )
            parts += [pod_blocking_reason(p) for p in pods[:5]]
            if len(pods) > 5:
                parts.append(f"and {len(pods) - 5} more pods")
        return f"{kind} {name}: " + ("; ".join(parts) or "no condition reported")

    # -- placement -----------------------------------------------------------------------

    def _role_spec(self, role: str) -> tuple[str, str | None]:
        if role not in self.role_labels:
            msg = (
                f"role {role!r} has no node label; known roles: "
                f"{', '.join(sorted(self.role_labels)) or 'none'} ([platform] role_labels)"
            )
            raise ServiceError(msg)
        return split_role_label(self.role_labels[role])

    def node_selector(self, role: str) -> dict[str, str]:
        """A ``spec.nodeSelector`` placing pods on nodes carrying ``role``: ``{key: value}``.

        The value is the configured one (``role_labels`` entry ``"key=value"``), else the one
        the role's nodes carry (``""`` on a kubeadm control plane, ``"true"`` on k3s), else
        ``"true"``. :meth:`node_affinity` matches any value but "false" instead."""
        key, value = self._role_spec(role)
        if value is None:
            seen = {(n.get("metadata") or {}).get("labels", {}).get(key) for n in self.nodes}
            seen = {v for v in seen if v is not None and v.lower() != "false"}
            value = seen.pop() if len(seen) == 1 else "true"
        return {key: value}

    def node_affinity(self, roles: Iterable[str]) -> dict[str, Any]:
        """A ``spec.affinity`` placing pods on nodes carrying any of ``roles``."""
        terms = []
        for role in roles:
            key, value = self._role_spec(role)
            if value is not None:
                exprs = [{"key": key, "operator": "In", "values": [value]}]
            else:
                exprs = [
                    {"key": key, "operator": "Exists"},
                    {"key": key, "operator": "NotIn", "values": ["false"]},
                ]
            terms.append({"matchExpressions": exprs})
        return {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": terms}
            }
        }

    def tolerations(self, roles: Iterable[str]) -> list[dict[str, str]]:
        """Tolerations of taints keyed by the roles' labels (a control plane's
        ``node-role.kubernetes.io/control-plane:NoSchedule``, dedicated broker nodes)."""
        keys = dict.fromkeys(self._role_spec(r)[0] for r in roles)
        return [{"key": k, "operator": "Exists"} for k in keys]

    def service_labels(self, service: str) -> dict[str, str]:
        """Labels identifying one service's objects (put them on its objects and pod
        templates; :meth:`delete_labelled` with them removes exactly that service)."""
        value = label_value(service)
        return {SERVICE_LABEL: value, INSTANCE_LABEL: value}

    # -- pods ----------------------------------------------------------------------------

    def pod_logs(
        self,
        name: str,
        *,
        container: str | None = None,
        tail_lines: int | None = None,
        previous: bool = False,
    ) -> str:
        """A pod's log (of ``container``; the last ``tail_lines`` lines; of the previous,
        crashed instance with ``previous``)."""
        core = _api.module("kubernetes.client").CoreV1Api(self._client)
        # _preload_content=False: the raw bytes, because the client's own decoding turns an
        # empty body (204, a pod that never ran) into None or the text "None", and JSON-looking
        # log lines into dicts.
        kwargs: dict[str, Any] = {
            "_request_timeout": _api.REQUEST_TIMEOUT,
            "_preload_content": False,
        }
        if container:
            kwargs["container"] = container
        if tail_lines is not None:
            kwargs["tail_lines"] = tail_lines
        if previous:
            kwargs["previous"] = True
        try:
            response = core.read_namespaced_pod_log(name, self.namespace, **kwargs)
            body = response.data
        except Exception as exc:
            if _api.is_api_error(exc) or _api.is_network_error(exc):
                raise self._fail("read the log of", f"Pod {self.namespace}/{name}", exc) from None
            raise
        if not body:
            return ""
        return body.decode("utf-8", errors="replace") if isinstance(body, bytes) else str(body)


def _still_there(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    text = f"{obj.get('kind', '?')} {meta.get('name', '?')}"
    if meta.get("deletionTimestamp"):
        text += f" (being deleted since {meta['deletionTimestamp']}"
        if meta.get("finalizers"):
            text += f", finalizers {meta['finalizers']}"
        text += ")"
    if obj.get("kind") == "Pod" and meta.get("deletionTimestamp"):
        node = (obj.get("spec") or {}).get("nodeName")
        if node:
            text += f" on node {node} (its kubelet confirms the deletion)"
    return text


def _label_templates(body: dict[str, Any], labels: Mapping[str, str]) -> None:
    """Add ``labels`` to the pod templates (workloads, CronJob's job template) and volume
    claim templates of ``body``, so what controllers make from them carries them too."""
    spec = body.get("spec")
    if not isinstance(spec, dict):
        return
    templates = []
    if isinstance(spec.get("template"), dict):
        templates.append(spec["template"])
    job = (spec.get("jobTemplate") or {}).get("spec") or {}
    if isinstance(job.get("template"), dict):
        templates.append(job["template"])
    if isinstance(spec.get("jobTemplate"), dict):
        templates.append(spec["jobTemplate"])
    templates += [t for t in spec.get("volumeClaimTemplates") or [] if isinstance(t, dict)]
    for template in templates:
        meta = template.setdefault("metadata", {})
        meta["labels"] = {**(meta.get("labels") or {}), **labels}


@runtime_checkable
class KubePlatform(Protocol):
    """A platform whose services run on a Kubernetes cluster: ``kubernetes``, and any platform
    that builds a cluster (``k3s``, ``g5k``). ``kube`` is its session once acquired, None
    before and after."""

    kube: KubeSession | None


def session_of(platform: Platform, *, who: str = "this service") -> KubeSession:
    """The platform's :class:`KubeSession`; a ``ServiceError`` when the platform runs no
    Kubernetes (see :class:`KubePlatform`) or is not acquired."""
    if not isinstance(platform, KubePlatform):
        msg = (
            f"{who} runs on Kubernetes: [platform] type must be one that provides a cluster "
            f'("kubernetes", "k3s", "g5k"); got {type(platform).__name__}'
        )
        raise ServiceError(msg)
    if platform.kube is None:
        msg = (
            f"{who} runs on Kubernetes, but the platform {type(platform).__name__} is not acquired"
        )
        raise ServiceError(msg)
    return platform.kube


__all__ = [
    "EXPERIMENT_LABEL",
    "FIELD_MANAGER",
    "INSTANCE_LABEL",
    "MANAGED_BY",
    "MANAGED_BY_LABEL",
    "SERVICE_LABEL",
    "KubeApiError",
    "KubePlatform",
    "KubeSession",
    "pod_blocking_reason",
    "session_of",
]
