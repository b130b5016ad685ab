"""The KafkaTarget protocol: what kafka-ingest needs of a service, checked by `greenflow
validate` and again when a run starts."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import attrs
import pytest
from click.testing import CliRunner

from greenflow.api import DeployContext, Inventory, Platform, ProcessGroups, Service
from greenflow.cli import main
from greenflow.errors import WorkloadError
from greenflow.testing import make_run_context
from greenflow_kafka import KafkaConfig, KafkaIngestConfig, KafkaIngestWorkload, KafkaService
from greenflow_kafka.target import KAFKA_TARGET_MEMBERS, KafkaTarget, missing_members


@attrs.frozen
class _WebConfig:
    brokers: int = 3


class _WebService(Service):
    """A service with everything of a Kafka target but ``kube_session``."""

    Config = _WebConfig

    @classmethod
    def broker_count(cls, config: _WebConfig) -> int:
        return config.brokers

    tools_version = "4.3.1"
    tools_image = "apache/kafka:4.3.1"

    def deploy(self, platform: Platform, inventory: Inventory, ctx: DeployContext) -> None:
        pass

    def wait_ready(self, timeout_s: float) -> None:
        pass

    def endpoints(self) -> Mapping[str, str]:
        return {"http": "127.0.0.1:8080"}

    def processes(self) -> ProcessGroups:
        return {}

    def remove(self) -> None:
        pass


def test_the_protocol_names_its_members() -> None:
    """The members a target must have are the protocol's, in its order."""
    assert KAFKA_TARGET_MEMBERS == (
        "broker_count",
        "endpoints",
        "health",
        "tools_version",
        "tools_image",
        "kube_session",
    )


def test_the_kafka_service_is_a_kafka_target() -> None:
    """KafkaService has every member, as a class and as a service."""
    assert missing_members(KafkaService) == []
    svc = KafkaService("kafka", KafkaConfig(version="4.2.0", brokers=3))
    assert isinstance(svc, KafkaTarget)
    assert KafkaService.broker_count(svc.config) == 3
    assert (svc.tools_version, svc.tools_image, svc.kube_session) == (
        "4.2.0",
        "apache/kafka:4.2.0",
        None,
    )


def test_validate_refuses_a_target_lacking_a_member() -> None:
    """validate() names the service, its class and the member it lacks."""
    workload = KafkaIngestWorkload(KafkaIngestConfig(load=100, target="web"))
    reason = workload.validate({"web": _WebConfig()})
    assert reason is not None
    assert reason.startswith("target 'web' is a _WebService (")
    assert "it lacks kube_session of greenflow_kafka.KafkaTarget" in reason


def test_validate_checks_replication_against_the_targets_brokers() -> None:
    """The broker count comes from the target's class (KafkaTarget.broker_count)."""
    workload = KafkaIngestWorkload(KafkaIngestConfig(load=100, replication=2))
    assert workload.validate({"kafka": KafkaConfig(brokers=2)}) is None
    reason = workload.validate({"kafka": KafkaConfig(brokers=1)})
    assert reason is not None and "replication 2 is more than the 1 broker(s)" in reason


def test_prepare_refuses_a_service_that_is_not_a_kafka_target(tmp_path: Path) -> None:
    """A run whose target is no Kafka target fails before it creates anything."""
    workload = KafkaIngestWorkload(KafkaIngestConfig(load=100, target="web"))
    ctx = make_run_context(tmp_path, services={"web": _WebService("web", _WebConfig())})
    with pytest.raises(WorkloadError, match="lacks kube_session"):
        workload.prepare(ctx)
    workload.clean(ctx)


def test_greenflow_validate_refuses_a_target_that_speaks_no_kafka(tmp_path: Path) -> None:
    """`greenflow validate` refuses kafka-ingest against an installed service that is no
    Kafka target (greenflow-kubernetes' scaphandre), naming it and what it lacks."""
    pytest.importorskip("greenflow_kubernetes")
    plan = tmp_path / "plan.toml"
    plan.write_text(
        f"""\
[experiment]
name = "not-a-target"
output = "{tmp_path / "out"}"

[platform]
type = "local"

[[services]]
type = "kafka"

[[services]]
type = "scaphandre"

[workload]
type = "kafka-ingest"
load = 1000
target = "scaphandre"
"""
    )
    result = CliRunner().invoke(main, ["validate", "--offline", str(plan)])
    text = result.output + (result.stderr if result.stderr_bytes is not None else "")
    assert result.exit_code != 0, text
    assert "Traceback" not in text
    assert "[workload]: target 'scaphandre' is a ScaphandreService" in text, text
    assert "tools_version, tools_image, kube_session of greenflow_kafka.KafkaTarget" in text
