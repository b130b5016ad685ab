"""The ``theodolite`` workload on Kubernetes: Theodolite's own deployment, without its operator.

Per run, in the experiment's namespace, placed by role (``app_role``, ``generator_role``):

* the schema registry (Deployment + Service ``theodolite-schema-registry``, Confluent's image
  by default, as Theodolite's chart deploys it);
* the topics tool (Job ``theodolite-topics``: the Kafka target's tools image running
  GreenFlow's ``TOPICS_MAIN`` from the apps' jar in a ConfigMap, only kafka-clients needed),
  which recreates the use case's topics, then prints the input and output end offsets and
  the application group's lag every second, for the whole run: the brokers' addresses
  resolve inside the cluster only;
* the use case's application (Deployment ``theodolite-ucN-app``, ``instances`` replicas),
  waited for until all its stream threads are members of its consumer group;
* the load generators (an Indexed Job ``theodolite-ucN-load-generator``: each pod knows its
  index, GreenFlow's generator splits the sensors by it; plus the headless Service
  Theodolite's own generators find each other through, ``KUBERNETES_DNS_NAME``).

The images default to Theodolite's published ones (config.py); GreenFlow's builds honour the
same environment, so either runs. Records are counted from the input topic's end offsets at
MEASURE's boundaries (interpolated between the samples a second apart around each), the lag
trend from the samples every ``lag_interval`` inside MEASURE. Energy per pod comes from the
plan's collector (Scaphandre attributes each process to its pod).
"""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs
import structlog

from greenflow.api import Phase, RunContext, WorkloadResult
from greenflow.errors import WorkloadError
from greenflow_kafka import KafkaTarget
from greenflow_theodolite.apps import TOPICS_MAIN, resolve_apps
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
    from greenflow_kubernetes import KubeSession

log = structlog.get_logger("greenflow.theodolite.kube")

APP = "theodolite"
REGISTRY = "theodolite-schema-registry"
REGISTRY_PORT = 8081
TOOLS = "theodolite-tools"
TOPICS_JOB = "theodolite-topics"
CLEAN_JOB = "theodolite-topics-clean"
TOOLS_MOUNT = "/opt/greenflow"
TOOLS_JAR = "greenflow-theodolite-apps.jar"
KAFKA_BIN = "/opt/kafka/bin"
#: The topics tool reads offsets this often (ms); the lag samples are every lag_interval.
OFFSETS_EVERY_MS = 1000
START_TIMEOUT_S = 300.0
CHECK_EVERY_S = 2.0
#: Container states that will not get better by waiting.
_STUCK = {
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "CrashLoopBackOff",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
}
_OFFSETS = re.compile(
    r"^greenflow-offsets t_ms=(\d+) end\.input=(\d+) end\.output=(\d+) lag=(\d+) members=(\d+)"
)
_COMPLETION_INDEX = "batch.kubernetes.io/job-completion-index"


@attrs.frozen
class OffsetSample:
    """One line of the topics tool: unix time, input and output end offsets, the lag and
    the application group's members (one per stream thread)."""

    t: float
    input_end: int
    output_end: int
    lag: int
    members: int = 0


def parse_offsets(text: str) -> list[OffsetSample]:
    """The topics tool's samples in its log, in order."""
    out = []
    for line in text.splitlines():
        m = _OFFSETS.match(line)
        if m:
            t_ms, i, o, lag, members = (int(g) for g in m.groups())
            out.append(OffsetSample(t_ms / 1000.0, i, o, lag, members))
    return out


def count_at(samples: Sequence[OffsetSample], t: float, field: str) -> float:
    """``field``'s value at time ``t``, interpolated linearly between the samples around it;
    raises ``WorkloadError`` when no sample lies on each side."""
    before = [s for s in samples if s.t <= t]
    after = [s for s in samples if s.t >= t]
    if not before or not after:
        span = f"{samples[0].t:.1f}..{samples[-1].t:.1f}" if samples else "none"
        msg = f"the topics tool has no offsets around t={t:.1f} (samples: {span})"
        raise WorkloadError(msg)
    a, b = before[-1], after[0]
    va, vb = float(getattr(a, field)), float(getattr(b, field))
    if b.t == a.t:
        return va
    return va + (vb - va) * (t - a.t) / (b.t - a.t)


def lag_series(
    samples: Sequence[OffsetSample], start: float, end: float, every_s: float
) -> list[LagSample]:
    """The lag inside [start, end], one sample per ``every_s`` (Theodolite's query step)."""
    out: list[LagSample] = []
    for s in samples:
        if start <= s.t <= end and (not out or s.t - out[-1].timestamp_s >= every_s - 0.5):
            out.append(LagSample(s.t, float(s.lag)))
    return out


