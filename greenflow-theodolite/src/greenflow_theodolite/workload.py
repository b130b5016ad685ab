"""The ``theodolite`` workload on this host: a schema registry, the use case's application
instances (JVMs on Kafka Streams) and Theodolite-compatible load generators, next to a
Kafka-API service; the consumer lag read every ``lag_interval``; per run the input and
output records over MEASURE, the lag-trend slope and its SLO verdict (docs/theodolite.md).

The application is the system under test as much as the broker: its processes are the
group ``service:theodolite-<uc>`` (attributed as a service), the generators and the
registry the load generator's.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import structlog

from greenflow.api import Phase, ProcessGroups, RunContext, Workload, WorkloadResult
from greenflow.api.processes import kill_groups, signal_group, spawn_in_own_session, tail, wait_all
from greenflow.errors import WorkloadError
from greenflow_kafka import (
    AdminSession,
    KafkaAdminError,
    KafkaDistribution,
    KafkaTarget,
    create_topic,
    delete_topic,
    partition_end_offsets,
    resolve_distribution,
)
from greenflow_theodolite.apps import (
    GENERATOR_MAIN,
    UC_MAIN,
    AppsBuild,
    app_command,
    resolve_apps,
)
from greenflow_theodolite.config import TheodoliteConfig
from greenflow_theodolite.slo import LagSample, lag_trend_slope

log = structlog.get_logger("greenflow.theodolite")

INPUT, OUTPUT = "input", "output"
#: UC4's topics besides input and output.
UC4_TOPICS = ("configuration", "aggregation-feedback")
#: Deadline for the registry and each application to start.
START_TIMEOUT_S = 120.0
#: Deadline for the processes to stop after SIGTERM (then SIGKILL).
STOP_TIMEOUT_S = 20.0
#: The line each application prints once its streams run.
APP_STARTED = "greenflow-theodolite-app-started"
REGISTRY_READY = "greenflow-schema-registry-ready"
#: Metric names in the run's result (units in the names).
LAG_TREND = "lag_trend_records_per_s"
CONSUMER_LAG_TREND = "consumer_lag_trend_messages_per_s"


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
        self._distribution: KafkaDistribution | None = None

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
            raise WorkloadError(
                "theodolite on Kubernetes is not built yet (docs/theodolite.md, Status); "
                'run it with [platform] type = "local"'
            )
        self._bootstrap = target.endpoints()["bootstrap"]
        self._distribution = resolve_distribution(target.tools_version)
        # Kafka Streams needs the kafka-clients of its own version: built against the tools'.
        self._build = resolve_apps(kafka_version=self._distribution.version)
        self._logs = ctx.work_dir
        self._start_registry(ctx)
        for topic in self._topics():
            delete_topic(self._bootstrap, topic)
            create_topic(self._bootstrap, topic, partitions=self._partitions(topic))

    def _topics(self) -> list[str]:
        topics = [INPUT, OUTPUT]
        if self.config.use_case == "uc4":
            topics += list(UC4_TOPICS)
        return topics

    def _partitions(self, topic: str) -> int:
        # UC4's registry is one record every consumer must see from the start.
        return 1 if topic == "configuration" else self.config.partitions

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

    def _common_env(self) -> dict[str, str]:
        return {
            "KAFKA_BOOTSTRAP_SERVERS": self._bootstrap,
            "SCHEMA_REGISTRY_URL": self._registry_url,
        }

    def _app_env(self, index: int) -> dict[str, str]:
        cfg = self.config
        env = {
            **self._common_env(),
            "NUM_STREAM_THREADS": str(cfg.threads),
            # The lag is read from the group's commits: commit more often than it is read.
            "COMMIT_INTERVAL_MS": str(round(float(cfg.commit_interval) * 1000)),
            "APPLICATION_ID": cfg.application_id,
            "STATE_DIR": str(self._logs / f"state-{index}"),
            "DOWNSAMPLE_INTERVAL_MS": str(round(float(cfg.downsample_interval) * 1000)),
            "AGGREGATION_DURATION_MS": str(round(float(cfg.aggregation_duration) * 1000)),
            "AGGREGATION_ADVANCE_MS": str(round(float(cfg.aggregation_advance) * 1000)),
            "EMIT_PERIOD_MS": str(round(float(cfg.emit_period) * 1000)),
            "GRACE_PERIOD_MS": str(round(float(cfg.grace_period) * 1000)),
        }
        return env

    def _generator_env(self, index: int) -> dict[str, str]:
        cfg = self.config
        return {
            **self._common_env(),
            "KAFKA_INPUT_TOPIC": INPUT,
            "NUM_SENSORS": str(cfg.sensor_count),
            "PERIOD_MS": str(round(float(cfg.period) * 1000)),
            "VALUE": f"{cfg.value:g}",
            "THREADS": str(cfg.generator_threads),
            "INSTANCES": str(cfg.generator_count),
            "INSTANCE_INDEX": str(index),
            "NUM_NESTED_GROUPS": str(cfg.nested_groups),
            "SEND_REGISTRY": "true" if cfg.use_case == "uc4" and index == 0 else "false",
            "SLEEP_PERIOD_MS": "2000",
        }

    def execute(self, ctx: RunContext) -> WorkloadResult:
        cfg = self.config
        app_main = UC_MAIN[cfg.use_case]
        assert self._build is not None and self._distribution is not None  # prepare ran
        logs = []
        for i in range(cfg.instances):
            name = f"app-{i}"
            cmd = app_command(self._distribution, self._build, app_main, heap=cfg.heap)
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
        seconds = max(end - start, 1e-9)
        records = in_after - in_before
        slope = lag_trend_slope(lags, warmup_s=0.0)
        return WorkloadResult(
            units=records,
            unit="record",
            achieved_rate=records / seconds,
            metrics={
                "asked_rate_per_s": float(cfg.load),
                "input_records_per_s": records / seconds,
                "output_records_per_s": (out_after - out_before) / seconds,
                "lag_records": lags[-1].lag,
                LAG_TREND: slope,
                # The max-throughput criterion's consumer part reads this name.
                CONSUMER_LAG_TREND: slope,
                "slo_lag_trend_met": 1.0 if slope < cfg.slo_threshold else 0.0,
                "slo_lag_trend_threshold_records_per_s": cfg.slo_threshold,
                "instances": float(cfg.instances),
            },
        )

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
        committed = committed_offsets(self._bootstrap, self.config.application_id, INPUT)
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
        self._stop()
        if not self._bootstrap:
            return
        try:
            for topic in [*self._topics(), *self._internal_topics()]:
                delete_topic(self._bootstrap, topic)
        except KafkaAdminError as exc:
            log.warning("theodolite.topics_left", error=str(exc))

    def _internal_topics(self) -> list[str]:
        with AdminSession(self._bootstrap) as session:
            names = session.client.list_topics(timeout=10).topics
        return sorted(t for t in names if t.startswith(self.config.application_id + "-"))

    def processes(self) -> ProcessGroups:
        app = f"service:theodolite-{self.config.use_case}"
        groups: dict[str, list[int]] = {app: [], "generator": [], "registry": []}
        for name, proc in list(self._procs.items()):
            key = app if name.startswith("app") else name.split("-")[0]
            groups.setdefault(key, []).append(proc.pid)
        return groups


def committed_offsets(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    """``group``'s committed offset per partition of ``topic`` (none yet: left out)."""
    from confluent_kafka import ConsumerGroupTopicPartitions, KafkaException

    with AdminSession(bootstrap) as session:
        try:
            futures = session.client.list_consumer_group_offsets(
                [ConsumerGroupTopicPartitions(group)], request_timeout=10
            )
            answer = futures[group].result(timeout=10)
        except (KafkaException, TimeoutError) as exc:
            raise KafkaAdminError(f"reading group {group!r}'s commits failed: {exc}") from exc
    return {
        tp.partition: tp.offset
        for tp in answer.topic_partitions or ()
        if tp.topic == topic and tp.offset >= 0 and tp.error is None
    }
