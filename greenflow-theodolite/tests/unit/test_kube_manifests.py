"""The Kubernetes side of the ``theodolite`` workload without a cluster: its manifests (what
Theodolite's own deployment has: images, environment, replicas, placement), the parsing of
the topics tool's samples, the record count at MEASURE's boundaries, and that the test
images are built under the names the defaults use."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from greenflow.errors import WorkloadError
from greenflow_kubernetes import KubeSession
from greenflow_theodolite.apps import GENERATOR_MAIN, REGISTRY_MAIN, UC_MAIN
from greenflow_theodolite.config import REGISTRY_IMAGE, TheodoliteConfig
from greenflow_theodolite.kube import (
    OffsetSample,
    app_deployment,
    count_at,
    generator_manifests,
    lag_series,
    parse_offsets,
    pod_problem,
    registry_manifests,
)

ROOT = Path(__file__).resolve().parents[3]
BOOTSTRAP = "kafka-0.kafka-headless.ns.svc:9092"
REGISTRY = "http://theodolite-schema-registry:8081"


def _session() -> KubeSession:
    roles = {"worker": "node.kubernetes.io/worker", "broker": "node.kubernetes.io/broker"}
    return KubeSession(None, namespace="ns", experiment="e", role_labels=roles)


def _env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def test_the_application_is_theodolites_deployment_with_the_plans_settings() -> None:
    cfg = TheodoliteConfig(
        use_case="uc3", load=1000, instances=3, threads=2, cpu="1000m", memory="4Gi", heap="2g"
    )
    d = app_deployment(cfg, _session(), BOOTSTRAP, REGISTRY)
    assert d["kind"] == "Deployment" and d["spec"]["replicas"] == 3
    pod = d["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == "ghcr.io/cau-se/theodolite-uc3-kstreams-app:v0.9.0"
    env = _env(container)
    assert env["KAFKA_BOOTSTRAP_SERVERS"] == BOOTSTRAP
    assert env["SCHEMA_REGISTRY_URL"] == REGISTRY
    assert env["NUM_STREAM_THREADS"] == "2"
    assert env["JAVA_OPTS"] == "-Xmx2g"
    assert env["AGGREGATION_DURATION_MS"] == str(30 * 86400 * 1000)
    assert container["resources"]["limits"] == {"cpu": "1000m", "memory": "4Gi"}
    assert pod["nodeSelector"] == {"node.kubernetes.io/worker": "true"}
    # An image of one's own replaces Theodolite's.
    mine = TheodoliteConfig(use_case="uc1", load=10, app_image="registry.example/uc1:7")
    assert (
        app_deployment(mine, _session(), BOOTSTRAP, REGISTRY)["spec"]["template"]["spec"][
            "containers"
        ][0]["image"]
        == "registry.example/uc1:7"
    )


def test_generators_are_an_indexed_job_splitting_the_sensors() -> None:
    cfg = TheodoliteConfig(use_case="uc4", load=300_000, generator_role="broker")
    job, service = generator_manifests(cfg, _session(), BOOTSTRAP, REGISTRY)
    assert job["spec"]["completionMode"] == "Indexed"
    assert job["spec"]["parallelism"] == job["spec"]["completions"] == 2  # ceil(300k / 150k)
    pod = job["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"node.kubernetes.io/broker": "true"}
    env = _env(pod["containers"][0])
    assert env["NUM_SENSORS"] == "300000" and env["INSTANCES"] == "2"
    assert env["INSTANCE_INDEX"] == {
        "fieldRef": {
            "fieldPath": "metadata.annotations['batch.kubernetes.io/job-completion-index']"
        }
    }
    assert env["SEND_REGISTRY"] == "true"  # UC4: instance 0 publishes the hierarchy
    assert pod["containers"][0]["image"] == (
        "ghcr.io/cau-se/theodolite-uc4-workload-generator:v0.9.0"
    )
    # Theodolite's own generators find each other through this headless Service.
    assert service["spec"]["clusterIP"] == "None"
    assert env["KUBERNETES_DNS_NAME"].startswith(f"{service['metadata']['name']}.")


def test_the_registry_is_confluents_image_with_its_environment() -> None:
    cfg = TheodoliteConfig(use_case="uc1", load=10)
    deployment, service = registry_manifests(cfg, _session(), BOOTSTRAP)
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == REGISTRY_IMAGE == "docker.io/confluentinc/cp-schema-registry:5.4.0"
    env = _env(container)
    assert env["SCHEMA_REGISTRY_KAFKASTORE_BOOTSTRAP_SERVERS"] == f"PLAINTEXT://{BOOTSTRAP}"
    assert env["SCHEMA_REGISTRY_LISTENERS"] == "http://0.0.0.0:8081"
    assert service["spec"]["ports"][0]["port"] == 8081


def test_offsets_are_parsed_and_counted_at_the_boundaries() -> None:
    text = "\n".join(
        [
            "some log line",
            "greenflow-offsets t_ms=1000 end.input=0 end.output=0 lag=0 members=0",
            "greenflow-offsets t_ms=2000 end.input=100 end.output=10 lag=5 members=2",
            "greenflow-offsets t_ms=3000 end.input=300 end.output=30 lag=9 members=2",
        ]
    )
    samples = parse_offsets(text)
    assert samples[1] == OffsetSample(2.0, 100, 10, 5, 2)
    assert count_at(samples, 2.5, "input_end") == pytest.approx(200.0)
    assert count_at(samples, 2.0, "output_end") == 10.0
    with pytest.raises(WorkloadError, match="no offsets around"):
        count_at(samples, 3.5, "input_end")


def test_lag_samples_are_taken_every_lag_interval_inside_measure() -> None:
    samples = [OffsetSample(float(t), 0, 0, t * 10) for t in range(0, 30)]
    lags = lag_series(samples, 5.0, 25.0, 5.0)
    assert [s.timestamp_s for s in lags] == [5.0, 10.0, 15.0, 20.0, 25.0]
    assert [s.lag for s in lags] == [50.0, 100.0, 150.0, 200.0, 250.0]


def test_a_pod_that_cannot_work_is_named_with_the_reason() -> None:
    pulling = {
        "status": {
            "phase": "Pending",
            "containerStatuses": [
                {"state": {"waiting": {"reason": "ErrImagePull", "message": "not found"}}}
            ],
        }
    }
    assert pod_problem(pulling) == "ErrImagePull: not found"
    crashed = {
        "status": {
            "phase": "Running",
            "containerStatuses": [{"state": {"running": {}}, "restartCount": 2}],
        }
    }
    assert pod_problem(crashed) == "restarted 2 time(s)"
    assert (
        pod_problem(
            {
                "status": {
                    "phase": "Running",
                    "containerStatuses": [{"state": {"running": {}}, "restartCount": 0}],
                }
            }
        )
        is None
    )


def test_the_test_images_carry_the_default_names_and_main_classes() -> None:
    """scripts/kube-node builds GreenFlow's apps under Theodolite's names; a rename on
    either side would leave the real-node test pulling from the internet."""
    script = (ROOT / "scripts" / "kube-node" / "build-theodolite-standin.sh").read_text()
    cfg = TheodoliteConfig(use_case="uc1", load=10)
    tag = cfg.app_image_ref.rsplit(":", 1)[1]
    assert f"TAG={tag}" in script
    assert f"REGISTRY_REF={REGISTRY_IMAGE}" in script
    assert "ghcr.io/cau-se/theodolite-uc$n-kstreams-app:$TAG" in script
    assert "ghcr.io/cau-se/theodolite-uc$n-workload-generator:$TAG" in script
    package = "io.greenflow.theodolite"
    assert f"PKG={package}" in script
    for uc, main in UC_MAIN.items():
        n = uc.removeprefix("uc")
        rendered = main.removeprefix(package + ".").replace(n, "$n", 1).replace(n, "${n}", 1)
        assert f"$PKG.{rendered}" in script, main
    for main in (GENERATOR_MAIN, REGISTRY_MAIN):
        assert f"$PKG.{main.removeprefix(package + '.')}" in script, main
