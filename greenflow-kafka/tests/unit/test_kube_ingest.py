"""kafka-ingest's Jobs on Kubernetes as pure functions: manifests, statuses, tool output."""

from __future__ import annotations

import base64

import pytest

from greenflow_kafka.generator import GENERATOR_JAR, GENERATOR_MAIN, generator_args
from greenflow_kafka.ingest.jobs import (
    JOB_LABEL,
    ToolJob,
    generator_configmap,
    job_complete,
    job_failure,
    offsets_command,
    pod_blocked,
    pod_failure,
    pod_index,
    pod_succeeded,
    producer_command,
    tool_job,
    tool_memory,
    topic_command,
)
from greenflow_kafka.ingest.parse import BoundaryRead, OffsetsReading, parse_offsets_output


def _job(**kw: object) -> ToolJob:
    base: dict[str, object] = {
        "name": "gf-run-producers",
        "namespace": "ns",
        "image": "apache/kafka:4.3.1",
        "command": ["true"],
        "labels": {"greenflow.io/experiment": "e"},
        "node_selector": {"node.kubernetes.io/worker": "true"},
        "component": "producer",
    }
    base.update(kw)
    return ToolJob(**base)  # type: ignore[arg-type]  # test helper


def test_tool_job_runs_n_instances_once_each() -> None:
    """parallelism = completions, Indexed, never retried, bounded in time, memory capped."""
    job = tool_job(_job(parallelism=3, memory="640Mi", heap_mib=256, active_deadline_s=99))
    spec = job["spec"]
    assert spec["parallelism"] == spec["completions"] == 3
    assert spec["completionMode"] == "Indexed"
    assert spec["backoffLimit"] == 0 and spec["activeDeadlineSeconds"] == 99
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    (container,) = pod["containers"]
    assert container["resources"] == {
        "requests": {"cpu": "250m", "memory": "640Mi"},
        "limits": {"memory": "640Mi"},
    }
    assert {"name": "KAFKA_HEAP_OPTS", "value": "-Xms256m -Xmx256m"} in container["env"]
    assert pod["topologySpreadConstraints"][0]["whenUnsatisfiable"] == "ScheduleAnyway"
    assert spec["template"]["metadata"]["labels"][JOB_LABEL] == "gf-run-producers"


def test_a_pinned_tool_job_names_its_node() -> None:
    """A Job pinned to a node requires that node by name, besides the role's selector."""
    pod = tool_job(_job(node_name="worker-7"))["spec"]["template"]["spec"]
    (term,) = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"
    ]
    assert term == {
        "matchFields": [{"key": "metadata.name", "operator": "In", "values": ["worker-7"]}]
    }
    assert "topologySpreadConstraints" not in pod


