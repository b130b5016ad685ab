"""The ``redpanda`` service: Redpanda brokers as a StatefulSet on the ``kubernetes`` platform
(:mod:`greenflow_redpanda.kube`) or as local processes (:mod:`greenflow_redpanda.local`).

It is a :class:`greenflow_kafka.KafkaTarget` (its Kafka API address is
``endpoints()["bootstrap"]``, its client tools Apache Kafka's ``tools_version``), so
``kafka-ingest`` loads it like the ``kafka`` service: ``target = ["kafka", "redpanda"]``
compares them in one plan.
On a platform without Kubernetes it runs the ``redpanda`` binary found on PATH, one process
per broker, each named (``broker-<i>``) for per-process energy attribution; without the binary
deploy fails at once saying what to install.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import attrs

from greenflow.api import Capability, DeployContext, Inventory, Platform, ProcessGroups, Service
from greenflow.api.prometheus import PROMETHEUS_TARGETS_FILE, write_targets_file
from greenflow.errors import ServiceError
from greenflow.plan.validators import at_least, memory_quantity
from greenflow_kafka import DEFAULT_KAFKA_VERSION
from greenflow_redpanda.local import PUBLIC_METRICS_PATH

if TYPE_CHECKING:
    from greenflow_kafka import BrokerStatefulSet
    from greenflow_kubernetes import KubeSession
    from greenflow_redpanda.kube import RedpandaKubeSpec
    from greenflow_redpanda.local import LocalRedpandaCluster

#: The image tag used when the plan names none.
DEFAULT_REDPANDA_VERSION = "v26.1.14"
#: Where Redpanda's Linux packages (Debian/Ubuntu, Fedora/RHEL) are explained.
INSTALL_HINT = (
    "https://docs.redpanda.com/current/deploy/redpanda/manual/production/production-deployment/"
)


@attrs.frozen
class RedpandaConfig:
    """``[[services]] type = "redpanda"`` (docs/redpanda.md)."""

    #: Image tag of redpandadata/redpanda (e.g. "v26.1.14").
    version: str = DEFAULT_REDPANDA_VERSION
    #: Brokers: on Kubernetes one per node with the role "broker"; locally, processes on the
    #: first host with that role.
    brokers: int = attrs.field(default=1, validator=at_least(1))
    #: Cores of each broker: Seastar's --smp, and the pod's cpu request = limit.
    cores: int = attrs.field(default=1, validator=at_least(1))
    #: Memory of each broker pod, requests = limits; Seastar gets 80 % of it (--memory), also
    #: for a local process.
    memory: str = attrs.field(default="2Gi", validator=memory_quantity)
    #: Cluster property write_caching_default: acknowledge acks=all writes once a majority
    #: has them in memory, before fsync.
    write_caching: bool = False
    #: Seastar --overprovisioned: no busy-polling or thread pinning (shared nodes, or cpu
    #: limits without the static CPU manager policy).
    overprovisioned: bool = True
    #: "emptyDir" (the node's disk, gone with the pod) or a storage class name (a claim each).
    storage: str = "emptyDir"
    #: Size of each broker's volume.
    storage_size: str = attrs.field(default="10Gi", validator=memory_quantity)
    #: Extra cluster properties for .bootstrap.yaml (read once, when the cluster forms).
    overrides: dict[str, str] = attrs.field(factory=dict)
    #: Container image; default redpandadata/redpanda:<version>.
    image: str | None = None
    #: Apache Kafka version of the tools image (apache/kafka:<v>) kafka-ingest runs its
    #: producers and admin Jobs from against this service.
    tools_version: str = DEFAULT_KAFKA_VERSION
    # -- local processes only (docs/redpanda.md "On the local platform"). --
    #: Node property developer_mode: skips Redpanda's startup checks (1 GiB per core, the
    #: crash-loop limit). Local only: under rpk (Kubernetes) it would also bypass fsync.
    developer_mode: bool = False
    #: Keep the brokers' data directories after the service is removed (local only).
    keep_data: bool = False


class RedpandaService(Service):
    """On Kubernetes: applies the StatefulSet, waits until every broker pod is ready, and
    removes everything it applied (pods and volume claims included). Elsewhere: starts one
    ``redpanda`` process per broker under the run's work directory, waits for each Admin API
    and for every broker in the Kafka metadata, and stops them all (TERM, then KILL)."""

    Config: ClassVar[type] = RedpandaConfig
    requires: ClassVar[frozenset[Capability]] = frozenset(
        {Capability.LOCAL_PROCESSES, Capability.KUBERNETES}
    )
    config: RedpandaConfig

    @classmethod
    def required_roles(cls, config: Any) -> frozenset[str]:
        return frozenset({"broker"})

    def __init__(self, name: str, config: RedpandaConfig) -> None:
        super().__init__(name, config)
        self._kube: BrokerStatefulSet | None = None
        self._spec: RedpandaKubeSpec | None = None
        self._local: LocalRedpandaCluster | None = None
        #: State of local brokers left up by `greenflow up`, when attached to them.
        self._attached: Mapping[str, Any] | None = None
        self._version: str | None = None
        #: The local brokers' Prometheus file_sd targets file.
        self._targets_file: Path | None = None

    # -- KafkaTarget: what kafka-ingest needs -------------------------------------------------

    @classmethod
    def broker_count(cls, config: RedpandaConfig) -> int:
        return config.brokers

    @property
    def kube_session(self) -> KubeSession | None:
        """The platform's KubeSession once deployed on Kubernetes (kafka-ingest runs its
        Jobs through it), else None."""
        return self._kube.session if self._kube is not None else None

    @property
    def tools_image(self) -> str:
        return f"apache/kafka:{self.config.tools_version}"

    @property
    def tools_version(self) -> str:
        return self.config.tools_version

    # -- the service --------------------------------------------------------------------------

    @classmethod
    def check_platform(cls, config: Any, platform: Platform) -> str | None:
        # `greenflow validate` says it before a run starts; deploy checks it again.
        if Capability.KUBERNETES not in type(platform).capabilities and not shutil.which(
            "redpanda"
        ):
            return local_unavailable("redpanda")
        return None

    def deploy(self, platform: Platform, inventory: Inventory, ctx: DeployContext) -> None:
        if Capability.KUBERNETES not in type(platform).capabilities:
            self._deploy_local(inventory, ctx)
            return
        from greenflow_kafka import (
            BROKER_ROLE,
            BrokerStatefulSet,
            check_broker_nodes,
            deploy_statefulset,
        )
        from greenflow_kubernetes import dns_label, session_of
        from greenflow_redpanda.kube import RedpandaKubeSpec, manifests

        c = self.config
        if c.developer_mode:
            msg = (
                f"service {self.name!r}: developer_mode is for local processes; on "
                "Kubernetes rpk turns it into --mode dev-container, which bypasses fsync "
                "and changes what is measured. Remove it from the plan"
            )
            raise ServiceError(msg)
        kube = session_of(platform, who=f"service {self.name!r} (redpanda)")
        check_broker_nodes(inventory, c.brokers, self.name)
        try:
            spec = RedpandaKubeSpec(
                name=dns_label(self.name, 40),
                namespace=kube.namespace,
                version=c.version,
                brokers=c.brokers,
                cores=c.cores,
                memory=c.memory,
                write_caching=c.write_caching,
                overprovisioned=c.overprovisioned,
                storage=c.storage,
                storage_size=c.storage_size,
                image=c.image,
                overrides=dict(c.overrides),
                labels={**kube.labels, **kube.service_labels(self.name)},
                node_selector=kube.node_selector(BROKER_ROLE),
                tolerations=kube.tolerations([BROKER_ROLE]),
            )
        except ValueError as exc:
            msg = f"service {self.name!r} cannot run on Kubernetes as configured: {exc}"
            raise ServiceError(msg) from None
        self._spec = spec
        self._kube = deploy_statefulset(
            BrokerStatefulSet(
                kube,
                self.name,
                spec.name,
                spec.brokers,
                manifests(spec),
                spec.bootstrap,
                kube.service_labels(self.name),
            ),
            ctx,
        )

    def _deploy_local(self, inventory: Inventory, ctx: DeployContext) -> None:
        from greenflow_redpanda.local import LocalRedpandaCluster, LocalRedpandaSpec, binary_version
        from greenflow_redpanda.seastar import seastar_memory_mib

        binary = shutil.which("redpanda")
        if binary is None:
            raise ServiceError(local_unavailable(self.name))
        brokers = inventory.with_role("broker")
        if not brokers:
            raise ServiceError(f"service {self.name!r}: no host carries the role 'broker'")
        c = self.config
        try:
            spec = LocalRedpandaSpec(
                binary=binary,
                host=brokers[0].address,
                brokers=c.brokers,
                cores=c.cores,
                memory_mib=seastar_memory_mib(c.memory),
                overprovisioned=c.overprovisioned,
                developer_mode=c.developer_mode,
                write_caching=c.write_caching,
                overrides=dict(c.overrides),
            )
        except ValueError as exc:
            msg = f"service {self.name!r} cannot run Redpanda locally as configured: {exc}"
            raise ServiceError(msg) from None
        self._version = binary_version(binary)
        self._local = LocalRedpandaCluster(spec, ctx.work_dir / self.name, ctx.log_dir / self.name)
        try:
            self._local.start()
        finally:
            if self._local.nodes:
                ctx.record_state(self._local.state())
        # For a Prometheus the user runs (`file_sd_configs: [{files: [<this path>]}]`), as the
        # kafka service writes one for its JMX exporters: Redpanda serves its metrics itself.
        self._targets_file = ctx.work_dir / self.name / PROMETHEUS_TARGETS_FILE
        write_targets_file(
            self._targets_file, self._local.prometheus_targets({"service": self.name})
        )

    def wait_ready(self, timeout_s: float) -> None:
        if self._attached is not None:
            return
        if self._local is not None:
            self._local.wait_ready(timeout_s)
            return
        self._require().wait_ready(
            timeout_s,
            f"{self.config.brokers} Redpanda broker(s) of service {self.name!r} to be ready",
        )

    def endpoints(self) -> Mapping[str, str]:
        if self._attached is not None:
            return {"bootstrap": str(self._attached["bootstrap_servers"])}
        if self._local is not None:
            return {"bootstrap": self._local.bootstrap_servers}
        return {"bootstrap": self._require().bootstrap}

    def processes(self) -> ProcessGroups:
        if self._attached is not None:
            return {n: [int(entry[0])] for n, entry in self._attached["processes"].items()}
        if self._local is not None:
            return {name: [pid] for name, pid in self._local.processes().items()}
        return {}  # pods on cluster nodes: energy comes per pod from Scaphandre

    def health(self) -> str | None:
        if self._attached is not None:
            from greenflow_redpanda.local import recorded_alive

            gone = sorted(set(self._attached["processes"]) - set(recorded_alive(self._attached)))
            return f"Redpanda processes gone: {', '.join(gone)}" if gone else None
        if self._local is not None:
            return self._local.health()
        return self._kube.health() if self._kube is not None else None

    def remove(self) -> None:
        if self._attached is not None:
            from greenflow_redpanda.local import cleanup_recorded

            cleanup_recorded(self._attached)
            self._attached = None
        if self._local is not None:
            self._local.stop(keep_data=self.config.keep_data)
        if self._kube is not None:
            self._kube.remove()
            self._kube = None

    def detach(self) -> None:
        if self._local is not None:
            # Otherwise the cluster's finalizer stops the brokers when this process exits.
            self._local.detach()

    def describe(self) -> Mapping[str, Any]:
        c = self.config
        facts: dict[str, Any] = {
            "version": c.version,
            "brokers": c.brokers,
            "cores": c.cores,
            "memory": c.memory,
            "write_caching": c.write_caching,
            "overprovisioned": c.overprovisioned,
        }
        if self._local is not None:
            spec = self._local.spec
            # `version` is what the binary reports: the image tag means nothing here.
            facts.update(
                platform="local",
                binary=spec.binary,
                version=self._version,
                seastar_memory_mib=spec.memory_mib,
                developer_mode=spec.developer_mode,
                bootstrap=self._local.bootstrap_servers,
            )
            if self._targets_file is not None:
                facts["metrics"] = {
                    "path": PUBLIC_METRICS_PATH,
                    "prometheus_file_sd": str(self._targets_file),
                }
            return facts
        facts.update(storage=c.storage, storage_size=c.storage_size, tools_image=self.tools_image)
        if self._kube is not None:
            facts.update(
                platform="kubernetes",
                namespace=self._kube.session.namespace,
                statefulset=self._kube.name,
                bootstrap=self._kube.bootstrap,
            )
        if self._spec is not None:
            facts.update(
                image=self._spec.image_ref, seastar_memory_mib=self._spec.seastar_memory_mib
            )
        return facts

    @classmethod
    def attach(cls, name: str, config: Any, state: Mapping[str, Any]) -> Service | None:
        if state.get("local"):
            from greenflow_redpanda.local import recorded_alive

            recorded = dict(state.get("processes") or {})
            if not recorded or set(recorded_alive(state)) != set(recorded):
                return None
            svc = cls(name, config)
            svc._attached = dict(state)
            return svc
        from greenflow_kafka import attach_recorded

        deployment = attach_recorded(state)
        if deployment is None:
            return None
        svc = cls(name, config)
        svc._kube = deployment
        return svc

    @classmethod
    def remove_recorded(cls, config: Any, state: Mapping[str, Any]) -> None:
        if state.get("local"):
            from greenflow_redpanda.local import cleanup_recorded

            cleanup_recorded(state)
            return
        from greenflow_kafka import remove_recorded

        remove_recorded(state)

    def _require(self) -> BrokerStatefulSet:
        if self._kube is None:
            raise ServiceError(f"service {self.name!r} was not deployed")
        return self._kube


def local_unavailable(name: str) -> str:
    """Why service ``name`` cannot run on a platform without Kubernetes: no binary on PATH."""
    return (
        f"service {name!r} (redpanda) needs a `redpanda` binary on PATH to run on this "
        f"platform, and there is none; install the `redpanda` package (linux.pkg.redpanda.com, "
        f"see {INSTALL_HINT}) and put the directory holding `redpanda` on PATH, or run the "
        'plan on a [platform] type = "kubernetes"'
    )


__all__ = ["DEFAULT_REDPANDA_VERSION", "RedpandaConfig", "RedpandaService", "local_unavailable"]
