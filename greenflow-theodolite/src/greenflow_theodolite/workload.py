"""The ``theodolite`` workload on this host: a schema registry, the use case's application
instances (JVMs on Kafka Streams) and Theodolite-compatible load generators, next to a
Kafka-API service; the consumer lag read every ``lag_interval``; per run the input and
output records over MEASURE, the lag-trend slope and its SLO verdict (docs/theodolite.md).

The application is the system under test as much as the broker: its processes are the
group ``service:theodolite-<uc>`` (attributed as a service), the generators and the
registry the load generator's.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import structlog

from greenflow.api import Phase, ProcessGroups, RunContext, Workload, WorkloadResult
from greenflow.api.processes import kill_groups, signal_group, spawn_in_own_session, tail, wait_all
from greenflow.errors import WorkloadError
from greenflow_kafka import (
    KafkaDistribution,
    KafkaTarget,
    committed_offsets,
    create_topic,
    delete_topic,
    partition_end_offsets,
    resolve_distribution,
    run_logged,
)
from greenflow_theodolite.apps import (
    FLINK_MAIN,
    GENERATOR_MAIN,
    TOPICS_MAIN,
    UC_MAIN,
    AppsBuild,
    app_command,
    resolve_apps,
)
from greenflow_theodolite.config import TheodoliteConfig
from greenflow_theodolite.environment import (
    INPUT,
    OUTPUT,
    app_env,
    generator_env,
    run_result,
    topics,
)
from greenflow_theodolite.slo import LagSample

if TYPE_CHECKING:
    from greenflow_theodolite.kube import KubeTheodoliteRun

log = structlog.get_logger("greenflow.theodolite")

#: Deadline for the registry and each application to start.
START_TIMEOUT_S = 120.0
#: How long reading the group's commits retries while its coordinator moves or loads.
COMMITS_TIMEOUT_S = 20.0
#: Deadline for the processes to stop after SIGTERM (then SIGKILL).
STOP_TIMEOUT_S = 20.0
#: The line each application prints once its streams run.
APP_STARTED = "greenflow-theodolite-app-started"
REGISTRY_READY = "greenflow-schema-registry-ready"


class TheodoliteWorkload(Workload):
    """One Theodolite use case under a load, with its lag-trend SLO (module docstring)."""

    Config: ClassVar[type] = TheodoliteConfig
    config: TheodoliteConfig

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._bootstrap = ""
        self._registry_url = ""
        self._logs = Path.cwd()
        self._build: AppsBuild | None = None
        self._app_build: AppsBuild | None = None
        self._distribution: KafkaDistribution | None = None
        #: On Kubernetes, the run's pods and Jobs (kube.py); None locally.
        self._kube: KubeTheodoliteRun | None = None

    # -- plan checks ---------------------------------------------------------------------

    def validate(self, services: Mapping[str, Any]) -> str | None:
        target = self.config.target
        if target not in services:
            return (
                f"target {target!r} is not a service of the plan; add [[services]] "
                f'type = "kafka" (or name the Kafka-API service with target)'
            )
        return None

    def targets(self, services: Collection[str]) -> Collection[str]:
        return [self.config.target]

    # -- one run ---------------------------------------------------------------------------

    def prepare(self, ctx: RunContext) -> None:
        """The apps' build (cached), the registry, and fresh topics."""
        cfg = self.config
        target = ctx.services.get(cfg.target)
        if not isinstance(target, KafkaTarget):
            raise WorkloadError(f"target {cfg.target!r} is no Kafka-API service")
        if target.kube_session is not None:
            from greenflow_theodolite.kube import KubeTheodoliteRun

            self._kube = KubeTheodoliteRun(cfg, target, target.kube_session)
            self._kube.prepare(ctx)
            return
        self._bootstrap = target.endpoints()["bootstrap"]
        self._distribution = resolve_distribution(target.tools_version)
        # Kafka Streams needs the kafka-clients of its own version: built against the tools'.
        self._build = resolve_apps(kafka_version=self._distribution.version)
        if cfg.engine == "flink":  # the job; the generators and tools stay on kstreams' build
            self._app_build = resolve_apps(engine="flink")
        else:
            self._app_build = self._build
        self._logs = ctx.work_dir
        self._start_registry(ctx)
        for topic, partitions in topics(self.config).items():
            delete_topic(self._bootstrap, topic)
            create_topic(self._bootstrap, topic, partitions=partitions)

    def _spawn(self, name: str, cmd: Sequence[str], env: Mapping[str, str]) -> Path:
        path = self._logs / f"{name}.log"
        with path.open("ab") as out:
            self._procs[name] = spawn_in_own_session(cmd, out, env=env)
        return path

    def _wait_line(self, name: str, path: Path, marker: str, ctx: RunContext) -> str:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            text = path.read_text(errors="replace") if path.exists() else ""
            for line in text.splitlines():
                if line.startswith(marker):
                    return line
            if self._procs[name].poll() is not None:
                break
            if ctx.cancel.wait(0.2):
                raise KeyboardInterrupt
        lines = "\n".join(f"  {line}" for line in tail(path))
        raise WorkloadError(f"{name} did not start within {START_TIMEOUT_S:.0f} s:\n{lines}")

    def _start_registry(self, ctx: RunContext) -> None:
        cmd = [sys.executable, "-m", "greenflow_theodolite.registry", "--port", "0"]
        path = self._spawn("registry", cmd, {})
        line = self._wait_line("registry", path, REGISTRY_READY, ctx)
        self._registry_url = line.split("url=", 1)[1].strip()

    def _app_env(self, index: int) -> dict[str, str]:
        env = app_env(self.config, self._bootstrap, self._registry_url)
        return {**env, "STATE_DIR": str(self._logs / f"state-{index}")}

    def _generator_env(self, index: int) -> dict[str, str]:
        env = generator_env(self.config, self._bootstrap, self._registry_url)
        return {**env, "INSTANCE_INDEX": str(index)}

    def execute(self, ctx: RunContext) -> WorkloadResult:
        if self._kube is not None:
            return self._kube.execute(ctx)
        cfg = self.config
        assert self._app_build is not None and self._distribution is not None  # prepare ran
        assert self._build is not None
        # Flink: one JVM whose MiniCluster runs instances × threads parallel tasks (separate
        # MiniClusters would each read every partition: Flink's source assigns them itself).
        app_main, processes = (
            (FLINK_MAIN[cfg.use_case], 1)
            if cfg.engine == "flink"
            else (UC_MAIN[cfg.use_case], cfg.instances)
        )
        logs = []
        for i in range(processes):
            name = f"app-{i}"
            cmd = app_command(self._distribution, self._app_build, app_main, heap=cfg.heap)
            logs.append((name, self._spawn(name, cmd, self._app_env(i))))
        for name, path in logs:
            self._wait_line(name, path, APP_STARTED, ctx)
        for i in range(cfg.generator_count):
            cmd = app_command(self._distribution, self._build, GENERATOR_MAIN, heap=cfg.heap)
            self._spawn(f"generator-{i}", cmd, self._generator_env(i))
        ctx.phases.enter(Phase.WARMUP)
        self._watch(ctx, float(cfg.warmup))
        start = ctx.phases.enter(Phase.MEASURE)
        in_before = sum(partition_end_offsets(self._bootstrap, INPUT).values())
        out_before = sum(partition_end_offsets(self._bootstrap, OUTPUT).values())
        lags = [LagSample(time.time(), self._lag())]
        lags += self._watch(ctx, float(cfg.duration), sample=True)
        in_after = sum(partition_end_offsets(self._bootstrap, INPUT).values())
        out_after = sum(partition_end_offsets(self._bootstrap, OUTPUT).values())
        lags.append(LagSample(time.time(), self._lag()))
        end = ctx.phases.enter(Phase.COOLDOWN)
        self._stop(lambda n: n.startswith("generator"))
        return run_result(cfg, in_after - in_before, out_after - out_before, end - start, lags)

    def _watch(self, ctx: RunContext, seconds: float, *, sample: bool = False) -> list[LagSample]:
        """Wait ``seconds``, failing at once if a process dies; with ``sample``, the lag
        every ``lag_interval``."""
        out: list[LagSample] = []
        end = time.monotonic() + seconds
        step = float(self.config.lag_interval)
        while (left := end - time.monotonic()) > 0:
            self._check_alive()
            ctx.sleep(min(step, left))
            if sample and end - time.monotonic() > 0.5:
                out.append(LagSample(time.time(), self._lag()))
        self._check_alive()
        return out

    def _check_alive(self) -> None:
        for name, proc in self._procs.items():
            if proc.poll() is not None:
                lines = "\n".join(f"  {line}" for line in tail(self._logs / f"{name}.log"))
                raise WorkloadError(f"{name} exited ({proc.returncode}) during the run:\n{lines}")

    def _lag(self) -> float:
        """The application's consumer lag on the input topic: end offsets less its
        commits, summed over partitions (a partition never committed counts whole)."""
        ends = partition_end_offsets(self._bootstrap, INPUT)
        committed = committed_offsets(
            self._bootstrap, self.config.application_id, INPUT, timeout_s=COMMITS_TIMEOUT_S
        )
        return float(sum(max(0, end - committed.get(p, 0)) for p, end in ends.items()))

    def _stop(self, which: Any = lambda _n: True) -> None:
        chosen = {n: p for n, p in self._procs.items() if which(n)}
        for proc in chosen.values():
            signal_group(proc, signal.SIGTERM)
        wait_all(chosen.values(), time.monotonic() + STOP_TIMEOUT_S)
        kill_groups(chosen)
        for name in chosen:
            self._procs.pop(name, None)

    def clean(self, ctx: RunContext) -> None:
        """Stop every process, delete the topics and the application's internal ones."""
        if self._kube is not None:
            self._kube.clean(ctx)
            self._kube = None
            return
        self._stop()
        if not self._bootstrap or self._build is None or self._distribution is None:
            return
        # The topics tool (kube.py runs it as a Job): it also forgets the consumer group,
        # which Kafka Streams does not leave on close: the next run's instances would wait a
        # session timeout for the dead members' partitions.
        cfg = self.config
        cmd = app_command(self._distribution, self._build, TOPICS_MAIN, heap="128m")
        cmd += ["clean", self._bootstrap, cfg.application_id, cfg.application_id + "-"]
        output, code = run_logged(
            [*cmd, *topics(cfg)],
            self._logs / "topics-clean.log",
            dict(os.environ),
            cwd=self._logs,
            timeout_s=STOP_TIMEOUT_S * 6,
        )
        if code != 0:
            log.warning("theodolite.topics_left", exit=code, output=output[-2000:])

    def processes(self) -> ProcessGroups:
        app = f"service:theodolite-{self.config.use_case}"
        groups: dict[str, list[int]] = {app: [], "generator": [], "registry": []}
        for name, proc in list(self._procs.items()):
            key = app if name.startswith("app") else name.split("-")[0]
            groups.setdefault(key, []).append(proc.pid)
        return groups
