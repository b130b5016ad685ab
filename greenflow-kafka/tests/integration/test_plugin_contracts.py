"""The kafka service and the kafka-ingest workload against greenflow.testing's contracts, on a real broker."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import pytest

from greenflow.api import Service
from greenflow.plan.durations import Duration
from greenflow.testing import ServiceContract, WorkloadContract, make_deploy_context
from greenflow_kafka.distribution import KafkaDistribution
from greenflow_kafka.ingest import KafkaIngestConfig, KafkaIngestWorkload
from greenflow_kafka.service import KafkaConfig, KafkaService


class TestKafkaService(ServiceContract):
    service_class = KafkaService
    entry_point_name = "kafka"
    service_name = "kafka"
    remove_grace_s = 15.0

    @pytest.fixture
    def config(self, kafka_distribution: KafkaDistribution) -> KafkaConfig:
        return KafkaConfig(version=kafka_distribution.version, brokers=1, heap="384m")


class TestKafkaIngestWorkload(WorkloadContract):
    workload_class = KafkaIngestWorkload
    entry_point_name = "kafka-ingest"
    remove_grace_s = 15.0

    @pytest.fixture
    def config(self) -> KafkaIngestConfig:
        # min_achieved_ratio 0: the contract checks the shape of a run, not this host's speed.
        return KafkaIngestConfig(
            load=1000,
            message_size=512,
            duration=Duration(3),
            warmup=Duration(1),
            tail=Duration(1),
            producer_heap="256m",
            min_achieved_ratio=0.0,
        )

    @pytest.fixture
    def services(self, ingest_services: Mapping[str, Service]) -> Mapping[str, Service]:
        return ingest_services


@pytest.fixture(scope="module")
def ingest_services(
    kafka_distribution: KafkaDistribution, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Mapping[str, Service]]:
    """One real 1-broker cluster named ``kafka`` shared by the workload's contract tests (each
    run creates and deletes its own topic), removed after the last one."""
    from greenflow.plugins import Kind, load

    tmp_path = tmp_path_factory.mktemp("kafka-ingest-contract")
    platform_cls = load(Kind.PLATFORM, "local", where="test_plugin_contracts")
    platform = platform_cls(platform_cls.Config())
    inventory = platform.acquire(make_deploy_context(tmp_path / "platform"))
    svc = KafkaService(
        "kafka", KafkaConfig(version=kafka_distribution.version, brokers=1, heap="384m")
    )
    try:
        svc.deploy(platform, inventory, make_deploy_context(tmp_path / "service"))
        svc.wait_ready(120)
        yield {"kafka": svc}
    finally:
        svc.remove()
        platform.release()