# -- manifests ---------------------------------------------------------------------------------


def _labels(component: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": APP, "app.kubernetes.io/component": component}


def _env(values: Mapping[str, str]) -> list[dict[str, Any]]:
    return [{"name": k, "value": v} for k, v in values.items()]


def _placement(session: KubeSession, role: str) -> dict[str, Any]:
    return {
        "nodeSelector": session.node_selector(role),
        "tolerations": session.tolerations([role]),
    }


def _resources(cpu: str | None, memory: str | None) -> dict[str, Any]:
    limits = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v}
    return {"requests": dict(limits), "limits": dict(limits)} if limits else {}


def _deployment(
    name: str, labels: dict[str, str], replicas: int, container: dict[str, Any], pod: dict[str, Any]
) -> dict[str, Any]:
    """A Deployment of ``replicas`` pods of ``container``, ``pod`` adding to their spec."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [container], **pod},
            },
        },
    }


def _job(
    name: str, labels: dict[str, str], container: dict[str, Any], pod: dict[str, Any], **spec: Any
) -> dict[str, Any]:
    """A Job of ``container`` run once (no retry, no restart), ``spec`` and ``pod`` adding
    to its spec and its pods'."""
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            **spec,
            "backoffLimit": 0,
            "template": {
                "metadata": {"labels": labels},
                "spec": {"restartPolicy": "Never", "containers": [container], **pod},
            },
        },
    }


def registry_manifests(
    cfg: TheodoliteConfig, session: KubeSession, bootstrap: str
) -> list[dict[str, Any]]:
    """The schema registry's Deployment and Service (Confluent's image's environment)."""
    labels = _labels("schema-registry")
    env = {
        "SCHEMA_REGISTRY_HOST_NAME": REGISTRY,
        "SCHEMA_REGISTRY_LISTENERS": f"http://0.0.0.0:{REGISTRY_PORT}",
        "SCHEMA_REGISTRY_KAFKASTORE_BOOTSTRAP_SERVERS": f"PLAINTEXT://{bootstrap}",
        "SCHEMA_REGISTRY_HEAP_OPTS": "-Xms256M -Xmx256M",
        "JAVA_OPTS": "-Xmx256m",
    }
    container = {
        "name": "schema-registry",
        "image": cfg.registry_image,
        "env": _env(env),
        "ports": [{"containerPort": REGISTRY_PORT, "name": "http"}],
        "readinessProbe": {
            "tcpSocket": {"port": REGISTRY_PORT},
            "periodSeconds": 2,
        },
    }
    pod = {"terminationGracePeriodSeconds": 5, **_placement(session, cfg.generator_role)}
    deployment = _deployment(REGISTRY, labels, 1, container, pod)
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": REGISTRY, "labels": labels},
        "spec": {"selector": labels, "ports": [{"port": REGISTRY_PORT, "name": "http"}]},
    }
    return [deployment, service]


