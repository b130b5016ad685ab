"""Redpanda as local processes: one ``redpanda`` process per broker on this host.

Each broker gets a directory ``<work_dir>/<service>/broker-<i>`` holding its node
configuration ``redpanda.yaml``, the cluster properties ``.bootstrap.yaml`` (Redpanda reads
that file from the directory of ``redpanda.yaml`` once, when the cluster forms) and its
``data`` directory; its stdout and stderr go to ``<log_dir>/<service>/broker-<i>.log``.

The binary is started the way ``rpk redpanda start`` finally starts it (rpk's launcher
``exec``s ``redpanda --redpanda-cfg <file>`` plus Seastar flags), without rpk:

    redpanda --redpanda-cfg <dir>/redpanda.yaml --smp=<cores> --memory=<80 % of memory>M
        --reserve-memory=0M --unsafe-bypass-fsync=false --default-log-level=info
        [--overprovisioned]

``--unsafe-bypass-fsync=false`` is Seastar's default, written out so the command line says
that writes are fsynced (``rpk --mode dev-container`` would bypass fsync, which changes what
is measured). rpk's own flags (``--check``, ``--seeds``, ``--kafka-addr``...) are not
Redpanda's and are not passed; their settings are in ``redpanda.yaml``:

- ``data_directory``, ``node_id`` (0..N-1), ``developer_mode``;
- seed-driven cluster formation as on Kubernetes: ``empty_seed_starts_cluster: false`` and
  every broker's RPC address in ``seed_servers``, in node order, so the seeds form the
  cluster together (one broker lists itself);
- ``rpc_server`` / ``advertised_rpc_api``, ``kafka_api`` / ``advertised_kafka_api`` (one
  listener named ``internal``) and ``admin``, each on a free port of the broker host's
  address, which is also what is advertised (Redpanda refuses to advertise 0.0.0.0).

Readiness is every broker's Admin API ``/v1/status/ready`` answering 200, then every node id
in the Kafka metadata of the bootstrap address. Every process runs in its own session
(process group): stopping signals the group, SIGTERM then SIGKILL at the deadline, so
nothing it forked outlives it; a finalizer kills what is left if the owner never stops it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any, NoReturn

import attrs

from greenflow.api.net import free_ports
from greenflow.api.processes import (
    group_members,
    kill_groups,
    signal_group,
    spawn_in_own_session,
    tail_block,
    wait_all,
)
from greenflow.errors import ReadinessTimeout, ServiceError

log = logging.getLogger(__name__)

#: The Admin API's readiness endpoint: 200 ``{"status": "ready"}`` once the broker serves.
READY_PATH = "/v1/status/ready"
#: Redpanda's own Prometheus endpoint, on the Admin API port (as the pods on Kubernetes).
PUBLIC_METRICS_PATH = "/public_metrics"
#: Name of the one Kafka listener each broker has.
LISTENER = "internal"
#: Redpanda refuses to start (outside developer_mode) with less memory per core (shard).
MIN_SHARD_MEMORY_MIB = 1024


@attrs.frozen
class RedpandaNode:
    """One planned broker process."""

    name: str
    node_id: int
    kafka_port: int
    rpc_port: int
    admin_port: int
    dir: Path
    log_path: Path

    @property
    def data_dir(self) -> Path:
        return self.dir / "data"

    @property
    def config_path(self) -> Path:
        return self.dir / "redpanda.yaml"

    @property
    def bootstrap_path(self) -> Path:
        # Redpanda looks for it next to the node configuration file.
        return self.dir / ".bootstrap.yaml"


@attrs.frozen
class LocalRedpandaSpec:
    """Everything a local cluster depends on."""

    binary: str
    host: str = "127.0.0.1"
    brokers: int = 1
    cores: int = 1
    #: Seastar's ``--memory`` for each broker, MiB.
    memory_mib: int = 1638
    overprovisioned: bool = True
    developer_mode: bool = False
    write_caching: bool = False
    overrides: Mapping[str, Any] = attrs.field(factory=dict)

    def __attrs_post_init__(self) -> None:
        if self.brokers < 1 or self.cores < 1:
            msg = f"brokers and cores must be ≥ 1, got {self.brokers} and {self.cores}"
            raise ValueError(msg)
        per_shard = self.memory_mib // self.cores
        if per_shard < MIN_SHARD_MEMORY_MIB and not self.developer_mode:
            msg = (
                f"Redpanda would get {self.memory_mib} MiB for {self.cores} core(s), "
                f"{per_shard} MiB per core; it refuses to start with less than "
                f"{MIN_SHARD_MEMORY_MIB} MiB per core unless developer_mode = true (raise "
                "`memory` or lower `cores`)"
            )
            raise ValueError(msg)
        if "write_caching_default" in self.overrides:
            msg = "overrides: set write caching with `write_caching`, not write_caching_default"
            raise ValueError(msg)


def cluster_properties(write_caching: bool, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The cluster properties of ``.bootstrap.yaml`` (shared with the Kubernetes manifests)."""
    return {"write_caching_default": "true" if write_caching else "false", **dict(overrides)}


