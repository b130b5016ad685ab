"""The ``g5k`` platform: nodes reserved on Grid'5000 through OAR (python-grid5000), root on
them (kadeploy, or ``sudo-g5k``), then greenflow-k3s' ``k3s`` platform on those nodes
(composition: the services see its :class:`~greenflow_kubernetes.KubeSession` through
:attr:`kube`). The job is deleted at release on every path unless ``keep``; the walltime
guard (:meth:`G5kPlatform.ensure_time`) never lets a run start that the job would cut."""

from __future__ import annotations

import getpass
import ipaddress
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar, cast

import attrs
import structlog

from greenflow.api import Capability, DeployContext, Inventory, Platform
from greenflow.errors import OutOfTime, PlatformError
from greenflow_g5k import oar
from greenflow_g5k.config import G5kConfig
from greenflow_g5k.oar import Cancelled, Credentials, JobError
from greenflow_k3s import (
    Connections,
    Gateway,
    Host,
    HostEntry,
    K3sConfig,
    K3sPlatform,
    Role,
    run_all,
)
from greenflow_k3s import Inventory as HostInventory
from greenflow_kubernetes import KubernetesPlatform, KubeSession

log = structlog.get_logger("greenflow.g5k")

#: What the walltime guard keeps for the teardown after a run: services removed, k3s
#: uninstalled, the job deleted (s).
RELEASE_MARGIN_S = 300.0
#: Root through sudo-g5k: the user's authorized keys become root's, so that the same key
#: reaches the node as root (EnOSlib's grant_root_access).
GRANT_ROOT = (
    "sudo-g5k mkdir -p /root/.ssh && cat ~/.ssh/authorized_keys ~/.ssh/*.pub 2>/dev/null "
    "| sudo-g5k tee -a /root/.ssh/authorized_keys >/dev/null"
)
_DEFAULT_KEYS = ("~/.ssh/id_ed25519.pub", "~/.ssh/id_rsa.pub")