def tools_configmap(jar: bytes) -> dict[str, Any]:
    """The apps' jar (~70 KB of a ConfigMap's 1 MiB) for the topics tool's pods."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": TOOLS, "labels": _labels("tools")},
        "binaryData": {TOOLS_JAR: base64.b64encode(jar).decode("ascii")},
    }


def topics_job(
    name: str, image: str, args: Sequence[str], session: KubeSession, role: str
) -> dict[str, Any]:
    """A Job running the topics tool with ``args`` in the Kafka tools image."""
    labels = _labels("topics")
    container = {
        "name": "topics",
        "image": image,
        "command": [f"{KAFKA_BIN}/kafka-run-class.sh", TOPICS_MAIN, *args],
        "env": _env({"CLASSPATH": f"{TOOLS_MOUNT}/{TOOLS_JAR}", "KAFKA_HEAP_OPTS": "-Xmx128m"}),
        "volumeMounts": [{"name": "tools", "mountPath": TOOLS_MOUNT, "readOnly": True}],
        "resources": {"requests": {"memory": "256Mi"}, "limits": {"memory": "384Mi"}},
    }
    pod = {
        "volumes": [{"name": "tools", "configMap": {"name": TOOLS}}],
        "terminationGracePeriodSeconds": 5,
        **_placement(session, role),
    }
    return _job(name, labels, container, pod)


def app_name(cfg: TheodoliteConfig) -> str:
    return f"theodolite-{cfg.use_case}-app"


def generator_name(cfg: TheodoliteConfig) -> str:
    return f"theodolite-{cfg.use_case}-load-generator"


def app_deployment(
    cfg: TheodoliteConfig, session: KubeSession, bootstrap: str, registry_url: str
) -> dict[str, Any]:
    """The use case's application: ``instances`` replicas of one pod (Theodolite's shape)."""
    labels = _labels(app_name(cfg))
    env = {**app_env(cfg, bootstrap, registry_url), "JAVA_OPTS": f"-Xmx{cfg.heap}"}
    container: dict[str, Any] = {"name": "uc-application", "image": cfg.app_image_ref}
    container["env"] = _env(env)
    if resources := _resources(cfg.cpu, cfg.memory):
        container["resources"] = resources
    pod = {"terminationGracePeriodSeconds": 10, **_placement(session, cfg.app_role)}
    return _deployment(app_name(cfg), labels, cfg.instances, container, pod)


def generator_manifests(
    cfg: TheodoliteConfig, session: KubeSession, bootstrap: str, registry_url: str
) -> list[dict[str, Any]]:
    """The generators' Indexed Job (``INSTANCE_INDEX`` from each pod's completion index)
    and the headless Service Theodolite's generators discover each other through."""
    name = generator_name(cfg)
    labels = _labels(name)
    env = _env({**generator_env(cfg, bootstrap, registry_url), "JAVA_OPTS": f"-Xmx{cfg.heap}"})
    env += [
        {
            "name": "INSTANCE_INDEX",
            "valueFrom": {
                "fieldRef": {"fieldPath": f"metadata.annotations['{_COMPLETION_INDEX}']"}
            },
        },
        {
            "name": "KUBERNETES_NAMESPACE",
            "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}},
        },
        {
            "name": "KUBERNETES_DNS_NAME",
            "value": f"{name}.$(KUBERNETES_NAMESPACE).svc.cluster.local",
        },
    ]
    container = {
        "name": "workload-generator",
        "image": cfg.generator_image_ref,
        "env": env,
        "ports": [{"containerPort": 5701, "name": "coordination"}],
    }
    pod = {
        "subdomain": name,
        "terminationGracePeriodSeconds": 5,
        **_placement(session, cfg.generator_role),
    }
    n = cfg.generator_count
    job = _job(name, labels, container, pod, completionMode="Indexed", completions=n, parallelism=n)
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "clusterIP": "None",
            "publishNotReadyAddresses": True,
            "selector": labels,
            "ports": [{"name": "coordination", "port": 5701}],
        },
    }
    return [job, service]


# -- one run -----------------------------------------------------------------------------------


def pod_problem(pod: Mapping[str, Any]) -> str | None:
    """Why a pod of the run will not do its part, or None while it can."""
    status = pod.get("status") or {}
    if status.get("phase") == "Failed":
        return "failed"
    for cs in status.get("containerStatuses") or ():
        state = cs.get("state") or {}
        waiting = state.get("waiting") or {}
        if waiting.get("reason") in _STUCK:
            return f"{waiting['reason']}: {waiting.get('message', '')}".rstrip(": ")
        term = state.get("terminated")
        if term and term.get("exitCode", 0) != 0:
            return f"exited {term.get('exitCode')} ({term.get('reason', '')})"
        if (cs.get("restartCount") or 0) > 0:
            return f"restarted {cs['restartCount']} time(s)"
    return None


