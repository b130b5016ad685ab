"""The ``kubernetes`` platform: an existing cluster reached through a kubeconfig, one namespace
per experiment, everything the experiment created deleted at release. docs/kubernetes.md has
its plan keys and what acquire and release do."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import attrs
import structlog

from greenflow.api import Capability, DeployContext, Host, Inventory, Platform
from greenflow.errors import PlatformError, ReadinessTimeout
from greenflow.plan.validators import matches, positive
from greenflow_kubernetes import _api
from greenflow_kubernetes.names import carries, dns_label, label_value
from greenflow_kubernetes.session import EXPERIMENT_LABEL, KubeSession

log = structlog.get_logger("greenflow.kubernetes")

#: Role → node label (``"key"``: any value but "false"; ``"key=value"``: exactly), as in
#: the original GreenFlow's k3s clusters.
DEFAULT_ROLE_LABELS: dict[str, str] = {
    "broker": "node.kubernetes.io/broker",
    "worker": "node.kubernetes.io/worker",
    "control": "node-role.kubernetes.io/control-plane",
}
#: Pod Security admission level of the namespaces GreenFlow creates.
POD_SECURITY_LABEL = "pod-security.kubernetes.io/enforce"
#: Labels every node has that say nothing about roles; left out of role messages.
_NOISE_LABEL_PREFIXES = (
    "beta.kubernetes.io/",
    "kubernetes.io/hostname",
    "kubernetes.io/os",
    "kubernetes.io/arch",
)

#: A namespace name is an RFC 1123 label; checked here so that `greenflow validate` says so,
#: not the API server in the middle of acquire.
_NAMESPACE = matches(
    r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?",
    "a namespace name (lower-case letters, digits and '-', alphanumeric at both ends, "
    "at most 63 characters)",
)


@attrs.frozen
class KubernetesConfig:
    """``[platform] type = "kubernetes"``: an existing cluster reached through a kubeconfig."""

    #: Kubeconfig file; default: ``$KUBECONFIG``, else ``~/.kube/config`` (else in-cluster).
    kubeconfig: str | None = None
    #: Kubeconfig context; default: its current context.
    context: str | None = None
    #: Namespace of the experiment; default ``greenflow-<experiment>`` (made a valid name).
    #: An existing namespace GreenFlow did not create is used but never deleted.
    namespace: str | None = attrs.field(default=None, validator=_NAMESPACE)
    #: Role → node label key (any value but "false") or ``key=value``. Merged over the
    #: defaults; map a role to "" to drop it.
    role_labels: dict[str, str] = attrs.field(factory=dict, converter=dict)
    #: Deadline of each wait of acquire and release (namespace gone, objects deleted).
    timeout_s: float = attrs.field(default=300.0, validator=positive)

    @property
    def effective_role_labels(self) -> dict[str, str]:
        merged = {**DEFAULT_ROLE_LABELS, **self.role_labels}
        return {role: spec for role, spec in merged.items() if spec}


def _namespace_for(config: KubernetesConfig, experiment: str) -> str:
    return config.namespace or dns_label(f"greenflow-{experiment}")


def _address(node: Mapping[str, Any]) -> str:
    addresses = (node.get("status") or {}).get("addresses") or []
    by_type = {a.get("type"): a.get("address") for a in addresses}
    for kind in ("InternalIP", "ExternalIP", "Hostname"):
        if by_type.get(kind):
            return str(by_type[kind])
    return str(node["metadata"]["name"])


def _roles(labels: Mapping[str, str], role_labels: Mapping[str, str]) -> list[str]:
    return sorted(role for role, spec in role_labels.items() if carries(labels, spec))


def _node_facts(node: Mapping[str, Any], role_labels: Mapping[str, str]) -> dict[str, Any]:
    meta, status = node.get("metadata") or {}, node.get("status") or {}
    info = status.get("nodeInfo") or {}
    labels = dict(meta.get("labels") or {})
    capacity = status.get("capacity") or {}
    allocatable = status.get("allocatable") or {}
    return {
        "name": meta.get("name"),
        "address": _address(node),
        "roles": _roles(labels, role_labels),
        "capacity": {k: capacity[k] for k in ("cpu", "memory") if k in capacity},
        "allocatable": {k: allocatable[k] for k in ("cpu", "memory") if k in allocatable},
        "labels": labels,
        "kernel": info.get("kernelVersion"),
        "container_runtime": info.get("containerRuntimeVersion"),
        "os_image": info.get("osImage"),
        "architecture": info.get("architecture"),
        "kubelet": info.get("kubeletVersion"),
        "unschedulable": bool((node.get("spec") or {}).get("unschedulable")),
    }


class KubernetesPlatform(Platform):
    """An existing Kubernetes cluster. ``acquire`` reads the nodes (roles from labels) and
    creates the experiment's namespace; services reach the cluster through
    :attr:`kube` (a :class:`~greenflow_kubernetes.session.KubeSession`)."""

    Config: ClassVar[type] = KubernetesConfig
    capabilities: ClassVar[frozenset[Capability]] = frozenset({Capability.KUBERNETES})
    config: KubernetesConfig

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        #: Set by :meth:`acquire`; what services use. None before and after.
        self.kube: KubeSession | None = None
        self._server_version: dict[str, Any] = {}
        self._owns_namespace = False
        #: Whether acquire got as far as writing to the cluster (else release only closes).
        self._wrote = False
        self._nodes: list[dict[str, Any]] | None = None

    # -- acquire -------------------------------------------------------------------------

    def acquire(self, ctx: DeployContext) -> Inventory:
        """Connect, read the nodes, create the namespace; record what release needs."""
        cfg = self.config
        role_labels = cfg.effective_role_labels
        if self.kube is None:
            self.kube = KubeSession.connect(
                experiment=ctx.experiment,
                namespace=_namespace_for(cfg, ctx.experiment),
                kubeconfig=cfg.kubeconfig,
                context=cfg.context,
                role_labels=role_labels,
                timeout_s=cfg.timeout_s,
                cancel=ctx.cancel,
            )
        kube = self.kube
        self._server_version = self._read_version(kube)
        # Recorded before the namespace exists: a crash in between leaves nothing behind
        # that `greenflow down` could not find again.
        ctx.record_state({**kube.state(), "owns_namespace": True})
        nodes = kube.list_objects("Node", selector="")
        nodes.sort(key=lambda n: n["metadata"]["name"])
        kube.nodes = nodes
        self._nodes = nodes
        self._wrote = True
        self._owns_namespace = _ensure_namespace(kube, cfg.timeout_s)
        ctx.record_state({**kube.state(), "owns_namespace": self._owns_namespace})
        hosts = [
            Host(
                n["metadata"]["name"],
                _address(n),
                _roles(n["metadata"].get("labels") or {}, role_labels),
            )
            for n in nodes
        ]
        log.info(
            "kubernetes.acquired",
            context=kube.context,
            namespace=kube.namespace,
            nodes=len(hosts),
            server=self._server_version.get("gitVersion"),
        )
        return Inventory(hosts)

    @staticmethod
    def _read_version(kube: KubeSession) -> dict[str, Any]:
        version = _api.module("kubernetes.client").VersionApi(kube.api_client)
        try:
            info = version.get_code(_request_timeout=_api.REQUEST_TIMEOUT)
        except Exception as exc:
            if _api.is_api_error(exc) and _api.status_of(exc) in (401, 403):
                msg = (
                    f"the Kubernetes API at {kube.server} refused the credentials of "
                    f"context {kube.context!r} (HTTP {_api.status_of(exc)})"
                )
                raise PlatformError(msg) from None
            msg = (
                f"cannot reach the Kubernetes API at {kube.server} (context "
                f"{kube.context!r}, kubeconfig {kube.kubeconfig}): {exc}"
            )
            raise PlatformError(msg) from None
        facts: dict[str, Any] = {"gitVersion": info.git_version, "platform": info.platform}
        return facts

    # -- release -------------------------------------------------------------------------

    def release(self) -> None:
        """Delete everything labelled with the experiment, then the namespace (when
        GreenFlow created it), and wait until they are gone."""
        kube, self.kube = self.kube, None
        if kube is None:
            return
        wrote, self._wrote = self._wrote, False
        try:
            if wrote:
                _teardown(
                    kube, owns_namespace=self._owns_namespace, timeout_s=self.config.timeout_s
                )
        finally:
            kube.close()

    @classmethod
    def release_recorded(cls, config: Any, state: Mapping[str, Any]) -> None:
        """The same as :meth:`release`, from the recorded namespace, context and kubeconfig."""
        if not state.get("namespace"):
            return  # acquire never got as far as connecting
        kube = KubeSession.from_state(state)
        try:
            _teardown(
                kube,
                owns_namespace=bool(state.get("owns_namespace", True)),
                timeout_s=float(state.get("timeout_s", config.timeout_s)),
            )
        finally:
            kube.close()

    # -- facts ---------------------------------------------------------------------------

    def check_roles(self, roles: frozenset[str]) -> str | None:
        """Which of ``roles`` no node carries, with every node and its labels.

        Uses the nodes read by :meth:`acquire`; before it, connects and lists the nodes
        (read-only)."""
        role_labels = self.config.effective_role_labels
        unknown = sorted(r for r in roles if r not in role_labels)
        if unknown:
            return (
                f"roles {unknown} have no node label; set them in [platform] role_labels "
                f"(known: {', '.join(f'{r} = {s!r}' for r, s in sorted(role_labels.items()))})"
            )
        nodes = self._nodes
        if nodes is None:
            kube = KubeSession.connect(
                experiment="check-roles",
                namespace="default",
                kubeconfig=self.config.kubeconfig,
                context=self.config.context,
                role_labels=role_labels,
            )
            try:
                nodes = kube.list_objects("Node", selector="")
            finally:
                kube.close()
        carried = {r for n in nodes for r in _roles(n["metadata"].get("labels") or {}, role_labels)}
        missing = sorted(roles - carried)
        if not missing:
            return None
        wanted = ", ".join(f"{r} (label {role_labels[r]})" for r in missing)
        listing = (
            "\n".join(f"  {n['metadata']['name']}: {_shown_labels(n)}" for n in nodes)
            or "  (no node)"
        )
        first = role_labels[missing[0]].partition("=")
        return (
            f"no node carries role(s) {wanted}; the cluster's nodes:\n{listing}\n"
            f"  Hint: kubectl label node NODE {first[0]}={first[2] or 'true'}, "
            "or map the role to another label in [platform] role_labels"
        )

    def describe(self) -> Mapping[str, Any]:
        """Server version, context, namespace, and each node's capacity, labels, kernel
        and container runtime (no credential, no server token)."""
        cfg = self.config
        kube = self.kube
        facts: dict[str, Any] = {
            "platform": "kubernetes",
            "context": cfg.context,
            "namespace": cfg.namespace,
            "role_labels": cfg.effective_role_labels,
        }
        if kube is not None:
            facts.update(
                context=kube.context,
                namespace=kube.namespace,
                server=kube.server,
                kubeconfig=kube.kubeconfig,
                server_version=self._server_version,
            )
        if self._nodes is not None:
            facts["nodes"] = [_node_facts(n, cfg.effective_role_labels) for n in self._nodes]
        return facts


def _shown_labels(node: Mapping[str, Any]) -> str:
    labels = node["metadata"].get("labels") or {}
    shown = {k: v for k, v in sorted(labels.items()) if not k.startswith(_NOISE_LABEL_PREFIXES)}
    return ", ".join(f"{k}={v}" for k, v in shown.items()) or "(no label)"


def _ensure_namespace(kube: KubeSession, timeout_s: float) -> bool:
    """Create the namespace unless it exists; return whether it is this experiment's
    (created now, or by an earlier run of it). One being deleted is waited out first."""
    existing = kube.get("Namespace", kube.namespace)
    if existing is not None and existing["metadata"].get("deletionTimestamp"):
        log.info("kubernetes.namespace_terminating", namespace=kube.namespace)
        _wait_namespace_gone(kube, timeout_s)
        existing = None
    if existing is not None:
        labels = existing["metadata"].get("labels") or {}
        if labels.get(EXPERIMENT_LABEL) != kube.experiment:
            log.info(
                "kubernetes.namespace_shared",
                namespace=kube.namespace,
                hint="not created by this experiment: used, never deleted",
            )
            return False
    kube.apply(
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            # Scaphandre's pods are privileged (host /proc, RAPL): admitted even where the
            # cluster's default Pod Security level is baseline or restricted.
            "metadata": {"name": kube.namespace, "labels": {POD_SECURITY_LABEL: "privileged"}},
        }
    )
    return True


def _wait_namespace_gone(kube: KubeSession, timeout_s: float) -> None:
    def gone() -> tuple[bool, str]:
        ns = kube.get("Namespace", kube.namespace)
        if ns is None:
            return True, "gone"
        status = ns.get("status") or {}
        parts = [f"phase {status.get('phase')}"]
        parts += [
            f"{c.get('type')}: {c.get('message')}"
            for c in status.get("conditions") or []
            if c.get("status") == "True"
        ]
        if (ns.get("spec") or {}).get("finalizers"):
            parts.append(f"finalizers {ns['spec']['finalizers']}")
        return False, "; ".join(parts)

    kube.poll(
        gone,
        what=f"namespace {kube.namespace} to be deleted",
        timeout_s=timeout_s,
        interval_s=0.2,
        cancellable=False,
    )


def _teardown(kube: KubeSession, *, owns_namespace: bool, timeout_s: float) -> None:
    try:
        deleted = kube.delete_managed(timeout_s=timeout_s)
        if owns_namespace:
            ns = kube.get("Namespace", kube.namespace)
            labels = (ns or {}).get("metadata", {}).get("labels") or {}
            if ns is not None and labels.get(EXPERIMENT_LABEL) == label_value(kube.experiment):
                if not ns["metadata"].get("deletionTimestamp"):
                    kube.delete("Namespace", kube.namespace, wait=False)
                _wait_namespace_gone(kube, timeout_s)
    except ReadinessTimeout as exc:
        raise PlatformError(f"release of namespace {kube.namespace} incomplete: {exc}") from None
    log.info(
        "kubernetes.released",
        namespace=kube.namespace,
        deleted=len(deleted),
        namespace_deleted=owns_namespace,
    )


__all__ = ["DEFAULT_ROLE_LABELS", "KubernetesConfig", "KubernetesPlatform"]