class G5kPlatform(Platform):
    """Grid'5000 nodes with k3s on them (docs/g5k.md)."""

    Config: ClassVar[type] = G5kConfig
    capabilities: ClassVar[frozenset[Capability]] = KubernetesPlatform.capabilities
    config: G5kConfig

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        #: The k3s platform on the job's nodes, from acquire on.
        self.k3s: K3sPlatform | None = None
        self._credentials = Credentials()
        self._client: Any = None
        self._job: Any = None
        self._submitted = False
        self._roles: dict[str, list[str]] = {}
        self._facts: dict[str, Any] = {}
        self._state: dict[str, Any] = {}
        self._record: Callable[[Mapping[str, Any]], None] = lambda _s: None
        self._plan_dir = Path.cwd()

    @property
    def kube(self) -> KubeSession | None:
        """The cluster's session (what services use), None before acquire and after release."""
        return self.k3s.kube if self.k3s is not None else None

    # -- acquire -------------------------------------------------------------------------

    def acquire(self, ctx: DeployContext) -> Inventory:
        """Find or submit the job, wait for it to run, get root on its nodes, install k3s
        on them with the plan's roles and acquire the cluster."""
        cfg = self.config
        self._plan_dir = (ctx.plan_path or Path.cwd() / "plan.toml").parent
        self._record = ctx.record_state
        self._credentials = oar.load_credentials(self._path(cfg.credentials_file))
        self._client = oar.connect(cfg.api_url, self._credentials)
        site = self._call("reading the site", lambda: self._client.sites[cfg.site])
        exotic = self._reference(site)
        name = cfg.name_for(ctx.experiment)
        user = self._api_user()
        found = self._call("listing your jobs", lambda: oar.find_jobs(site, name, user))
        if len(found) > 1:
            ids = ", ".join(f"{j.uid} ({j.state})" for j in found)
            raise JobError(
                f"{len(found)} jobs named {name!r} on {cfg.site}: {ids}; delete the ones you "
                f"do not want (oardel), or set job_name"
            )
        if found:
            self._job = found[0]
            log.info("g5k.job_reused", job=self._job.uid, state=self._job.state, name=name)
        else:
            body = oar.job_request(cfg, name, exotic)
            # Recorded before the POST: a submission cut off after OAR took the job but
            # before its answer came (Ctrl-C, a dropped connection) leaves a job with no
            # id here; release and `greenflow down` then find it by its name, which no job
            # of this user had a moment ago.
            self._save(submitting=name)
            try:
                self._job = oar.submit(site, cfg, body)
            except JobError:
                self._state.pop("submitting")  # OAR refused it: there is no job
                raise
            self._submitted = True
            log.info("g5k.job_submitted", job=self._job.uid, name=name, resources=body["resources"])
        # Before any wait: a crash from here on leaves a job that `greenflow down` deletes.
        self._state.pop("submitting", None)
        self._save(job_id=int(self._job.uid), submitted=self._submitted, name=name)
        oar.wait_running(
            self._job,
            deadline_s=float(cfg.wait_timeout),
            cancel=ctx.cancel,
            progress=lambda text: _show(ctx, text),
        )
        nodes = list(self._job.assigned_nodes or [])
        self._roles = oar.assign_roles(cfg, nodes)
        self._save(nodes=sorted(nodes), roles=self._roles)
        log.info("g5k.job_running", job=self._job.uid, nodes=[oar.short(n) for n in nodes])
        self._node_facts(site)
        if cfg.env is not None:
            self._call(
                "deploying the environment",
                lambda: oar.deploy(
                    site,
                    sorted(nodes),
                    cfg.env or "",
                    self._deploy_key(),
                    attempts=cfg.deploy_attempts,
                    cancel=ctx.cancel,
                ),
            )
        else:
            self._grant_root()
        self.k3s = K3sPlatform(self._k3s_config())
        return self.k3s.acquire(attrs.evolve(ctx, record_state=self._k3s_state))

    def preflight(self, plan_path: Path) -> list[str]:
        """``greenflow validate``: the credentials read, the API reached with them, the
        site and the plan's clusters found in the reference API. Reserves nothing."""
        cfg = self.config
        self._plan_dir = plan_path.parent
        try:
            self._credentials = oar.load_credentials(self._path(cfg.credentials_file))
            self._client = oar.connect(cfg.api_url, self._credentials)
            site = self._call(f"reading site {cfg.site}", lambda: self._client.sites[cfg.site])
            self._reference(site)
        except PlatformError as exc:
            return [str(exc)]
        return []

    def _call(self, what: str, fn: Callable[[], Any]) -> Any:
        """``fn()``, an API failure as one line (secrets masked); OAR's own errors and a
        cancel pass through."""
        try:
            return fn()
        except (PlatformError, KeyboardInterrupt):
            raise
        except Exception as exc:
            secrets = (self._credentials.password, self._credentials.sslkey)
            raise oar.api_error(what, exc, secrets) from None

    def _path(self, value: str) -> Path:
        path = Path(value).expanduser()
        return path if path.is_absolute() else self._plan_dir / path

    def _api_user(self) -> str | None:
        return _api_user(self._credentials, self.config)

    def _ssh_user(self) -> str | None:
        return self.config.user or self._credentials.username or _login()

    def _save(self, **items: Any) -> None:
        cfg = self.config
        self._state.update(site=cfg.site, api_url=cfg.api_url, **items)
        self._state.setdefault("credentials_file", cfg.credentials_file)
        self._state.setdefault("plan_dir", str(self._plan_dir))
        self._record(dict(self._state))

    def _k3s_state(self, state: Mapping[str, Any]) -> None:
        self._save(k3s=dict(state))

    def _reference(self, site: Any) -> bool:
        """The plan's clusters from the reference API (an unknown one is an error naming
        the site's); True when any is exotic (the job needs the ``exotic`` type)."""
        cfg = self.config
        wanted = sorted(
            {str(g.cluster or cfg.cluster) for g in cfg.roles.values() if not g.servers}
        )
        wanted += sorted(
            {oar.cluster_of(s) for g in cfg.roles.values() for s in g.servers} - set(wanted)
        )
        known = {c.uid: c for c in self._call("listing clusters", lambda: site.clusters.list())}
        exotic = False
        for name in wanted:
            if name not in known:
                raise JobError(
                    f"{cfg.site} has no cluster {name!r}; its clusters: "
                    f"{', '.join(sorted(known)) or 'none'}"
                )
            cluster = known[name]
            exotic = exotic or bool(getattr(cluster, "exotic", False))
            metrics = [m.get("name") for m in getattr(cluster, "metrics", None) or []]
            self._facts.setdefault("clusters", {})[name] = {
                "exotic": bool(getattr(cluster, "exotic", False)),
                "wattmeter": "wattmetre_power_watt" in metrics,
                "bmc": "bmc_node_power_watt" in metrics,
                "power_metrics": [m for m in metrics if m and m.endswith("power_watt")],
            }
        return exotic

    def _node_facts(self, site: Any) -> None:
        """Per node, from the reference API: cluster, CPU model, cores, memory, and the
        power instruments its cluster has (provenance)."""
        nodes: dict[str, Any] = {}
        for role, fqdns in self._roles.items():
            for fqdn in fqdns:
                cluster = oar.cluster_of(fqdn)
                try:
                    node = site.clusters[cluster].nodes[oar.short(fqdn)]
                except Exception as exc:  # a fact missing is no reason to stop the run
                    log.warning("g5k.node_facts_missing", node=fqdn, error=str(exc))
                    nodes[oar.short(fqdn)] = {"role": role, "cluster": cluster}
                    continue
                processor = getattr(node, "processor", {}) or {}
                arch = getattr(node, "architecture", {}) or {}
                memory = getattr(node, "main_memory", {}) or {}
                power = self._facts.get("clusters", {}).get(cluster, {})
                nodes[oar.short(fqdn)] = {
                    "role": role,
                    "fqdn": fqdn,
                    "cluster": cluster,
                    "cpu_model": " ".join(
                        str(p) for p in (processor.get("model"), processor.get("version")) if p
                    ),
                    "cpus": arch.get("nb_procs"),
                    "cores": arch.get("nb_cores"),
                    "threads": arch.get("nb_threads"),
                    "memory_bytes": memory.get("ram_size"),
                    "wattmeter": bool(power.get("wattmeter")),
                    "bmc": bool(power.get("bmc")),
                }
        self._facts["nodes"] = nodes

    def _deploy_key(self) -> str:
        candidates = [self.config.deploy_key] if self.config.deploy_key else list(_DEFAULT_KEYS)
        for candidate in candidates:
            path = self._path(candidate)
            if path.is_file():
                return path.read_text().strip()
        raise JobError(
            f"no public key for kadeploy ({', '.join(candidates)}); set deploy_key to your "
            "public key file"
        )

    def _hosts(self, user: str | None) -> HostInventory:
        gateway = Gateway.parse(self.config.gateway) if self.config.gateway else None
        return HostInventory(
            [
                Host(oar.short(fqdn), fqdn, cast(Role, role), user=user)
                for role, fqdns in self._roles.items()
                for fqdn in fqdns
            ],
            gateway=gateway,
        )

    def _connections(self, hosts: HostInventory) -> Connections:
        cfg = self.config
        ssh_config = self._path(cfg.ssh_config) if cfg.ssh_config else None
        return Connections(
            hosts, connect_timeout=float(cfg.k3s.connect_timeout), ssh_config=ssh_config
        )

    def _grant_root(self) -> None:
        """Root on every node through ``sudo-g5k`` (a job without ``env``)."""
        hosts = self._hosts(self._ssh_user())
        with self._connections(hosts) as conns:
            run_all(
                hosts.hosts,
                lambda h: conns.run(h, GRANT_ROOT, timeout=60),
                what="get root through sudo-g5k",
            )
        log.info("g5k.root_granted", nodes=len(hosts.hosts))

    def _node_ips(self) -> dict[str, str]:
        """Node → the IP address the plan's SSH config gives its name (``HostName``), if
        any: where this machine reaches the node, hence its API too (k3s' ``--node-ip``
        and the kubeconfig's server). Without one, the nodes' names are resolved by DNS, as
        on Grid'5000."""
        if not self.config.ssh_config:
            return {}
        import paramiko

        lookup = paramiko.SSHConfig.from_path(str(self._path(self.config.ssh_config)))
        out = {}
        for fqdns in self._roles.values():
            for fqdn in fqdns:
                name = str(lookup.lookup(fqdn).get("hostname", fqdn))
                try:
                    ipaddress.ip_address(name)
                except ValueError:
                    continue
                out[oar.short(fqdn)] = name
        return out

    def _k3s_config(self) -> K3sConfig:
        cfg = self.config
        settings: dict[str, Any] = {
            **attrs.asdict(cfg.k3s, recurse=False),
            "hosts": tuple(
                HostEntry(name=oar.short(fqdn), role=role, address=fqdn, user="root")
                for role, fqdns in self._roles.items()
                for fqdn in fqdns
            ),
            "node_ip": self._node_ips(),
            "gateway": cfg.gateway,
            "ssh_config": str(self._path(cfg.ssh_config)) if cfg.ssh_config else None,
            "keep": cfg.keep,
        }
        return K3sConfig(**settings)

    # -- costs ---------------------------------------------------------------------------

    def cost(self) -> str:
        """The node-hours the job reserves (``greenflow run --dry-run``)."""
        cfg = self.config
        nodes = sum(g.count for g in cfg.roles.values())
        hours = cfg.walltime_s / 3600
        clusters = sorted(
            {g.cluster or cfg.cluster or "" for g in cfg.roles.values() if not g.servers}
            | {oar.cluster_of(s) for g in cfg.roles.values() for s in g.servers}
        )
        text = (
            f"one job of {nodes} node(s) of {', '.join(clusters)} at {cfg.site} for "
            f"{cfg.walltime}: {nodes * hours:.3g} node-hours"
        )
        if cfg.max_walltime_s is not None:
            text += f" ({nodes * cfg.max_walltime_s / 3600:.3g} if extended to {cfg.max_walltime})"
        return text

    # -- the walltime guard --------------------------------------------------------------

    def ensure_time(self, needed_s: float) -> None:
        """The job holds its nodes for ``needed_s`` more seconds and the release after it;
        else it is extended up to ``max_walltime``, else :class:`OutOfTime`."""
        job = self._job
        if job is None:
            return
        try:
            job.refresh()
        except Exception as exc:  # the API unreachable for a moment: the run goes on
            log.warning("g5k.walltime_unchecked", job=job.uid, error=str(exc))
            return
        left = self._time_left(job)
        wanted = needed_s + RELEASE_MARGIN_S
        if left is None or left >= wanted:
            return
        limit = self.config.max_walltime_s
        walltime = float(getattr(job, "walltime", 0) or 0)
        more = wanted - left
        if limit is not None and walltime + more <= limit:
            extended = self._extend(job, more)
            if extended:
                return
        raise OutOfTime(
            f"job {job.uid} has {left / 60:.0f} min of walltime left; the next run and the "
            f"release need {wanted / 60:.0f} min"
            + (
                f" and max_walltime ({self.config.max_walltime}) allows no more"
                if limit is not None
                else "; set max_walltime to let GreenFlow extend the job"
            )
            + ". The job is released; run the plan again to resume with a new job."
        )

    @staticmethod
    def _time_left(job: Any) -> float | None:
        started = float(getattr(job, "started_at", 0) or 0)
        walltime = float(getattr(job, "walltime", 0) or 0)
        if not started or not walltime:
            return None
        return started + walltime - time.time()

    def _extend(self, job: Any, seconds: float) -> bool:
        """Ask OAR for ``seconds`` more; True when the job's walltime grew (OAR may grant
        it later, or not at all: only a granted extension counts)."""
        from grid5000.exceptions import Grid5000Error

        before = float(getattr(job, "walltime", 0) or 0)
        try:
            oar.extend(job, seconds)
        except Grid5000Error as exc:
            # g5k-api answers an accepted change with a raw sentence python-grid5000 cannot
            # parse; a refusal is a 403. The job's walltime says which.
            log.info("g5k.extend_answer", job=job.uid, answer=" ".join(str(exc).split()))
        try:
            job.refresh()
        except Exception:
            return False
        granted = float(getattr(job, "walltime", 0) or 0) > before
        log.info("g5k.extended" if granted else "g5k.extend_refused", job=job.uid, by_s=seconds)
        return granted

    # -- collectors behind the gateway ----------------------------------------------------

    def reach(self, url: str) -> str:
        """Core's ``Forwarding``, through greenflow-k3s: behind ``gateway``, a URL on one of
        the job's nodes (a Prometheus NodePort) becomes a local port forwarded over SSH."""
        return self.k3s.reach(url) if self.k3s is not None else url

    # -- release -------------------------------------------------------------------------

    def release(self) -> None:
        """Release the cluster and uninstall k3s (unless ``keep``), then delete the job
        unless ``keep`` — on every path, whatever failed before. The uninstall is a
        courtesy: the job's end wipes the nodes anyway, so its failure is logged and the
        job deleted all the same."""
        k3s, self.k3s = self.k3s, None
        try:
            if k3s is not None:
                _best_effort(k3s.release, keep=self.config.keep)
        finally:
            job, self._job = self._job, None
            submitting = self._state.pop("submitting", None)
            # (Kept, a job whose submission was cut off is reused by its name next run.)
            if (job is not None or submitting) and not self.config.keep:
                site = self._client.sites[self.config.site] if self._client else None
                if job is not None:
                    _delete(site, int(job.uid))
                else:
                    _delete_cut_off(site, str(submitting), self._api_user())

    @classmethod
    def release_recorded(cls, config: Any, state: Mapping[str, Any]) -> None:
        """``greenflow down`` (after ``greenflow up``, or a crash): the cluster and k3s
        from the recorded state, then the job — ``down`` ends everything."""
        cfg: G5kConfig = config
        try:
            if state.get("k3s"):
                platform = cls(cfg)
                platform._plan_dir = Path(state.get("plan_dir") or Path.cwd())
                platform._roles = {k: list(v) for k, v in (state.get("roles") or {}).items()}
                k3s_config = platform._k3s_config()
                _best_effort(lambda: K3sPlatform.release_recorded(k3s_config, state["k3s"]))
        finally:
            if state.get("job_id") is not None or state.get("submitting"):
                plan_dir = Path(state.get("plan_dir") or Path.cwd())
                path = Path(str(state.get("credentials_file") or cfg.credentials_file))
                path = path.expanduser()
                credentials = oar.load_credentials(path if path.is_absolute() else plan_dir / path)
                client = oar.connect(str(state.get("api_url") or cfg.api_url), credentials)
                site = client.sites[str(state.get("site") or cfg.site)]
                if state.get("job_id") is not None:
                    _delete(site, int(state["job_id"]))
                else:
                    _delete_cut_off(site, str(state["submitting"]), _api_user(credentials, cfg))

    # -- facts ---------------------------------------------------------------------------

    def check_roles(self, roles: frozenset[str]) -> str | None:
        if self.k3s is not None:
            return self.k3s.check_roles(roles)
        missing = sorted(roles - set(self.config.roles))
        if not missing:
            return None
        return f"[platform] roles has no {', '.join(missing)}; add roles.{missing[0]}"

    def describe(self) -> Mapping[str, Any]:
        """The cluster's facts, the job (site, id, name, walltime), and per node its
        cluster, CPU, cores, memory and power instruments from the reference API."""
        facts: dict[str, Any] = dict(self.k3s.describe()) if self.k3s else {}
        job = self._job
        facts.update(
            platform="g5k",
            site=self.config.site,
            job={
                "id": int(job.uid) if job is not None else self._state.get("job_id"),
                "name": self._state.get("name"),
                "submitted": self._submitted,
                "walltime_s": getattr(job, "walltime", None) if job is not None else None,
                "queue": self.config.queue,
                "env": self.config.env,
            },
            clusters=self._facts.get("clusters", {}),
            nodes=self._facts.get("nodes", {}),
        )
        return facts