class KubeTheodoliteRun:
    """One run of ``theodolite`` on Kubernetes (prepare → execute → clean)."""

    def __init__(self, config: TheodoliteConfig, target: KafkaTarget, session: KubeSession) -> None:
        self.config = config
        self.target = target
        self.session = session
        self.bootstrap = target.endpoints()["bootstrap"]
        self.registry_url = f"http://{REGISTRY}:{REGISTRY_PORT}"
        self._applied: list[tuple[str, str]] = []

    # -- lifecycle ---------------------------------------------------------------------------

    def prepare(self, ctx: RunContext) -> None:
        """The tools' jar, the registry, and the topics recreated (the tool keeps sampling)."""
        cfg = self.config
        if cfg.engine != "kstreams":
            msg = (
                f"engine = {cfg.engine!r} runs on the local platform only: Theodolite's Flink "
                "benchmarks need a Flink cluster (jobmanager and taskmanagers from Flink's "
                "distribution), which GreenFlow neither deploys nor can test here; use "
                'engine = "kstreams" on Kubernetes'
            )
            raise WorkloadError(msg)
        for role in {cfg.app_role, cfg.generator_role}:
            if not ctx.inventory.with_role(role):
                msg = (
                    f"theodolite runs on nodes with the role {role!r} and no node has it; "
                    "label one (the platform's role_labels) or set app_role/generator_role"
                )
                raise WorkloadError(msg)
        build = resolve_apps(kafka_version=self.target.tools_version)
        self._apply(tools_configmap(build.jar.read_bytes()))
        for manifest in registry_manifests(cfg, self.session, self.bootstrap):
            self._apply(manifest)
        spec = [f"{topic}:{n}" for topic, n in topics(cfg).items()]
        args = ["prepare", self.bootstrap, cfg.application_id, str(OFFSETS_EVERY_MS), *spec]
        job = topics_job(
            TOPICS_JOB,
            self.target.tools_image,
            [*args, "--", INPUT, OUTPUT],
            self.session,
            cfg.generator_role,
        )
        self._apply(job)
        self._wait_log(TOPICS_JOB, "greenflow-topics-ready", "the topics")
        self._wait_available(REGISTRY, 1, "the schema registry")

    def execute(self, ctx: RunContext) -> WorkloadResult:
        cfg = self.config
        self._apply(app_deployment(cfg, self.session, self.bootstrap, self.registry_url))
        self._wait_available(app_name(cfg), cfg.instances, f"{cfg.use_case}'s application")
        self._wait_members()
        for manifest in generator_manifests(cfg, self.session, self.bootstrap, self.registry_url):
            self._apply(manifest)
        self._wait_running(generator_name(cfg), cfg.generator_count)
        ctx.phases.enter(Phase.WARMUP)
        self._watch(ctx, float(cfg.warmup))
        start = ctx.phases.enter(Phase.MEASURE)
        self._watch(ctx, float(cfg.duration))
        end = ctx.phases.enter(Phase.COOLDOWN)
        # One more offsets sample after the end, then the load stops.
        self._watch(ctx, 2.5 * OFFSETS_EVERY_MS / 1000)
        samples = parse_offsets(self.session.pod_logs(self._pod_of(TOPICS_JOB)))
        self.session.delete("Job", generator_name(cfg))
        return self._result(samples, start, end)

    def clean(self, ctx: RunContext) -> None:
        """Delete what the run applied, then the topics and the application's internal ones
        (a Job, while the target is healthy). Idempotent."""
        for kind, name in reversed(self._applied):
            if name != TOOLS:
                self.session.delete(kind, name)
        # The pods go after their owners (background deletion); the group is forgotten
        # below only once no instance can rejoin it.
        self.session.poll(
            lambda: (not self._pods(app_name(self.config)), "application pods terminating"),
            what="the application's pods to be deleted",
            timeout_s=120.0,
            cancellable=False,
        )
        applied, self._applied = self._applied, [(k, n) for k, n in self._applied if n == TOOLS]
        if not applied or self.target.health() is not None:
            self._delete_tools()
            return
        try:
            cfg = self.config
            args = ["clean", self.bootstrap, cfg.application_id, cfg.application_id + "-"]
            args += list(topics(cfg))
            self._apply(
                topics_job(
                    CLEAN_JOB,
                    self.target.tools_image,
                    args,
                    self.session,
                    self.config.generator_role,
                )
            )
            self._wait_log(CLEAN_JOB, "greenflow-topics-deleted", "deleting the topics")
        except WorkloadError as exc:
            log.warning("theodolite.topics_left", error=str(exc))
        finally:
            self.session.delete("Job", CLEAN_JOB)
            self._delete_tools()

    # -- steps -------------------------------------------------------------------------------

    def _apply(self, manifest: Mapping[str, Any]) -> None:
        key = (manifest["kind"], manifest["metadata"]["name"])
        if key not in self._applied:
            self._applied.append(key)
        self.session.apply(manifest)

    def _delete_tools(self) -> None:
        self.session.delete("ConfigMap", TOOLS)
        self._applied = [(k, n) for k, n in self._applied if n != TOOLS]

    def _pods(self, component: str) -> list[dict[str, Any]]:
        selector = ",".join(f"{k}={v}" for k, v in _labels(component).items())
        pods: list[dict[str, Any]] = self.session.list_objects("Pod", selector=selector)
        return pods

    def _pod_of(self, job: str) -> str:
        pods = self.session.list_objects("Pod", selector=f"job-name={job}")
        if not pods:
            raise WorkloadError(f"Job {job} has no pod")
        name: str = pods[0]["metadata"]["name"]
        return name

    def _fail_if_stuck(self, pods: Sequence[Mapping[str, Any]], what: str) -> None:
        for pod in pods:
            problem = pod_problem(pod)
            if problem is None:
                continue
            name = pod["metadata"]["name"]
            try:
                tail = self.session.pod_logs(name, tail_lines=15)
            except Exception as exc:  # the diagnosis must not hide the failure
                tail = f"(no log: {exc})"
            lines = "\n".join(f"  {line}" for line in tail.splitlines())
            raise WorkloadError(f"{what}: pod {name} {problem}\n{lines}".rstrip())

    def _wait_log(self, job: str, marker: str, what: str) -> None:
        def check() -> tuple[bool, str]:
            pods = self.session.list_objects("Pod", selector=f"job-name={job}")
            self._fail_if_stuck(pods, what)
            for pod in pods:
                if (pod.get("status") or {}).get("phase") in ("Running", "Succeeded"):
                    text = self.session.pod_logs(pod["metadata"]["name"])
                    if marker in text:
                        return True, "done"
                    return False, "running"
            return False, "no pod running yet"

        self.session.poll(check, what=what, timeout_s=START_TIMEOUT_S, interval_s=1.0)

    def _wait_available(self, name: str, replicas: int, what: str) -> None:
        def check() -> tuple[bool, str]:
            self._fail_if_stuck(self._pods(name if name != REGISTRY else "schema-registry"), what)
            obj = self.session.get("Deployment", name) or {}
            ready = (obj.get("status") or {}).get("availableReplicas") or 0
            return ready >= replicas, f"{ready}/{replicas} available"

        self.session.poll(check, what=what, timeout_s=START_TIMEOUT_S, interval_s=1.0)

    def _wait_members(self) -> None:
        """Until every stream thread of every instance is in the group: a pod is available
        as soon as its JVM runs, its consumers join seconds later (Theodolite leaves that to
        its warm-up; here the load starts on a formed group)."""
        cfg = self.config
        want = cfg.instances * cfg.threads
        what = f"{cfg.use_case}'s application joining its consumer group"

        def check() -> tuple[bool, str]:
            self._fail_if_stuck(self._pods(app_name(cfg)), what)
            self._fail_if_stuck(self._pods("topics"), "the topics tool")
            samples = parse_offsets(self.session.pod_logs(self._pod_of(TOPICS_JOB), tail_lines=3))
            members = samples[-1].members if samples else 0
            return members >= want, f"{members}/{want} members"

        self.session.poll(check, what=what, timeout_s=START_TIMEOUT_S, interval_s=1.0)

    def _wait_running(self, job: str, count: int) -> None:
        def check() -> tuple[bool, str]:
            pods = self.session.list_objects("Pod", selector=f"job-name={job}")
            self._fail_if_stuck(pods, "the load generators")
            running = sum(1 for p in pods if (p.get("status") or {}).get("phase") == "Running")
            return running >= count, f"{running}/{count} running"

        self.session.poll(check, what="the load generators", timeout_s=START_TIMEOUT_S)

    def _watch(self, ctx: RunContext, seconds: float) -> None:
        """Wait ``seconds``, failing at once if a pod of the run or the target fails."""
        cfg = self.config
        what = {
            app_name(cfg): f"{cfg.use_case}'s application",
            generator_name(cfg): "the load generators",
            "topics": "the topics tool",
            "schema-registry": "the schema registry",
        }
        selector = f"app.kubernetes.io/name={APP}"
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            # One listing of the run's pods per check, each named by its part.
            for pod in self.session.list_objects("Pod", selector=selector):
                part = ((pod.get("metadata") or {}).get("labels") or {}).get(
                    "app.kubernetes.io/component", ""
                )
                self._fail_if_stuck([pod], what.get(part, part))
            if (problem := self.target.health()) is not None:
                raise WorkloadError(f"target {cfg.target!r} failed during the run: {problem}")
            ctx.sleep(min(CHECK_EVERY_S, left))

    def _result(self, samples: Sequence[OffsetSample], start: float, end: float) -> WorkloadResult:
        cfg = self.config
        records = count_at(samples, end, "input_end") - count_at(samples, start, "input_end")
        out = count_at(samples, end, "output_end") - count_at(samples, start, "output_end")
        lags = lag_series(samples, start, end, float(cfg.lag_interval))
        if len(lags) < 2:
            msg = (
                f"{len(lags)} lag sample(s) inside MEASURE: lengthen duration "
                f"({float(cfg.duration):g} s) or shorten lag_interval"
            )
            raise WorkloadError(msg)
        return run_result(cfg, records, out, end - start, lags)
