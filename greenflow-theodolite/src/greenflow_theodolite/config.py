"""The ``theodolite`` workload's settings (the plan's ``[workload]`` table), checked when the
plan is read. docs/theodolite.md lists every key."""

from __future__ import annotations

import math
from typing import Any

import attrs

from greenflow.plan.durations import Duration
from greenflow.plan.validators import at_least, non_negative, positive

#: The use cases (docs/theodolite.md, "The use cases").
USE_CASES = ("uc1", "uc2", "uc3", "uc4")
#: Stream-processing engines, and the use cases each implements here. Flink: UC1, the case
#: the system GreenFlow replaces documented, on the local platform (one JVM running a Flink
#: MiniCluster); Theodolite's Flink UC2-UC4 are not built.
ENGINES = {"kstreams": USE_CASES, "flink": ("uc1",)}
#: Theodolite's design figure: one load generator instance produces at most this many
#: records/s (its deployments use ceil(load / 150,000) instances).
RECORDS_PER_GENERATOR = 150_000
#: Theodolite's lag-trend SLO threshold (records/s) and its warm-up.
DEFAULT_SLO_THRESHOLD = 2000.0
#: On Kubernetes: Theodolite's published images, pinned to its newest release (v0.9.0,
#: 2023-07-18; its CI tags images with the git tag), and the schema registry its chart
#: deploys. GreenFlow's own builds of the same use cases (data/apps) are interchangeable: same
#: environment, topics and consumer group (scripts/kube-node builds them under these names).
IMAGE_TAG = "v0.9.0"
APP_IMAGE = "ghcr.io/cau-se/theodolite-{uc}-kstreams-app:" + IMAGE_TAG
GENERATOR_IMAGE = "ghcr.io/cau-se/theodolite-{uc}-workload-generator:" + IMAGE_TAG
REGISTRY_IMAGE = "docker.io/confluentinc/cp-schema-registry:5.4.0"


def _one_of(choices: tuple[str, ...]) -> Any:
    def check(_inst: Any, attribute: attrs.Attribute[Any], value: str) -> None:
        if value not in choices:
            raise ValueError(
                f"{attribute.name}: expected one of {', '.join(choices)}, got {value!r}"
            )

    return check


def _engine(inst: TheodoliteConfig, attribute: attrs.Attribute[Any], value: str) -> None:
    if value not in ENGINES:
        raise ValueError(f"{attribute.name}: expected one of {', '.join(ENGINES)}, got {value!r}")
    if inst.use_case not in ENGINES[value]:
        raise ValueError(
            f"{attribute.name}: {value} implements {', '.join(ENGINES[value])} here, not "
            f'{inst.use_case}; use engine = "kstreams"'
        )


