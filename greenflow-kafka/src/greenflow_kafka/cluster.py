"""A local Kafka cluster in KRaft mode: JVM processes on this host, on loopback ports.

Topology, chosen for a small machine (2 cores is the reference):

* ``brokers=1``: one *combined* process (``process.roles=broker,controller``) named
  ``broker-0``. This is what Kafka's own quickstart runs and the cheapest thing that works.
* ``brokers=N>1``: ``controllers`` dedicated controller processes (default **1**, named
  ``controller-0``) plus N broker processes ``broker-0..N-1``. One controller instead of the
  usual three because each controller is a JVM of its own (heap plus Raft heartbeats on
  every core), and a local cluster exists to be measured, not to survive a controller
  failure. Brokers stay separate from the controller so that per-process energy attribution
  sees broker work and controller work apart. Pass ``controllers=3`` for a real quorum.

The quorum is *static* (``controller.quorum.voters``): every node is formatted the same way
with ``kafka.tools.StorageTool format -t <cluster-id> -c <props>``, without the
``--standalone`` / ``--initial-controllers`` dance a dynamic quorum needs, and a cluster
that is created, measured and thrown away never reconfigures its quorum.

With a :class:`~greenflow_kafka.distribution.JmxExporter` (``metrics=``), every JVM also
runs the Prometheus JMX exporter's java agent, serving ``/metrics`` on its own free port of
``host`` (:attr:`LocalKafkaCluster.metrics_targets`; docs/broker-metrics.md).

Every JVM runs in its own session (process group) with stdout and stderr in
``log_dir/<name>.log``, and carries ``-Dgreenflow.kafka.process=<name>`` so that
:func:`kill_pids` can tell our processes from a reused pid after a crash.
"""

from __future__ import annotations

import base64
import logging
import os
import shutil
import signal
import subprocess
import time
import uuid
import weakref
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import attrs

from greenflow.api.net import free_ports
from greenflow.api.processes import (
    kill_groups,
    signal_group,
    spawn_in_own_session,
    tail_block,
    wait_all,
)
from greenflow_kafka.distribution import JmxExporter, KafkaDistribution, package_data
from greenflow_kafka.errors import KafkaClusterError, KafkaNotReadyError

log = logging.getLogger(__name__)

#: System property that marks every JVM greenflow-kafka starts; its value is the process name.
PROCESS_MARKER = "-Dgreenflow.kafka.process="
KAFKA_MAIN = "kafka.Kafka"
STORAGE_TOOL_MAIN = "kafka.tools.StorageTool"

# The G1 settings kafka-run-class.sh uses, so a local broker behaves like a packaged one.
BROKER_JVM_OPTIONS: tuple[str, ...] = (
    "-server",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35",
    "-XX:+ExplicitGCInvokesConcurrent",
)

# Keys the cluster derives from its topology; an override of one would break it silently.
RESERVED_KEYS = frozenset(
    {
        "process.roles",
        "node.id",
        "controller.quorum.voters",
        "controller.quorum.bootstrap.servers",
        "listeners",
        "advertised.listeners",
        "controller.listener.names",
        "inter.broker.listener.name",
        "listener.security.protocol.map",
        "log.dirs",
        "log.dir",
        "metadata.log.dir",
    }
)


@attrs.frozen
class KafkaNode:
    """One planned JVM of the cluster."""

    name: str
    node_id: int
    roles: tuple[str, ...]
    broker_port: int | None
    controller_port: int | None
    heap: str
    dir: Path
    log_path: Path
    #: Port of the JMX exporter's ``/metrics`` when the cluster runs it.
    metrics_port: int | None = None

    @property
    def data_dir(self) -> Path:
        return self.dir / "data"

    @property
    def config_path(self) -> Path:
        return self.dir / "server.properties"

    @property
    def is_broker(self) -> bool:
        return "broker" in self.roles


