"""Kafka's Kubernetes manifests as pure functions: quantities, the image's env mapping, topology."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from greenflow_kafka.kube import (
    KafkaKubeSpec,
    check_overrides,
    cluster_id,
    default_voters,
    env_from_property,
    manifests,
    property_from_env,
    server_properties,
    statefulset,
)


def _spec(**kw: object) -> KafkaKubeSpec:
    base: dict[str, object] = {
        "name": "kafka",
        "namespace": "ns",
        "version": "4.3.1",
        "brokers": 3,
        "voters": 3,
        "cpu": "2",
        "memory": "4Gi",
    }
    base.update(kw)
    return KafkaKubeSpec(**base)  # type: ignore[arg-type]  # test helper


@pytest.mark.parametrize(
    ("prop", "env"),
    [
        ("log.retention.ms", "KAFKA_LOG_RETENTION_MS"),
        ("num.network.threads", "KAFKA_NUM_NETWORK_THREADS"),
        (
            "listener.name.internal.sasl_enabled_mechanisms",
            "KAFKA_LISTENER_NAME_INTERNAL_SASL__ENABLED__MECHANISMS",
        ),
        ("confluent-ish.key", "KAFKA_CONFLUENT___ISH_KEY"),
    ],
)
def test_properties_round_trip_through_the_image_mapping(prop: str, env: str) -> None:
    """A server property becomes the KAFKA_* variable the image renders back into it."""
    assert env_from_property(prop) == env
    assert property_from_env(env.removeprefix("KAFKA_")) == prop


def test_keys_the_image_cannot_render_are_refused() -> None:
    """A key with a one-character segment would come back changed, so it is refused."""
    with pytest.raises(ValueError, match=r"would become 'x\.y_z'"):
        env_from_property("x.y.z")


def test_overrides_are_checked_for_the_image() -> None:
    """Topology keys, values containing '=' and unmappable keys are refused together."""
    with pytest.raises(ValueError) as err:
        check_overrides(
            {
                "node.id": "3",
                "sasl.jaas.config": "a=b",
                "x.y.z": "1",
                "log.segment.bytes": "1048576",
            }
        )
    text = str(err.value)
    assert "'node.id' is derived from the topology" in text
    assert "'sasl.jaas.config': the image drops values containing '='" in text
    assert "x.y.z" in text and "log.segment.bytes" not in text


def test_cluster_id_is_stable_and_per_namespace() -> None:
    """The KRaft cluster id is 22 URL-safe characters, the same on every apply, distinct per
    namespace."""
    first = cluster_id("ns-a", "kafka")
    assert len(first) == 22 and first == cluster_id("ns-a", "kafka")
    assert first != cluster_id("ns-b", "kafka")


def test_spec_checks_voters_and_heap() -> None:
    """Voters must be within the brokers; a heap must fit under the memory limit."""
    with pytest.raises(ValueError, match="voters"):
        _spec(voters=4)
    with pytest.raises(ValueError, match="does not fit in memory"):
        _spec(memory="1Gi", heap="1g")
    assert _spec(memory="3Gi").heap_mib == 1536
    assert _spec(heap="700m").heap_mib == 700


def test_server_properties_match_the_local_defaults() -> None:
    """Internal topics are sized to the cluster and the quorum lists the voters' DNS names."""
    props = server_properties(_spec(brokers=2, voters=1))
    assert props["offsets.topic.replication.factor"] == "2"
    assert props["transaction.state.log.min.isr"] == "2"
    assert props["controller.quorum.voters"] == "0@kafka-0.kafka-headless.ns.svc:9093"
    assert props["group.initial.rebalance.delay.ms"] == "0"


def test_every_kafka_variable_renders_to_the_intended_property() -> None:
    """Each KAFKA_* variable of the pod renders (by the image's rule) to a property of
    server_properties, with its value."""
    spec = _spec(overrides={"num.io.threads": "16"})
    env = statefulset(spec)["spec"]["template"]["spec"]["containers"][0]["env"]
    rendered = {
        property_from_env(e["name"].removeprefix("KAFKA_")): e["value"]
        for e in env
        if e["name"].startswith("KAFKA_") and e["name"] != "KAFKA_HEAP_OPTS"
    }
    assert rendered == server_properties(spec)
    assert rendered["num.io.threads"] == "16"


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
@pytest.mark.parametrize(
    ("hostname", "roles", "listeners"),
    [
        ("kafka-0", "broker,controller", "PLAINTEXT://:9092,CONTROLLER://:9093"),
        ("kafka-2", "broker", "PLAINTEXT://:9092"),
    ],
)
def test_prelude_derives_per_pod_settings_from_the_ordinal(
    hostname: str, roles: str, listeners: str
) -> None:
    """The pod's shell prelude sets node id, roles, listeners and advertised listener from
    its ordinal before handing over to the image's entry point."""
    container = statefulset(_spec(voters=2))["spec"]["template"]["spec"]["containers"][0]
    script = container["command"][2].replace("exec /etc/kafka/docker/run", "env")
    env = {e["name"]: e["value"] for e in container["env"]} | {"HOSTNAME": hostname}
    out = subprocess.run(
        ["bash", "-c", script], env=env, capture_output=True, text=True, check=True
    ).stdout
    seen = dict(line.split("=", 1) for line in out.splitlines() if line.startswith("KAFKA_"))
    assert seen["KAFKA_NODE_ID"] == hostname.rsplit("-", 1)[1]
    assert seen["KAFKA_PROCESS_ROLES"] == roles
    assert seen["KAFKA_LISTENERS"] == listeners
    assert (
        seen["KAFKA_ADVERTISED_LISTENERS"] == f"PLAINTEXT://{hostname}.kafka-headless.ns.svc:9092"
    )


def test_prelude_refuses_a_hostname_without_ordinal() -> None:
    """A pod whose hostname has no ordinal exits with a message instead of guessing."""
    container = statefulset(_spec())["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e["value"] for e in container["env"]} | {"HOSTNAME": "kafka"}
    done = subprocess.run(
        ["bash", "-c", container["command"][2]],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1 and "cannot read an ordinal" in done.stderr


def test_emptydir_or_claims() -> None:
    """emptyDir storage is size-limited; a storage class becomes a claim template."""
    empty = statefulset(_spec(storage_size="5Gi"))["spec"]
    assert empty["template"]["spec"]["volumes"] == [
        {"name": "data", "emptyDir": {"sizeLimit": "5Gi"}}
    ]
    assert "volumeClaimTemplates" not in empty
    claimed = statefulset(_spec(storage="local-nvme"))["spec"]
    assert claimed["template"]["spec"]["volumes"] == []
    assert claimed["volumeClaimTemplates"][0]["spec"]["storageClassName"] == "local-nvme"


def test_manifests_in_apply_order() -> None:
    """The headless Service comes before the StatefulSet that names it."""
    kinds = [m["kind"] for m in manifests(_spec())]
    assert kinds == ["Service", "StatefulSet"]
    assert statefulset(_spec())["spec"]["serviceName"] == manifests(_spec())[0]["metadata"]["name"]


def test_voters_default_to_a_quorum_of_three_from_three_brokers() -> None:
    """Unset, 3 brokers or more get 3 voters and fewer get 1; a set count is capped at brokers."""
    assert [default_voters(n, None) for n in (1, 2, 3, 5)] == [1, 1, 3, 3]
    assert default_voters(2, 3) == 2 and default_voters(5, 1) == 1