def test_producer_command_uses_the_local_arguments() -> None:
    """The producer Job runs the load generator through the image's kafka-run-class.sh with
    exactly the local path's arguments; its jar comes from the mounted ConfigMap on CLASSPATH."""
    args = generator_args(
        bootstrap_servers="b:9092", topic="t", rate=5, record_size=100, seconds=3, ramp_seconds=1
    )
    assert producer_command(args) == ["/opt/kafka/bin/kafka-run-class.sh", GENERATOR_MAIN, *args]
    pod = tool_job(_job(generator_configmap="gf-run-generator"))["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert {"name": "CLASSPATH", "value": f"/opt/greenflow/{GENERATOR_JAR}"} in container["env"]
    assert container["volumeMounts"] == [
        {"name": "generator", "mountPath": "/opt/greenflow", "readOnly": True}
    ]
    assert pod["volumes"] == [{"name": "generator", "configMap": {"name": "gf-run-generator"}}]
    assert "volumes" not in tool_job(_job())["spec"]["template"]["spec"]


def test_generator_configmap_carries_the_jar() -> None:
    """The jar travels base64-encoded as binaryData, labelled with the run's labels."""
    cm = generator_configmap("gf-run-generator", "ns", {"greenflow.io/run": "r"}, b"PK\x03\x04")
    assert cm["kind"] == "ConfigMap" and cm["metadata"]["namespace"] == "ns"
    assert base64.b64decode(cm["binaryData"][GENERATOR_JAR]) == b"PK\x03\x04"
    assert cm["metadata"]["labels"]["greenflow.io/run"] == "r"
    assert cm["metadata"]["labels"]["app.kubernetes.io/component"] == "generator"


def test_topic_commands() -> None:
    """Topics are created if missing and deleted if present, so clean-up can be retried."""
    create = topic_command("b:9092", "t", partitions=3, replication=2)
    assert create[0] == "/opt/kafka/bin/kafka-topics.sh"
    assert create[3:5] == ["--create", "--if-not-exists"]
    assert create[-4:] == ["--partitions", "3", "--replication-factor", "2"]
    assert topic_command("b:9092", "t", delete=True)[3:5] == ["--delete", "--if-exists"]


def test_offsets_output_is_parsed_with_its_clock() -> None:
    """End offsets of the topic are summed over partitions, with the read's start and end."""
    text = (
        "greenflow-read-start 1700000000.250000\n"
        "[2026-01-01 WARN] something\n"
        "t:0:100\nt:1:250\nother:0:9\n"
        "greenflow-read-end 1700000001,750000\n"
    )
    reading = parse_offsets_output(text, "t")
    assert reading is not None
    assert reading.offsets == {0: 100, 1: 250} and reading.total == 350
    assert reading.started == 1700000000.25 and reading.ended == 1700000001.75
    assert parse_offsets_output("greenflow-read-start 1\nError: timeout\n", "t") is None
    script = offsets_command("b:9092", "t")
    assert script[0] == "/bin/bash" and script[-2:] == ["b:9092", "t"]
    assert "EPOCHREALTIME" in script[2]


def _pod(
    *,
    phase: str = "Running",
    state: dict[str, object] | None = None,
    last: dict[str, object] | None = None,
    conditions: list[dict[str, str]] | None = None,
    labels: dict[str, str] | None = None,
) -> dict[str, object]:
    cs: dict[str, object] = {"name": "tool", "state": state or {"running": {}}}
    if last:
        cs["lastState"] = last
    return {
        "metadata": {"name": "p", "labels": labels or {}},
        "status": {"phase": phase, "containerStatuses": [cs], "conditions": conditions or []},
    }


def test_pod_failures_are_named() -> None:
    """OOMKilled, a non-zero exit and an eviction are failures, with the reason; a clean exit
    is not."""
    oom = _pod(phase="Failed", state={"terminated": {"reason": "OOMKilled", "exitCode": 137}})
    assert pod_failure(oom) == "container tool terminated: OOMKilled (exit code 137)"
    error = _pod(
        phase="Failed",
        state={"terminated": {"reason": "Error", "exitCode": 1, "message": "boom\n"}},
    )
    assert pod_failure(error) == "container tool terminated: Error (exit code 1): boom"
    evicted = {"status": {"phase": "Failed", "reason": "Evicted", "message": "disk pressure"}}
    assert pod_failure(evicted) == "pod failed: Evicted disk pressure"
    done = _pod(phase="Succeeded", state={"terminated": {"reason": "Completed", "exitCode": 0}})
    assert pod_failure(done) is None and pod_succeeded(done)
    assert pod_failure(_pod()) is None and not pod_succeeded(_pod())


def test_a_restarted_oom_is_still_noticed() -> None:
    """An OOM kill in the container's previous state counts too."""
    pod = _pod(last={"terminated": {"reason": "OOMKilled", "exitCode": 137}})
    assert pod_failure(pod) is not None and "OOMKilled" in str(pod_failure(pod))


def test_blocked_pods_say_why() -> None:
    """Unschedulable and image pull errors are reported; a pod merely starting is not."""
    unschedulable = _pod(
        phase="Pending",
        conditions=[
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": "0/3 nodes are available",
            }
        ],
    )
    assert pod_blocked(unschedulable) == "Unschedulable: 0/3 nodes are available"
    pull = _pod(
        phase="Pending", state={"waiting": {"reason": "ImagePullBackOff", "message": "not found"}}
    )
    assert pod_blocked(pull) == "ImagePullBackOff: not found"
    starting = _pod(phase="Pending", state={"waiting": {"reason": "ContainerCreating"}})
    assert pod_blocked(starting) is None


def test_job_conditions_and_indexes() -> None:
    """A Failed condition is a failure; succeeded counts complete a Job; the completion
    index comes from the controller's label."""
    failed = {
        "status": {
            "conditions": [
                {
                    "type": "Failed",
                    "status": "True",
                    "reason": "DeadlineExceeded",
                    "message": "active too long",
                }
            ]
        }
    }
    assert job_failure(failed) == "DeadlineExceeded: active too long"
    assert job_failure({"status": {}}) is None and job_failure(None) is None
    assert job_complete({"status": {"succeeded": 2}}, 2)
    assert not job_complete({"status": {"succeeded": 1}}, 2)
    assert pod_index(_pod(labels={"batch.kubernetes.io/job-completion-index": "3"})) == 3
    assert pod_index(_pod()) == 0


@pytest.mark.parametrize(("heap", "memory"), [(256, "512Mi"), (1024, "2048Mi"), (100, "356Mi")])
def test_tool_memory_leaves_room_beyond_the_heap(heap: int, memory: str) -> None:
    """A tool's memory limit is twice its heap, and at least heap + 256 MiB."""
    assert tool_memory(heap) == memory


def _read(ended: float | None, created: float = 1000.0, seen: float = 1012.0) -> BoundaryRead:
    reading = OffsetsReading(
        offsets={0: 10}, started=None if ended is None else ended - 1, ended=ended
    )
    return BoundaryRead(reading, None, lag=seen - created, created=created, seen=seen)


def test_a_read_marks_the_phase_boundary_at_its_own_stamp_when_plausible() -> None:
    """The read's stamp (the pod's clock) is the boundary when it lies between creating the
    Job and seeing it complete: the energy window is then the counting window."""
    read = _read(ended=1009.25)
    assert read.boundary_on_read_clock
    assert read.boundary() == 1009.25
    assert read.stamp_lag == pytest.approx(9.25)
    assert _read(ended=1012.3).boundary() == 1012.0  # within the tolerance: never after seen


@pytest.mark.parametrize("ended", [None, 990.0, 1030.0])
def test_an_implausible_or_missing_stamp_falls_back_to_when_the_job_was_seen_complete(
    ended: float | None,
) -> None:
    """A node clock off by more than the tolerance (or no stamp) must not move MEASURE:
    the boundary is when greenflow saw the read complete, and the run says so."""
    read = _read(ended=ended)
    assert not read.boundary_on_read_clock
    assert read.boundary() == 1012.0