def plan_nodes(brokers: int, host: str, work_dir: Path, log_dir: Path) -> tuple[RedpandaNode, ...]:
    """``brokers`` nodes ``broker-<i>`` with node ids ``i`` and three free ports each."""
    ports = iter(free_ports(host, 3 * brokers))
    return tuple(
        RedpandaNode(
            name=f"broker-{i}",
            node_id=i,
            kafka_port=next(ports),
            rpc_port=next(ports),
            admin_port=next(ports),
            dir=work_dir / f"broker-{i}",
            log_path=log_dir / f"broker-{i}.log",
        )
        for i in range(brokers)
    )


def node_config(
    node: RedpandaNode, nodes: Sequence[RedpandaNode], host: str, *, developer_mode: bool = False
) -> dict[str, Any]:
    """The ``redpanda.yaml`` of ``node`` as a mapping."""
    return {
        "redpanda": {
            "data_directory": str(node.data_dir),
            "node_id": node.node_id,
            "developer_mode": developer_mode,
            "empty_seed_starts_cluster": False,
            "seed_servers": [{"host": {"address": host, "port": n.rpc_port}} for n in nodes],
            "rpc_server": {"address": host, "port": node.rpc_port},
            "advertised_rpc_api": {"address": host, "port": node.rpc_port},
            "kafka_api": [{"name": LISTENER, "address": host, "port": node.kafka_port}],
            "advertised_kafka_api": [{"name": LISTENER, "address": host, "port": node.kafka_port}],
            "admin": [{"address": host, "port": node.admin_port}],
        },
    }


def command(spec: LocalRedpandaSpec, node: RedpandaNode) -> list[str]:
    """The argv that starts ``node``."""
    cmd = [
        spec.binary,
        "--redpanda-cfg",
        str(node.config_path),
        f"--smp={spec.cores}",
        f"--memory={spec.memory_mib}M",
        "--reserve-memory=0M",
        "--unsafe-bypass-fsync=false",
        "--default-log-level=info",
    ]
    if spec.overprovisioned:
        cmd.append("--overprovisioned")
    return cmd


def to_yaml(value: Mapping[str, Any], header: str = "") -> str:
    """Block-style YAML of nested mappings, lists and scalars (strings double-quoted, which
    JSON's escapes make valid YAML)."""
    lines = [f"# {line}" for line in header.splitlines()]
    lines += _yaml_lines(value, 0)
    return "\n".join(lines) + "\n"


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if value is None:
        return "null"
    return json.dumps(str(value), ensure_ascii=False)


def _yaml_lines(value: Any, indent: int) -> list[str]:
    pad = " " * indent
    out: list[str] = []
    if isinstance(value, Mapping):
        for key, item in value.items():
            if isinstance(item, Mapping | list | tuple) and item:
                out.append(f"{pad}{key}:")
                out += _yaml_lines(item, indent + 2)
            elif isinstance(item, Mapping):
                out.append(f"{pad}{key}: {{}}")
            elif isinstance(item, list | tuple):
                out.append(f"{pad}{key}: []")
            else:
                out.append(f"{pad}{key}: {_scalar(item)}")
        return out
    for item in value:
        if isinstance(item, Mapping | list | tuple) and item:
            nested = _yaml_lines(item, indent + 2)
            out.append(f"{pad}- {nested[0][indent + 2 :]}")
            out += nested[1:]
        else:
            out.append(f"{pad}- {_scalar(item)}")
    return out


