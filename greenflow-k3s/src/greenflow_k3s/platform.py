"""The ``k3s`` platform: k3s installed over SSH on the hosts of an inventory, then driven as
any Kubernetes cluster by greenflow-kubernetes' ``kubernetes`` platform (composition: the
services see its :class:`~greenflow_kubernetes.KubeSession` through :attr:`kube`), and
uninstalled at release unless ``keep``."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar

import attrs
import structlog

from greenflow.api import Capability, DeployContext, Inventory, Platform
from greenflow.errors import PlatformError
from greenflow_k3s.config import K3sConfig
from greenflow_k3s.install import Installer
from greenflow_k3s.inventory import Gateway, Host, load_inventory
from greenflow_k3s.inventory import Inventory as HostInventory
from greenflow_k3s.ssh import Connections, HostsFailed, cause_of, run_all
from greenflow_k3s.tunnel import ApiTunnel, PortForwards, forwarded_url, point_kubeconfig
from greenflow_kubernetes import KubernetesPlatform, KubeSession

log = structlog.get_logger("greenflow.k3s")

#: What each node reports for the provenance record (one command per fact, over SSH).
_FACTS = {
    "kernel": "uname -r",
    "cpu_model": "sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1",
    "cores": "nproc",
    "memory_kib": "sed -n 's/^MemTotal:[[:space:]]*\\([0-9]*\\).*/\\1/p' /proc/meminfo",
    "k3s_version": "k3s --version 2>/dev/null | head -n1",
    "rapl_readable": (
        "if cat /sys/class/powercap/intel-rapl:0/energy_uj >/dev/null 2>&1; "
        "then echo yes; else echo no; fi"
    ),
}


def _host_state(host: Host) -> dict[str, Any]:
    state = attrs.asdict(host)
    state["key"] = str(host.key) if host.key is not None else None
    return state


def _host_from_state(state: Mapping[str, Any]) -> Host:
    key = state.get("key")
    return Host(**{**state, "key": Path(key) if key else None})


def _recorded_hosts(state: Mapping[str, Any]) -> HostInventory:
    gateway = state.get("gateway")
    return HostInventory(
        [_host_from_state(h) for h in state["hosts"]],
        gateway=Gateway.parse(gateway) if gateway else None,
    )


class K3sPlatform(Platform):
    """k3s on your own nodes (docs/k3s.md): install, hand over to the kubernetes platform,
    uninstall."""

    Config: ClassVar[type] = K3sConfig
    capabilities: ClassVar[frozenset[Capability]] = KubernetesPlatform.capabilities
    config: K3sConfig

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        #: The kubernetes platform on the installed cluster, from acquire on.
        self.cluster: KubernetesPlatform | None = None
        self._hosts: HostInventory | None = None
        self._plan_dir = Path.cwd()
        #: Hosts the install may have changed: what release uninstalls.
        self._touched: list[str] = []
        self._facts: dict[str, dict[str, str]] = {}
        self._state: dict[str, Any] = {}
        #: The API through the gateway (hosts behind one), from the install to the release.
        self._tunnel: ApiTunnel | None = None
        #: Ports the collectors query behind the gateway (reach), until the release.
        self._forwards: PortForwards | None = None
        self._forwards_lock = threading.Lock()

    @property
    def kube(self) -> KubeSession | None:
        """The cluster's session (what services use), None before acquire and after release."""
        return self.cluster.kube if self.cluster is not None else None

    # -- acquire -------------------------------------------------------------------------

    def acquire(self, ctx: DeployContext) -> Inventory:
        """Install k3s (or find it installed), wait for every node Ready, then acquire the
        cluster through the kubernetes platform."""
        cfg = self.config
        plan = ctx.plan_path or Path.cwd() / "plan.toml"
        self._plan_dir = plan.parent
        hosts = load_inventory(cfg, plan)
        self._hosts = hosts
        kubeconfig = ctx.work_dir / "kubeconfig"
        lock = threading.Lock()
        self._state = {
            "hosts": [_host_state(h) for h in hosts.hosts],
            "gateway": str(hosts.gateway) if hosts.gateway else None,
            "plan_dir": str(self._plan_dir),
            "kubeconfig": str(kubeconfig),
            "touched": [],
        }
        record: Callable[[Mapping[str, Any]], None] = ctx.record_state

        def touched(name: str) -> None:
            with lock:
                if name not in self._touched:
                    self._touched.append(name)
                    self._state["touched"] = list(self._touched)
                    record(dict(self._state))

        record(dict(self._state))
        with self._connections(hosts) as conns:
            installer = Installer(hosts, cfg, conns, plan_dir=self._plan_dir, cancel=ctx.cancel)
            installed = installer.install(kubeconfig, on_host=touched)
            log.info(
                "k3s.installed",
                hosts=len(hosts.hosts),
                fresh=sorted(n for n, f in installed.fresh.items() if f),
                version=cfg.k3s_version,
            )
            if hosts.gateway is not None:
                self._tunnel = self._open_tunnel(hosts, kubeconfig)
            installer.wait_ready(kubeconfig)
            self._facts = run_all(hosts.hosts, lambda h: _facts(conns, h), what="describe")

        def cluster_state(state: Mapping[str, Any]) -> None:
            self._state["kubernetes"] = dict(state)
            record(dict(self._state))

        self.cluster = KubernetesPlatform(cfg.kubernetes(str(kubeconfig)))
        return self.cluster.acquire(attrs.evolve(ctx, record_state=cluster_state))

    def _open_tunnel(self, hosts: HostInventory, kubeconfig: Path) -> ApiTunnel:
        """Behind a gateway the nodes' API is reached through SSH: forward a local port to
        the control host's and point the kubeconfig at it (greenflow_k3s.tunnel)."""
        control = next(h for h in hosts.hosts if h.role == "control")
        tunnel = ApiTunnel(self._connections(hosts), control)
        try:
            point_kubeconfig(kubeconfig, tunnel.open())
        except BaseException:
            tunnel.close()
            raise
        return tunnel

    def _connections(self, hosts: HostInventory) -> Connections:
        cfg = self.config
        ssh_config = None
        if cfg.ssh_config is not None:
            path = Path(cfg.ssh_config).expanduser()
            ssh_config = path if path.is_absolute() else self._plan_dir / path
        return Connections(hosts, connect_timeout=float(cfg.connect_timeout), ssh_config=ssh_config)

    # -- validate ------------------------------------------------------------------------

    def preflight(self, plan_path: Path) -> list[str]:
        """``greenflow validate``: the inventory read (relative to the plan), then every
        host reached over SSH with its user and key, and sudo tried where ``become`` —
        one line per host that fails, naming it and why. Changes nothing."""
        self._plan_dir = plan_path.parent
        hosts = load_inventory(self.config, plan_path)
        self._hosts = hosts
        with self._connections(hosts) as conns:
            try:
                run_all(
                    hosts.hosts,
                    lambda h: conns.run(h, "true", timeout=float(self.config.connect_timeout) * 3),
                    what="answer over SSH",
                )
            except HostsFailed as exc:
                by_name = {h.name: h for h in hosts.hosts}
                return [
                    f"{name} ({by_name[name].target}): {cause_of(failure, by_name[name])}"
                    for name, failure in exc.failures.items()
                ]
        return []

    # -- collectors behind the gateway ----------------------------------------------------

    def reach(self, url: str) -> str:
        """Core's ``Forwarding``: behind a gateway, a URL on one of the hosts (a Prometheus
        NodePort) becomes a local port forwarded over SSH; otherwise ``url`` itself."""
        hosts = self._hosts
        if hosts is None or hosts.gateway is None:
            return url
        with self._forwards_lock:
            if self._forwards is None:
                self._forwards = PortForwards(self._connections(hosts))
            forwards = self._forwards
        return forwarded_url(url, hosts.hosts, forwards.local_port)

    # -- release -------------------------------------------------------------------------

    def release(self) -> None:
        """Release the cluster's objects, then uninstall k3s (agents first) unless ``keep``."""
        cluster, self.cluster = self.cluster, None
        tunnel, self._tunnel = self._tunnel, None
        with self._forwards_lock:
            forwards, self._forwards = self._forwards, None
        try:
            if forwards is not None:
                forwards.close()
            if cluster is not None:
                cluster.release()
        finally:
            if tunnel is not None:
                tunnel.close()
            hosts, self._hosts = self._hosts, None
            touched, self._touched = self._touched, []
            if hosts is not None and touched and not self.config.keep:
                with self._connections(hosts) as conns:
                    Installer(hosts, self.config, conns, plan_dir=self._plan_dir).uninstall(touched)
                log.info("k3s.uninstalled", hosts=len(touched))

    @classmethod
    def release_recorded(cls, config: Any, state: Mapping[str, Any]) -> None:
        """``greenflow down`` (after ``greenflow up``, or a crash): the cluster's objects,
        then k3s from the hosts the install had reached, from the recorded inventory —
        ``down`` ends everything, ``keep`` only spares k3s at a run's own release."""
        cfg: K3sConfig = config
        try:
            if state.get("kubernetes"):
                tunnel = None
                if state.get("gateway") and Path(str(state["kubeconfig"])).is_file():
                    platform = cls(cfg)
                    platform._plan_dir = Path(state.get("plan_dir") or Path.cwd())
                    tunnel = platform._open_tunnel(
                        _recorded_hosts(state), Path(str(state["kubeconfig"]))
                    )
                try:
                    KubernetesPlatform.release_recorded(
                        cfg.kubernetes(str(state["kubeconfig"])), state["kubernetes"]
                    )
                finally:
                    if tunnel is not None:
                        tunnel.close()
        finally:
            touched = list(state.get("touched") or [])
            if touched:
                hosts = _recorded_hosts(state)
                platform = cls(cfg)
                platform._plan_dir = Path(state.get("plan_dir") or Path.cwd())
                with platform._connections(hosts) as conns:
                    Installer(hosts, cfg, conns, plan_dir=platform._plan_dir).uninstall(touched)

    # -- facts ---------------------------------------------------------------------------

    def check_roles(self, roles: frozenset[str]) -> str | None:
        if self.cluster is not None:
            return self.cluster.check_roles(roles)
        if self._hosts is None:
            return None  # the inventory is read at acquire (relative to the plan)
        present = {h.role for h in self._hosts.hosts}
        missing = sorted(roles - present)
        if not missing:
            return None
        return f"no host of the inventory has role(s) {', '.join(missing)}"

    def describe(self) -> Mapping[str, Any]:
        """The cluster's facts, and per node what it reported over SSH: kernel, CPU model,
        cores, memory, k3s version, whether RAPL is readable (the energy method it gets)."""
        facts: dict[str, Any] = dict(self.cluster.describe()) if self.cluster else {}
        facts.update(
            platform="k3s",
            k3s_version=self.config.k3s_version,
            hosts={
                name: {**self._host_summary(name), **node}
                for name, node in sorted(self._facts.items())
            },
        )
        return facts

    def _host_summary(self, name: str) -> dict[str, Any]:
        if self._hosts is None:
            return {}
        host = self._hosts[name]
        return {"role": host.role, "address": host.address}


def _facts(conns: Connections, host: Host) -> dict[str, str]:
    """What ``host`` reports of itself (:data:`_FACTS`); a fact it cannot give is empty."""
    out: dict[str, str] = {}
    for name, command in _FACTS.items():
        try:
            out[name] = conns.run(host, command, timeout=30).stdout.strip()
        except PlatformError:
            out[name] = ""
    return out