def _show(ctx: DeployContext, text: str) -> None:
    """The job's wait on the progress line, and in the log."""
    ctx.progress(text)
    log.info("g5k.waiting", state=text)


def _best_effort(release: Callable[[], None], *, keep: bool = False) -> None:
    """``release()``; with the job about to be deleted (not ``keep``), a failure is logged,
    not raised: the job's end wipes the nodes, and the DELETE must not wait on them."""
    try:
        release()
    except PlatformError as exc:
        if keep:
            raise
        log.warning(
            "g5k.k3s_release_failed",
            error=" ".join(str(exc).split()),
            hint="the job is deleted all the same; its end wipes the nodes",
        )


def _delete(site: Any, job_id: int) -> None:
    if site is None:
        return
    if oar.delete(site, job_id):
        log.info("g5k.job_deleted", job=job_id)
    else:
        log.info("g5k.job_already_over", job=job_id)


def _delete_cut_off(site: Any, name: str, user: str | None) -> None:
    """Delete the job of a submission whose answer never came, found by its name (the
    submission was made because this user had no job of that name)."""
    if site is None:
        return
    try:
        found = oar.find_jobs(site, name, user)
    except Exception as exc:  # the API is unreachable: say what may be left
        log.warning(
            "g5k.submission_unknown",
            name=name,
            error=type(exc).__name__,
            hint="a job of this name may hold nodes: look with oarstat -u, end it with oardel",
        )
        return
    if not found:
        log.info("g5k.submission_not_taken", name=name)
    for job in found:
        _delete(site, int(job.uid))


def _api_user(credentials: Credentials, cfg: G5kConfig) -> str | None:
    """Whose jobs these are: the API's login, else the plan's ``user``, else this login."""
    return credentials.username or cfg.user or _login()


def _login() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return None


__all__ = ["Cancelled", "G5kPlatform"]