class LocalRedpandaCluster:
    """Redpanda brokers as local processes: ``start()``, ``wait_ready()``, measure, ``stop()``."""

    def __init__(self, spec: LocalRedpandaSpec, work_dir: Path, log_dir: Path) -> None:
        self.spec = spec
        self.work_dir = Path(work_dir)
        self.log_dir = Path(log_dir)
        self.nodes: tuple[RedpandaNode, ...] = ()
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._started = False
        self._stopped = False
        # No broker may outlive this object if its owner never calls stop(); the finalizer
        # holds the dict, not self.
        self._finalizer = weakref.finalize(self, kill_groups, self._procs)

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Pick ports, write each broker's files and spawn every process; return at once."""
        if self._started:
            msg = "this LocalRedpandaCluster was already started; make a new one"
            raise ServiceError(msg)
        self._started = True
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.nodes = plan_nodes(self.spec.brokers, self.spec.host, self.work_dir, self.log_dir)
        properties = cluster_properties(self.spec.write_caching, self.spec.overrides)
        for node in self.nodes:
            # A leftover of a crashed run would be an old cluster's data.
            shutil.rmtree(node.dir, ignore_errors=True)
            node.data_dir.mkdir(parents=True)
            node.config_path.write_text(
                to_yaml(
                    node_config(
                        node, self.nodes, self.spec.host, developer_mode=self.spec.developer_mode
                    ),
                    f"Written by greenflow_redpanda.local for {node.name}; regenerated on every "
                    "start.",
                )
            )
            node.bootstrap_path.write_text(
                to_yaml(properties, "Cluster properties, read once when the cluster forms.")
            )
            node.log_path.unlink(missing_ok=True)
        for node in self.nodes:
            self._spawn(node)
        log.info(
            "redpanda.cluster.started brokers=%d bootstrap=%s",
            self.spec.brokers,
            self.bootstrap_servers,
        )

    def wait_ready(self, timeout_s: float = 120.0) -> None:
        """Poll each broker's ``/v1/status/ready``, then the Kafka metadata, until every broker
        is in it; never a fixed sleep.

        Raises ``ServiceError`` at once when a process exits and ``ReadinessTimeout`` at the
        deadline, both with what was last seen and the end of the relevant log.
        """
        if not self._started or self._stopped:
            msg = "the Redpanda cluster is not running (start() it first)"
            raise ServiceError(msg)
        deadline = time.monotonic() + timeout_s
        last: dict[str, str] = {n.name: "no answer yet" for n in self.nodes}
        pending = list(self.nodes)
        while pending:
            self._check_alive(f"its Admin API {READY_PATH}", last)
            for node in list(pending):
                ok, last[node.name] = admin_ready(self.spec.host, node.admin_port)
                if ok:
                    pending.remove(node)
            if pending and time.monotonic() >= deadline:
                self._timeout(
                    timeout_s,
                    pending[0],
                    f"{READY_PATH} of {pending[0].name}",
                    last[pending[0].name],
                )
            if pending:
                time.sleep(0.2)  # poll interval, not a wait for readiness
        self._wait_metadata(deadline, timeout_s)
        log.info(
            "redpanda.cluster.ready brokers=%d bootstrap=%s",
            self.spec.brokers,
            self.bootstrap_servers,
        )

    def _wait_metadata(self, deadline: float, timeout_s: float) -> None:
        from confluent_kafka import KafkaException

        from greenflow_kafka import AdminSession

        expected = {n.node_id for n in self.nodes}
        errors: list[str] = []
        conf: dict[str, Any] = {
            "log_level": 0,
            "error_cb": lambda err: errors.append(str(err)),
            "socket.connection.setup.timeout.ms": 2000,
            "reconnect.backoff.max.ms": 500,
        }
        seen = "no answer yet"
        with AdminSession(self.bootstrap_servers, conf) as session:
            while True:
                self._check_alive("every broker in the Kafka metadata", {"metadata": seen})
                remaining = deadline - time.monotonic()
                try:
                    brokers = set(
                        session.client.list_topics(timeout=max(0.5, min(2.0, remaining))).brokers
                    )
                    seen = f"brokers {sorted(brokers)}"
                    if expected <= brokers:
                        return
                except KafkaException as exc:
                    seen = f"{exc.args[0] if exc.args else exc}"
                session.client.poll(0)
                if errors:
                    seen = f"{seen}; client error: {errors[-1]}"
                    errors.clear()
                if time.monotonic() >= deadline:
                    self._timeout(
                        timeout_s,
                        self.nodes[0],
                        f"brokers {sorted(expected)} in the Kafka metadata from "
                        f"{self.bootstrap_servers}",
                        seen,
                    )
                time.sleep(0.2)

    def stop(self, timeout_s: float = 20.0, *, keep_data: bool = False) -> dict[str, int | None]:
        """SIGTERM every broker's process group, SIGKILL what is left at the deadline, delete
        the data. Returns each process's exit code (-9: it had to be killed). Idempotent."""
        if self._stopped:
            return self.exit_codes()
        self._stopped = True
        procs = list(self._procs.values())
        since = time.time()
        for proc in procs:
            signal_group(proc, signal.SIGTERM)
        # Done when every leader has exited and nothing it forked is left in its group.
        deadline = time.monotonic() + timeout_s
        while group_members(procs, since) and time.monotonic() < deadline:
            time.sleep(0.1)
        left = group_members(procs, since)
        for member in left:
            log.warning("redpanda.cluster.kill pid=%d reason=sigterm-timeout", member.pid)
            with contextlib.suppress(Exception):
                member.kill()
        wait_all(procs, time.monotonic() + 10.0)
        deadline = time.monotonic() + 10.0
        while group_members(procs, since) and time.monotonic() < deadline:
            time.sleep(0.1)
        if not keep_data:
            for node in self.nodes:
                shutil.rmtree(node.data_dir, ignore_errors=True)
        codes = self.exit_codes()
        log.info("redpanda.cluster.stopped exit_codes=%s", codes)
        return codes

    def detach(self) -> None:
        """Let the brokers outlive this object (``greenflow up``); stop() still works."""
        self._finalizer.detach()

    # -- what is running -------------------------------------------------------------------

    @property
    def bootstrap_servers(self) -> str:
        return ",".join(f"{self.spec.host}:{n.kafka_port}" for n in self.nodes)

    def prometheus_targets(self, labels: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
        """Every broker's own metrics (``/public_metrics`` on its Admin API port, served by
        Redpanda itself) as a Prometheus ``file_sd_configs`` file's content: one group per
        broker, labelled ``process`` plus ``labels``."""
        host = f"[{self.spec.host}]" if ":" in self.spec.host else self.spec.host
        return [
            {
                "targets": [f"{host}:{n.admin_port}"],
                "labels": {
                    **dict(labels or {}),
                    "process": n.name,
                    "__metrics_path__": PUBLIC_METRICS_PATH,
                },
            }
            for n in self.nodes
        ]

    def processes(self) -> dict[str, int]:
        """Process name (``broker-0``...) → pid, for energy attribution."""
        return {name: proc.pid for name, proc in self._procs.items()}

    def exit_codes(self) -> dict[str, int | None]:
        return {name: proc.poll() for name, proc in self._procs.items()}

    def dead_processes(self) -> dict[str, int | None]:
        """Brokers that exited (name → exit code, negative for a signal) while they should run."""
        if self._stopped:
            return {}
        return {
            name: code for name, proc in self._procs.items() if (code := proc.poll()) is not None
        }

    def health(self) -> str | None:
        dead = self.dead_processes()
        if not dead:
            return None
        return "; ".join(
            f"Redpanda {name} (pid {self._procs[name].pid}) exited with code {code}, log "
            f"{self._node(name).log_path}"
            for name, code in dead.items()
        )

    def state(self) -> dict[str, Any]:
        """JSON record for ``greenflow down`` after a crash: processes as ``[pid, create_time]``
        (pid-reuse safe, see :mod:`greenflow.api.processes`), data directories, bootstrap."""
        from greenflow.api.processes import identify

        return {
            "local": True,
            "processes": {
                name: entry for name, pid in self.processes().items() for entry in identify([pid])
            },
            "data_dirs": [str(n.data_dir) for n in self.nodes],
            "bootstrap_servers": self.bootstrap_servers,
            "log_dir": str(self.log_dir),
        }

    # -- internals -------------------------------------------------------------------------

    def _node(self, name: str) -> RedpandaNode:
        return next(n for n in self.nodes if n.name == name)

    def _check_alive(self, what: str, last: Mapping[str, str]) -> None:
        dead = self.dead_processes()
        if not dead:
            return
        name, code = next(iter(dead.items()))
        node = self._node(name)
        seen = "; ".join(f"{k}: {v}" for k, v in last.items())
        msg = (
            f"Redpanda {name} exited with code {code} while waiting for {what}; last seen: "
            f"{seen}\n{tail_block(node.log_path)}"
        )
        raise ServiceError(msg)

    def _timeout(self, timeout_s: float, node: RedpandaNode, what: str, seen: str) -> NoReturn:
        msg = (
            f"timed out after {timeout_s:g}s waiting for {what}; last seen: {seen}; logs in "
            f"{self.log_dir}\n{tail_block(node.log_path)}"
        )
        raise ReadinessTimeout(msg)

    def _spawn(self, node: RedpandaNode) -> None:
        cmd = command(self.spec, node)
        with node.log_path.open("ab") as out:
            self._procs[node.name] = _popen(cmd, out, cwd=node.dir)
        log.info("redpanda.process.started name=%s pid=%d", node.name, self._procs[node.name].pid)


def admin_ready(host: str, port: int, timeout_s: float = 1.0) -> tuple[bool, str]:
    """(ready, what was seen) from one broker's ``/v1/status/ready``."""
    address = f"[{host}]" if ":" in host else host
    url = f"http://{address}:{port}{READY_PATH}"
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:
            body = resp.read(4096).decode(errors="replace").strip()
            return resp.status == 200, f"HTTP {resp.status} {body}"
    except urllib.error.HTTPError as exc:
        body = exc.read(4096).decode(errors="replace").strip()
        exc.close()
        return False, f"HTTP {exc.code} {body}"
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return False, f"{url}: {reason}"


def binary_version(binary: str) -> str:
    """What ``redpanda --version`` prints (first line), or why it could not be read."""
    try:
        proc = subprocess.run(
            [binary, "--version"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unknown ({exc})"
    lines = (proc.stdout or proc.stderr).strip().splitlines()
    if proc.returncode != 0 or not lines:
        return f"unknown (`{binary} --version` exited with {proc.returncode})"
    return lines[0].strip()


def cleanup_recorded(state: Mapping[str, Any], timeout_s: float = 20.0) -> list[int]:
    """Undo a cluster from its :meth:`LocalRedpandaCluster.state`: stop the processes that are
    still the recorded ones (with their children), delete the data."""
    from greenflow.api.processes import kill_recorded

    killed = kill_recorded(list(dict(state.get("processes") or {}).values()), timeout_s)
    for d in state.get("data_dirs") or []:
        shutil.rmtree(d, ignore_errors=True)
    return killed


def recorded_alive(state: Mapping[str, Any]) -> list[str]:
    """Names of the recorded processes that are still the same processes."""
    import psutil

    alive = []
    for name, (pid, created) in dict(state.get("processes") or {}).items():
        try:
            proc = psutil.Process(int(pid))
            if (
                abs(proc.create_time() - float(created)) <= 0.01
                and proc.status() != psutil.STATUS_ZOMBIE
            ):
                alive.append(name)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return alive


def _popen(cmd: Sequence[str], out: IO[bytes], *, cwd: Path) -> subprocess.Popen[bytes]:
    """Start ``cmd`` in its own session (stop() signals the whole group; the runner's
    terminal signals do not reach the broker directly), output appended to ``out``."""
    try:
        return spawn_in_own_session(cmd, out, cwd=cwd)
    except OSError as exc:
        msg = f"could not start Redpanda: {cmd[0]}: {exc}"
        raise ServiceError(msg) from exc


__all__ = [
    "LISTENER",
    "MIN_SHARD_MEMORY_MIB",
    "READY_PATH",
    "LocalRedpandaCluster",
    "LocalRedpandaSpec",
    "RedpandaNode",
    "admin_ready",
    "binary_version",
    "cleanup_recorded",
    "cluster_properties",
    "command",
    "node_config",
    "plan_nodes",
    "recorded_alive",
    "to_yaml",
]