class LocalKafkaCluster:
    """A KRaft cluster of local JVMs: ``start()``, ``wait_ready()``, measure, ``stop()``.

    ``overrides`` are extra ``server.properties`` entries for every node (they win over the
    small-machine defaults, but may not touch the topology keys in :data:`RESERVED_KEYS`).
    """

    def __init__(
        self,
        distribution: KafkaDistribution,
        work_dir: Path,
        log_dir: Path,
        brokers: int = 1,
        heap: str = "512m",
        overrides: Mapping[str, str] | None = None,
        host: str = "127.0.0.1",
        *,
        controllers: int = 1,
        controller_heap: str | None = None,
        jvm_options: Sequence[str] = BROKER_JVM_OPTIONS,
        cluster_id: str | None = None,
        metrics: JmxExporter | None = None,
    ) -> None:
        if brokers < 1:
            msg = f"a Kafka cluster needs at least 1 broker, got brokers={brokers}"
            raise KafkaClusterError(msg)
        if brokers > 1 and controllers < 1:
            msg = f"brokers={brokers} needs at least 1 dedicated controller, got controllers={controllers}"
            raise KafkaClusterError(msg)
        bad = sorted(RESERVED_KEYS & set(overrides or {}))
        if bad:
            msg = (
                f"Kafka overrides {bad} are set by the cluster from its topology and cannot be "
                f"overridden; allowed: any other server.properties key"
            )
            raise KafkaClusterError(msg)
        self.distribution = distribution
        self.work_dir = Path(work_dir)
        self.log_dir = Path(log_dir)
        self.brokers = brokers
        self.controllers = controllers if brokers > 1 else 0
        self.heap = heap
        self.controller_heap = controller_heap or heap
        self.overrides = dict(overrides or {})
        self.host = host
        self.jvm_options = tuple(jvm_options)
        self.cluster_id = cluster_id or random_cluster_id()
        self.metrics = metrics
        self.nodes: tuple[KafkaNode, ...] = ()
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._started = False
        self._stopped = False
        # Last resort if the owner forgets stop() or the interpreter exits: no JVM may
        # outlive this object. The finalizer holds the dict, not self.
        self._finalizer = weakref.finalize(self, kill_groups, self._procs)

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Pick ports, write configs, format storage and spawn every JVM; return at once.

        Raises ``KafkaClusterError`` if formatting fails (with the tool's output).
        """
        if self._started:
            msg = "this LocalKafkaCluster was already started; make a new one"
            raise KafkaClusterError(msg)
        self._started = True
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.nodes = self._plan()
        for node in self.nodes:
            # A leftover from a crashed run would make StorageTool refuse ("already formatted").
            shutil.rmtree(node.dir, ignore_errors=True)
            node.data_dir.mkdir(parents=True)
            node.config_path.write_text(_render_properties(self._properties(node), node.name))
            node.log_path.unlink(missing_ok=True)
        self._format_all()
        # Controllers first so that brokers find a quorum on their first attempts.
        for node in sorted(self.nodes, key=lambda n: n.is_broker):
            self._spawn(node)
        log.info(
            "kafka.cluster.started brokers=%d controllers=%d bootstrap=%s",
            self.brokers,
            self.controllers,
            self.bootstrap_servers,
        )

    def wait_ready(self, timeout_s: float = 120.0) -> None:
        """Poll cluster metadata until all brokers are registered; never a fixed sleep.

        Raises ``KafkaClusterError`` at once if a process exits, and ``KafkaNotReadyError``
        at the deadline; both say what was awaited, what was last seen and end with the
        last lines of the relevant log.
        """
        self._require_started()
        if self._stopped:
            msg = "the Kafka cluster was stopped; it cannot become ready again"
            raise KafkaClusterError(msg)
        from greenflow_kafka.admin import AdminSession

        expected = sorted(n.node_id for n in self.nodes if n.is_broker)
        what = f"{len(expected)} broker(s) {expected} in metadata from {self.bootstrap_servers}"
        errors: list[str] = []
        conf: dict[str, Any] = {
            # Refused connections are expected until the brokers listen; they reach us
            # through error_cb instead of librdkafka's stderr logger.
            "log_level": 0,
            "error_cb": lambda err: errors.append(str(err)),
            "socket.connection.setup.timeout.ms": 2000,
            "reconnect.backoff.max.ms": 500,
        }
        with AdminSession(self.bootstrap_servers, conf) as session:
            self._poll_ready(session, expected, what, errors, timeout_s)

    def _poll_ready(
        self, session: Any, expected: list[int], what: str, errors: list[str], timeout_s: float
    ) -> None:
        from confluent_kafka import KafkaException

        deadline = time.monotonic() + timeout_s
        last = "no answer yet"
        seen: list[int] = []
        while True:
            dead = self.dead_processes()
            if dead:
                name, code = next(iter(dead.items()))
                node = self._node(name)
                msg = (
                    f"Kafka process {name} exited with code {code} while waiting for {what}; "
                    f"last seen: {last}\n{tail_block(node.log_path)}"
                )
                raise KafkaClusterError(msg)
            remaining = deadline - time.monotonic()
            try:
                metadata = session.client.list_topics(timeout=max(0.5, min(2.0, remaining)))
                seen = sorted(metadata.brokers)
                last = f"brokers {seen}"
                if set(expected) <= set(seen):
                    log.info(
                        "kafka.cluster.ready brokers=%s bootstrap=%s", seen, self.bootstrap_servers
                    )
                    return
            except KafkaException as exc:
                last = f"{exc.args[0] if exc.args else exc}"
            session.client.poll(0)  # serve error_cb
            if errors:
                last = f"{last}; client error: {errors[-1]}"
                errors.clear()
            if time.monotonic() >= deadline:
                missing = [n for n in self.nodes if n.is_broker and n.node_id not in seen]
                node = missing[0] if missing else self.nodes[0]
                msg = (
                    f"timed out after {timeout_s:g}s waiting for {what}; last seen: {last}; "
                    f"logs in {self.log_dir}\n{tail_block(node.log_path)}"
                )
                raise KafkaNotReadyError(msg)
            time.sleep(0.2)  # poll interval, not a wait for readiness

    def stop(self, timeout_s: float = 20.0, *, keep_data: bool = False) -> dict[str, int | None]:
        """SIGTERM every process group, SIGKILL what is left at the deadline, delete data.

        Returns each process's exit code: 143 is the JVM's exit after a handled SIGTERM,
        -9 means it had to be killed. Brokers stop before controllers: a broker's controlled
        shutdown goes through the controller, and with the controller gone it would hang
        until SIGKILL. Idempotent; no JVM outlives it.
        """
        if self._stopped:
            return self.exit_codes()
        self._stopped = True
        deadline = time.monotonic() + timeout_s
        brokers = [n.name for n in self.nodes if n.is_broker]
        controllers = [n.name for n in self.nodes if not n.is_broker]
        # Leave controllers a slice of the time so a slow broker cannot eat all of it.
        broker_deadline = deadline - (min(5.0, timeout_s / 4) if controllers else 0.0)
        for group, until in ((brokers, broker_deadline), (controllers, deadline)):
            procs = [self._procs[name] for name in group if name in self._procs]
            for proc in procs:
                signal_group(proc, signal.SIGTERM)
            wait_all(procs, until)
            for proc in procs:
                if proc.poll() is None:
                    log.warning("kafka.cluster.kill pid=%d reason=sigterm-timeout", proc.pid)
                    signal_group(proc, signal.SIGKILL)
            wait_all(procs, time.monotonic() + 10.0)
        if not keep_data:
            for node in self.nodes:
                shutil.rmtree(node.data_dir, ignore_errors=True)
        codes = self.exit_codes()
        log.info("kafka.cluster.stopped exit_codes=%s", codes)
        return codes

    def detach(self) -> None:
        """Let the JVMs outlive this object and this Python process (``greenflow up``).

        Only the at-exit safety net is dropped; :meth:`stop` still works, and so does
        :func:`cleanup_recorded` on :meth:`state` from another process.
        """
        self._finalizer.detach()

    def __enter__(self) -> LocalKafkaCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- what is running -------------------------------------------------------------------

    @property
    def bootstrap_servers(self) -> str:
        self._require_started()
        return ",".join(f"{self.host}:{n.broker_port}" for n in self.nodes if n.is_broker)

    @property
    def metrics_targets(self) -> dict[str, str]:
        """Process name → ``host:port`` of its ``/metrics`` (empty without ``metrics``)."""
        self._require_started()
        host = f"[{self.host}]" if ":" in self.host else self.host
        return {n.name: f"{host}:{n.metrics_port}" for n in self.nodes if n.metrics_port}

    def prometheus_targets(self, labels: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
        """The JMX exporters as a Prometheus ``file_sd_configs`` file's content: one group per
        JVM, labelled ``process`` (``broker-0``, ``controller-0``) plus ``labels``."""
        return [
            {"targets": [target], "labels": {**dict(labels or {}), "process": name}}
            for name, target in self.metrics_targets.items()
        ]

    def processes(self) -> dict[str, int]:
        """Process name (``broker-0``, ``controller-0``) → pid, for energy attribution."""
        return {name: proc.pid for name, proc in self._procs.items()}

    def pids(self) -> list[int]:
        return [proc.pid for proc in self._procs.values()]

    def exit_codes(self) -> dict[str, int | None]:
        """Exit code of every process (None while it runs)."""
        return {name: proc.poll() for name, proc in self._procs.items()}

    def dead_processes(self) -> dict[str, int | None]:
        """Processes that exited (name → exit code, negative for a signal) while they should run."""
        if self._stopped:
            return {}
        return {
            name: code for name, proc in self._procs.items() if (code := proc.poll()) is not None
        }

    def is_alive(self) -> bool:
        return self._started and not self._stopped and not self.dead_processes()

    def health(self) -> str | None:
        """Why the cluster is unhealthy (which process died, where its log is), or None."""
        dead = self.dead_processes()
        if not dead:
            return None
        return "; ".join(
            f"{name} (pid {self._procs[name].pid}) exited with code {code}, log {self._node(name).log_path}"
            for name, code in dead.items()
        )

    def state(self) -> dict[str, Any]:
        """JSON-serialisable record for crash recovery; see :func:`cleanup_recorded`."""
        return {
            "cluster_id": self.cluster_id,
            "pids": self.processes(),
            "data_dirs": [str(n.data_dir) for n in self.nodes],
            "bootstrap_servers": self.bootstrap_servers if self.nodes else "",
            "log_dir": str(self.log_dir),
            "metrics_targets": self.metrics_targets if self.nodes else {},
        }

    def describe(self) -> dict[str, Any]:
        """Facts for the provenance record."""
        return {
            **self.distribution.describe(),
            "brokers": self.brokers,
            "controllers": self.controllers,
            "mode": "combined" if self.controllers == 0 else "dedicated-controllers",
            "heap": self.heap,
            "controller_heap": self.controller_heap,
            "overrides": dict(self.overrides),
            "metrics": (
                {**self.metrics.describe(), "targets": self.metrics_targets}
                if self.metrics is not None and self.nodes
                else None
            ),
        }

    # -- internals -------------------------------------------------------------------------

    def _require_started(self) -> None:
        if not self._started:
            msg = "the Kafka cluster was not started; call start() first"
            raise KafkaClusterError(msg)

    def _node(self, name: str) -> KafkaNode:
        return next(n for n in self.nodes if n.name == name)

    def _plan(self) -> tuple[KafkaNode, ...]:
        combined = self.controllers == 0
        jvms = self.brokers + self.controllers
        count = self.brokers * (2 if combined else 1) + self.controllers
        # One more port per JVM for its exporter, all chosen together so none repeats.
        ports = iter(free_ports(self.host, count + (jvms if self.metrics else 0)))
        nodes: list[KafkaNode] = []
        for i in range(self.controllers):
            name = f"controller-{i}"
            nodes.append(
                KafkaNode(
                    name=name,
                    node_id=1000 + i,
                    roles=("controller",),
                    broker_port=None,
                    controller_port=next(ports),
                    heap=self.controller_heap,
                    dir=self.work_dir / name,
                    log_path=self.log_dir / f"{name}.log",
                    metrics_port=next(ports) if self.metrics else None,
                )
            )
        for i in range(self.brokers):
            name = f"broker-{i}"
            nodes.append(
                KafkaNode(
                    name=name,
                    node_id=i,
                    roles=("broker", "controller") if combined else ("broker",),
                    broker_port=next(ports),
                    controller_port=next(ports) if combined else None,
                    heap=self.heap,
                    dir=self.work_dir / name,
                    log_path=self.log_dir / f"{name}.log",
                    metrics_port=next(ports) if self.metrics else None,
                )
            )
        return tuple(nodes)

    def _properties(self, node: KafkaNode) -> dict[str, str]:
        voters = ",".join(
            f"{n.node_id}@{self.host}:{n.controller_port}"
            for n in self.nodes
            if "controller" in n.roles
        )
        listeners = []
        if node.broker_port is not None:
            listeners.append(f"PLAINTEXT://{self.host}:{node.broker_port}")
        if node.controller_port is not None:
            listeners.append(f"CONTROLLER://{self.host}:{node.controller_port}")
        rf = str(min(3, self.brokers))
        min_isr = str(min(2, self.brokers))
        props = {
            "process.roles": ",".join(node.roles),
            "node.id": str(node.node_id),
            "controller.quorum.voters": voters,
            "listeners": ",".join(listeners),
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": str(node.data_dir),
            # Internal topics sized to the cluster: the defaults (3) cannot be met by 1-2
            # brokers, and consumer groups or transactions would then fail.
            "offsets.topic.replication.factor": rf,
            "transaction.state.log.replication.factor": rf,
            "transaction.state.log.min.isr": min_isr,
            "share.coordinator.state.topic.replication.factor": rf,
            "share.coordinator.state.topic.min.isr": min_isr,
            "num.partitions": "1",
            # Consumers in a benchmark join at once; the default 3 s delay is dead time.
            "group.initial.rebalance.delay.ms": "0",
        }
        if node.is_broker:
            props["advertised.listeners"] = f"PLAINTEXT://{self.host}:{node.broker_port}"
            props["inter.broker.listener.name"] = "PLAINTEXT"
        props.update(self.overrides)
        return props

    def _format_all(self) -> None:
        # All nodes format in parallel: each is a JVM start (~1-2 s of CPU), and the cluster
        # start time is part of every experiment.
        running: list[tuple[KafkaNode, subprocess.Popen[bytes], IO[bytes]]] = []
        try:
            for node in self.nodes:
                cmd = self.distribution.java_command(
                    STORAGE_TOOL_MAIN,
                    ["format", "-t", self.cluster_id, "-c", str(node.config_path)],
                    jvm_options=[f"{PROCESS_MARKER}{node.name}-format", "-Xmx256m"],
                    log4j2_config=package_data("log4j2-tools.properties"),
                )
                out: IO[bytes] = node.log_path.open("ab")
                try:
                    proc = _popen(cmd, out, what=f"the storage format of {node.name}")
                except BaseException:
                    out.close()
                    raise
                running.append((node, proc, out))
            deadline = time.monotonic() + 120.0
            for node, proc, _out in running:
                try:
                    code = proc.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    code = None
                if code != 0:
                    why = "did not finish in 120s" if code is None else f"exited with {code}"
                    msg = (
                        f"formatting the storage of Kafka {node.name} ({node.config_path}) {why}\n"
                        f"{tail_block(node.log_path)}"
                    )
                    raise KafkaClusterError(msg)
        finally:
            for _node, proc, out in running:
                if proc.poll() is None:
                    signal_group(proc, signal.SIGKILL)
                    proc.wait()
                out.close()

    def _spawn(self, node: KafkaNode) -> None:
        cmd = self.distribution.java_command(
            KAFKA_MAIN,
            [str(node.config_path)],
            heap=node.heap,
            jvm_options=[
                f"{PROCESS_MARKER}{node.name}",
                f"-Dkafka.logs.dir={self.log_dir}",
                *self.jvm_options,
                *self._agent_options(node),
            ],
            log4j2_config=package_data("log4j2-broker.properties"),
        )
        with node.log_path.open("ab") as out:
            self._procs[node.name] = _popen(cmd, out, what=f"Kafka {node.name}", cwd=node.dir)
        log.info("kafka.process.started name=%s pid=%d", node.name, self._procs[node.name].pid)

    def _agent_options(self, node: KafkaNode) -> list[str]:
        if self.metrics is None or node.metrics_port is None:
            return []
        return [self.metrics.agent_option(node.metrics_port, host=self.host)]


def _popen(
    cmd: Sequence[str], out: IO[bytes], *, what: str, cwd: Path | None = None
) -> subprocess.Popen[bytes]:
    """Start ``cmd`` in its own session (stop() signals the whole group; the runner's
    terminal signals do not reach the JVM directly), output appended to ``out``."""
    try:
        return spawn_in_own_session(cmd, out, cwd=cwd)
    except OSError as exc:
        msg = f"could not start {what}: {cmd[0]}: {exc}; is Java still installed there?"
        raise KafkaClusterError(msg) from exc


def random_cluster_id() -> str:
    """A Kafka cluster id: 16 random bytes in URL-safe base64 without padding, like ``Uuid``.

    Kafka's ``Uuid.randomUuid`` also avoids ids starting with ``-``, which command-line
    parsers would take for an option.
    """
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid


def kill_pids(pids: Iterable[int], timeout_s: float = 10.0) -> list[int]:
    """Stop recorded greenflow-kafka JVMs (``greenflow down`` after a crash); return the pids stopped.

    A pid is only signalled if its command line still carries :data:`PROCESS_MARKER`: after
    a crash the pid may belong to an unrelated process by now. SIGTERM first, SIGKILL at
    the deadline. Pids that are gone or not ours are skipped. Never reaps another parent's
    children, so an owning ``Popen`` still sees the real exit status.
    """
    import psutil

    ours: list[psutil.Process] = []
    for pid in dict.fromkeys(int(p) for p in pids):
        try:
            proc = psutil.Process(pid)
            cmdline = proc.cmdline()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        if not is_greenflow_kafka_cmdline(cmdline):
            log.warning("kafka.kill.skipped pid=%d reason=not-a-greenflow-kafka-process", pid)
            continue
        ours.append(proc)
    for proc in ours:
        _signal_pid(proc, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    alive = _still_running(ours)
    while alive and time.monotonic() < deadline:
        time.sleep(0.1)
        alive = _still_running(alive)
    for proc in alive:
        _signal_pid(proc, signal.SIGKILL)
    deadline = time.monotonic() + 5.0
    while alive and time.monotonic() < deadline:
        time.sleep(0.05)
        alive = _still_running(alive)
    return [p.pid for p in ours]


def cleanup_recorded(state: Mapping[str, Any], timeout_s: float = 10.0) -> list[int]:
    """Undo a cluster from its :meth:`LocalKafkaCluster.state` record: kill its JVMs, delete its data."""
    pids = [int(p) for p in dict(state.get("pids") or {}).values()]
    killed = kill_pids(pids, timeout_s=timeout_s)
    for d in state.get("data_dirs") or []:
        shutil.rmtree(d, ignore_errors=True)
    return killed


def is_greenflow_kafka_cmdline(cmdline: Sequence[str]) -> bool:
    """True for a java command line that greenflow-kafka started."""
    return (
        bool(cmdline)
        and "java" in Path(cmdline[0]).name
        and any(a.startswith(PROCESS_MARKER) for a in cmdline)
    )


def _still_running(procs: Iterable[Any]) -> list[Any]:
    import psutil

    alive = []
    for proc in procs:
        try:
            # A zombie has exited; its parent reaps it, not us.
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                alive.append(proc)
        except psutil.NoSuchProcess:
            continue
    return alive


def _signal_pid(proc: Any, sig: signal.Signals) -> None:
    import psutil

    try:
        # Our JVMs lead their own process group; signal the group so nothing is left behind.
        if os.getpgid(proc.pid) == proc.pid:
            os.killpg(proc.pid, sig)
        else:
            proc.send_signal(sig)
    except (ProcessLookupError, PermissionError, psutil.NoSuchProcess):
        pass


def _render_properties(props: Mapping[str, str], name: str) -> str:
    lines = [f"# Written by greenflow_kafka.cluster for {name}; regenerated on every start."]
    for key, value in props.items():
        # java.util.Properties treats a backslash as an escape.
        lines.append(f"{key}={str(value).replace(chr(92), chr(92) * 2)}")
    return "\n".join(lines) + "\n"


__all__ = [
    "PROCESS_MARKER",
    "KafkaNode",
    "LocalKafkaCluster",
    "cleanup_recorded",
    "is_greenflow_kafka_cmdline",
    "kill_pids",
    "random_cluster_id",
]
