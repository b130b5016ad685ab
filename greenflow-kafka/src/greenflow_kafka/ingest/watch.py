"""The tool Jobs of one kafka-ingest run on Kubernetes, in flight: created through the
platform's session, watched until done (failing fast on a failed pod or Job, a consumer that
exits, an unhealthy target), and deleted with their pods."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from greenflow.api import RunContext
from greenflow.api.processes import tail_text
from greenflow.errors import WorkloadError
from greenflow_kafka.ingest.jobs import (
    JOB_LABEL,
    TOOL_CPU,
    TOOL_HEAP_MIB,
    TOOL_MEMORY,
    WORKER_ROLE,
    ToolJob,
    job_failure,
    pod_blocked,
    pod_failure,
    pod_finished,
    pod_index,
    pod_succeeded,
    tool_job,
)

if TYPE_CHECKING:
    from greenflow_kubernetes import KubeSession

#: How often a wait looks at the pods.
POLL_S = 0.2
#: Lines of a pod's log in an error message.
_LOG_LINES = 15

Pods = list[dict[str, Any]]


class JobWatch:
    """A run's Jobs, named ``<prefix>-<what>``, labelled ``labels``, on worker nodes.

    ``health`` is the target's (:meth:`check` fails the run when it says something);
    ``target`` its plan name and ``load`` what runs during MEASURE ("the producers"), for
    messages.
    """

    def __init__(
        self,
        session: KubeSession,
        *,
        image: str,
        prefix: str,
        labels: Mapping[str, str],
        health: Callable[[], str | None],
        target: str,
        load: str,
    ) -> None:
        self.session = session
        self.image = image
        self.prefix = prefix
        self.labels = dict(labels)
        self._health = health
        self._target = target
        self._load = load
        self._created: list[str] = []
        #: Jobs whose failure fails the run whatever is being waited for (consumers, probe).
        self._watched: list[str] = []
        #: Jobs whose pods must not finish before greenflow stops them (consumers).
        self._running: list[str] = []
        #: When each Job was first seen complete (greenflow's monotonic clock).
        self._seen_complete: dict[str, float] = {}

    def name(self, what: str) -> str:
        return f"{self.prefix}-{what}"

    def create(
        self,
        what: str,
        command: Sequence[str],
        *,
        active_deadline_s: int,
        component: str | None = None,
        heap_mib: int = TOOL_HEAP_MIB,
        memory: str = TOOL_MEMORY,
        cpu_request: str = TOOL_CPU,
        parallelism: int = 1,
        node_name: str | None = None,
        instance_env: bool = False,
        generator_configmap: str | None = None,
    ) -> str:
        """Create the Job ``what`` (see :class:`~greenflow_kafka.ingest.jobs.ToolJob`);
        return its name."""
        job = ToolJob(
            name=self.name(what),
            namespace=self.session.namespace,
            image=self.image,
            command=command,
            labels=self.labels,
            node_selector=self.session.node_selector(WORKER_ROLE),
            tolerations=self.session.tolerations([WORKER_ROLE]),
            component=component or what,
            heap_mib=heap_mib,
            memory=memory,
            cpu_request=cpu_request,
            parallelism=parallelism,
            active_deadline_s=active_deadline_s,
            node_name=node_name,
            instance_env=instance_env,
            generator_configmap=generator_configmap,
        )
        self._created.append(job.name)
        self.session.apply(tool_job(job))
        return job.name

    def watch(self, job: str, *, keeps_running: bool = False) -> None:
        """Fail the run on ``job``'s failure from now on, whatever is waited for; with
        ``keeps_running``, also when one of its pods ends by itself (consumers)."""
        self._watched.append(job)
        if keeps_running:
            self._running.append(job)

    def unwatch(self, job: str) -> None:
        self._watched.remove(job)
        if job in self._running:
            self._running.remove(job)

    def seen_complete(self, job: str) -> float | None:
        """When a :meth:`check` first saw every pod of ``job`` succeeded (monotonic)."""
        return self._seen_complete.get(job)

    def pods(self, job: str) -> Pods:
        return list(self.session.list_objects("Pod", {JOB_LABEL: job}))

    def logs(self, pod: Mapping[str, Any], tail_lines: int | None = None) -> str:
        try:
            if tail_lines is not None:
                return self.session.pod_logs(pod["metadata"]["name"], tail_lines=tail_lines)
            return self.session.pod_logs(pod["metadata"]["name"])
        except Exception as exc:  # a node gone, or no kubelet to serve them
            return f"(logs unavailable: {type(exc).__name__}: {exc})"

    def delete(self, job: str) -> None:
        self.session.delete("Job", job)
        # With no garbage collector (or a slow one) the pods would outlive their Job.
        for pod in self.pods(job):
            self.session.delete("Pod", pod["metadata"]["name"])
        if job in self._created:
            self._created.remove(job)

    def delete_all(self) -> None:
        """Delete every Job created (and its pods), and watch nothing any more."""
        self._watched.clear()
        self._running.clear()
        while self._created:
            self.delete(self._created[-1])

    def raise_pod_failure(self, job: str, pod: Mapping[str, Any], why: str | None = None) -> None:
        meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
        why = why or pod_failure(pod) or job_failure(self.session.get("Job", job)) or "failed"
        msg = (
            f"Job {job}: pod {meta.get('name')} (instance {pod_index(pod)}) on node "
            f"{spec.get('nodeName') or '?'}: {why}; last lines of its log:\n"
            f"{log_tail(self.logs(pod))}"
        )
        raise WorkloadError(msg)

    def check(self, job: str, also: Sequence[str] = ()) -> Pods:
        """Raise on a failed pod or Job (``job``, ``also`` and the watched ones), a pod that
        ended by itself where it should keep running, or an unhealthy target; return
        ``job``'s pods."""
        result: Pods = []
        for name in dict.fromkeys((job, *also, *self._watched)):
            pods = self.pods(name)
            for pod in pods:
                if pod_failure(pod):
                    self.raise_pod_failure(name, pod)
                if name in self._running and pod_finished(pod):
                    self.raise_pod_failure(
                        name,
                        pod,
                        "exited by itself during the run (consumers run until "
                        "greenflow stops them at the end of MEASURE)",
                    )
            if why := job_failure(self.session.get("Job", name)):
                msg = f"Job {name} failed: {why}"
                raise WorkloadError(msg)
            if name == job:
                result = pods
            if pods and name not in self._seen_complete and all(pod_succeeded(p) for p in pods):
                self._seen_complete[name] = time.monotonic()
        reason = self._health()
        if reason:
            msg = f"service {self._target!r} failed during the run: {reason}"
            raise WorkloadError(msg)
        return result

    def wait(
        self,
        ctx: RunContext,
        job: str,
        done: Callable[[Pods], bool],
        *,
        timeout_s: float,
        what: str,
        also: Sequence[str] = (),
        unschedulable_fails: bool = False,
    ) -> Pods:
        """Poll until ``done(pods of job)``; raise on what :meth:`check` finds, on the
        timeout (with the blocking condition), and — with ``unschedulable_fails``, for Jobs
        whose timing matters — as soon as the scheduler says a pod does not fit."""
        end = time.monotonic() + timeout_s
        while True:
            pods = self.check(job, also)
            if done(pods):
                return pods
            if unschedulable_fails:
                self._raise_unschedulable(job, what, pods)
            if time.monotonic() > end:
                blocked = [f"{p['metadata']['name']}: {b}" for p in pods if (b := pod_blocked(p))]
                phases = ", ".join(
                    f"{p['metadata']['name']} {(p.get('status') or {}).get('phase')}" for p in pods
                )
                seen = "; ".join(blocked) or (f"pods {phases}" if pods else "no pod created yet")
                msg = (
                    f"timed out after {timeout_s:g}s waiting for {what} (Job {job}); "
                    f"last seen: {seen}"
                )
                raise WorkloadError(msg)
            ctx.sleep(POLL_S)

    def wait_job(
        self,
        ctx: RunContext,
        job: str,
        completions: int,
        *,
        timeout_s: float,
        what: str,
        also: Sequence[str] = (),
        unschedulable_fails: bool = False,
    ) -> Pods:
        """Wait until ``completions`` pods of ``job`` succeeded; return those."""

        def done(pods: Pods) -> bool:
            return sum(1 for p in pods if pod_succeeded(p)) >= completions

        pods = self.wait(
            ctx,
            job,
            done,
            timeout_s=timeout_s,
            what=what,
            also=also,
            unschedulable_fails=unschedulable_fails,
        )
        return [p for p in pods if pod_succeeded(p)]

    def _raise_unschedulable(self, job: str, what: str, pods: Pods) -> None:
        for pod in pods:
            why = pod_blocked(pod)
            if why and why.startswith("Unschedulable"):
                msg = (
                    f"{what}: pod {pod['metadata']['name']} of Job {job} cannot be "
                    f"scheduled ({why}). While {self._load} run, the worker nodes need room "
                    f"for this Job too (cpu request {TOOL_CPU}, memory "
                    f"{TOOL_MEMORY}); waiting would move the MEASURE boundary until the "
                    "load ends. Lower the cpu of the target service (it shares nodes with "
                    "the load?), use fewer producers or consumers, or add worker nodes."
                )
                raise WorkloadError(msg)


def log_tail(text: str) -> str:
    """The last lines of a pod's log, indented, to end an error message with."""
    return "\n".join(f"  {line}" for line in tail_text(text, _LOG_LINES)) or "  (no output)"


__all__ = ["POLL_S", "JobWatch", "Pods", "log_tail"]