@attrs.frozen
class TheodoliteConfig:
    """``[workload] type = "theodolite"``: one Theodolite use case under a load."""

    #: uc1 (store), uc2 (downsample), uc3 (hour-of-day aggregation), uc4 (hierarchy).
    use_case: str = attrs.field(validator=_one_of(USE_CASES))
    #: The load, records per second (all generator instances together).
    load: int = attrs.field(validator=positive)
    #: The stream-processing engine: kstreams, or flink (UC1, local platform).
    engine: str = attrs.field(default="kstreams", validator=_engine)
    #: Instances of the use case's application (processes locally, replicas on Kubernetes;
    #: with flink, instances × threads is the parallelism of one local MiniCluster).
    instances: int = attrs.field(default=1, validator=at_least(1))
    #: Stream threads per instance (``NUM_STREAM_THREADS``).
    threads: int = attrs.field(default=1, validator=at_least(1))
    #: Partitions of the input topic: at most one consumer thread works on each.
    partitions: int = attrs.field(default=12, validator=at_least(1))
    #: The Kafka-API service the records go through (a kafka-ingest target).
    target: str = "kafka"
    #: Sensors; each sends one record every ``period`` (default: load × period).
    sensors: int | None = attrs.field(default=None, validator=attrs.validators.optional(positive))
    #: How often each sensor sends (Theodolite's ``PERIOD_MS``).
    period: Duration = attrs.field(default=Duration(1.0), validator=positive)
    #: The value every record carries, W (Theodolite's ``VALUE``).
    value: float = attrs.field(default=10.0, validator=non_negative)
    #: Load generator instances (default: ceil(load / 150,000), Theodolite's rule).
    generators: int | None = attrs.field(
        default=None, validator=attrs.validators.optional(positive)
    )
    #: Threads per generator instance (``THREADS``).
    generator_threads: int = attrs.field(default=4, validator=at_least(1))
    #: Time under load before MEASURE (Theodolite's SLO warm-up: lag before it is ignored).
    warmup: Duration = attrs.field(default=Duration(60), validator=non_negative)
    #: MEASURE: energy, throughput and the lag trend are taken over it.
    duration: Duration = attrs.field(default=Duration(120), validator=positive)
    #: Consumer lag is read this often (Theodolite's Prometheus step: 5 s).
    lag_interval: Duration = attrs.field(default=Duration(5), validator=positive)
    #: The application commits its offsets this often (``COMMIT_INTERVAL_MS``): the lag is
    #: read from the commits, so they must come more often than the reads.
    commit_interval: Duration = attrs.field(default=Duration(1), validator=positive)
    #: The lag-trend SLO: the lag's least-squares slope over MEASURE below this, records/s.
    slo_threshold: float = attrs.field(default=DEFAULT_SLO_THRESHOLD, validator=positive)
    #: UC2: the tumbling window.
    downsample_interval: Duration = attrs.field(default=Duration(60), validator=positive)
    #: UC3: the hopping window's size and advance.
    aggregation_duration: Duration = attrs.field(default=Duration(30 * 86400), validator=positive)
    aggregation_advance: Duration = attrs.field(default=Duration(86400), validator=positive)
    #: UC4: levels of groups above the sensors, the emit period and the grace period.
    nested_groups: int = attrs.field(default=1, validator=at_least(1))
    emit_period: Duration = attrs.field(default=Duration(5), validator=positive)
    grace_period: Duration = attrs.field(default=Duration(5), validator=positive)
    #: Heap of each application and generator JVM.
    heap: str = "512m"
    #: Kubernetes only: the images (default: Theodolite's, :data:`APP_IMAGE` & co.).
    app_image: str | None = None
    generator_image: str | None = None
    registry_image: str = REGISTRY_IMAGE
    #: Kubernetes only: each application pod's CPU and memory (requests = limits; Theodolite's
    #: ``ResourceLimitPatcher``), e.g. "1000m" and "4Gi"; unset: no limit.
    cpu: str | None = None
    memory: str | None = None
    #: Kubernetes only: the roles whose nodes run the applications and the generators.
    app_role: str = "worker"
    generator_role: str = "worker"

    def __attrs_post_init__(self) -> None:
        consumers = self.instances * self.threads
        if consumers > self.partitions:
            raise ValueError(
                f"instances: {self.instances} instance(s) × {self.threads} thread(s) = "
                f"{consumers} consumers for {self.partitions} partitions: the extra ones "
                "would idle; raise partitions or lower instances"
            )
        if self.load > self.generator_count * RECORDS_PER_GENERATOR:
            raise ValueError(
                f"load: {self.load} records/s from {self.generator_count} generator "
                f"instance(s) is more than {RECORDS_PER_GENERATOR:,} each (Theodolite's design "
                "figure); raise generators or leave it out (ceil(load / 150,000))"
            )
        if self.sensors is not None and abs(self.sensors / float(self.period) - self.load) > 0.5:
            raise ValueError(
                f"sensors: {self.sensors} sensors every {float(self.period):g} s send "
                f"{self.sensors / float(self.period):g} records/s, not load = {self.load}; "
                "leave sensors out (load × period) or make them agree"
            )
        if self.sensor_count < self.generator_count:
            raise ValueError(
                f"load: {self.sensor_count} sensor(s) cannot be split over "
                f"{self.generator_count} generator instances; raise load or lower generators"
            )

    @property
    def sensor_count(self) -> int:
        """Sensors: ``sensors``, else load × period (records/s = sensors / period)."""
        if self.sensors is not None:
            return self.sensors
        return max(1, round(self.load * float(self.period)))

    @property
    def generator_count(self) -> int:
        if self.generators is not None:
            return self.generators
        return max(1, math.ceil(self.load / RECORDS_PER_GENERATOR))

    @property
    def app_image_ref(self) -> str:
        return self.app_image or APP_IMAGE.format(uc=self.use_case)

    @property
    def generator_image_ref(self) -> str:
        return self.generator_image or GENERATOR_IMAGE.format(uc=self.use_case)

    @property
    def application_id(self) -> str:
        """The application id, also its consumer group (Theodolite's naming)."""
        return f"theodolite-{self.use_case}-application-0.0.1"
