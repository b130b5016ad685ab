"""The ``[workload] type = "kafka-ingest"`` section, and the settings its local and
Kubernetes runs share."""

from __future__ import annotations

import attrs

from greenflow.plan.durations import Duration
from greenflow.plan.validators import at_least, one_of, positive, ratio

#: Auto-commit period of the consumers: how stale a committed offset read at a MEASURE
#: boundary can be. Each commit is one small request to the group coordinator.
COMMIT_INTERVAL_MS = 100
#: consumed / produced in MEASURE below this is logged (it stays a metric, never a failure).
BEHIND_RATIO = 0.9
#: How long past the load's end the probe's measured round may finish, as a fraction of its
#: planned span (at least :data:`PROBE_GRACE_MIN_S`); its last records then run without load.
PROBE_GRACE = 0.25
PROBE_GRACE_MIN_S = 2.0
#: The share of the warm-up over which the producers ramp up to their rate.
RAMP_SHARE = 0.5


@attrs.frozen
class KafkaIngestConfig:
    """``[workload] type = "kafka-ingest"``. Any scalar given as a list is a sweep axis."""

    #: Total target rate over all producers, messages per second.
    load: float = attrs.field(validator=positive)
    #: Bytes per message.
    message_size: int = attrs.field(default=1024, validator=at_least(1))
    producers: int = attrs.field(default=1, validator=at_least(1))
    partitions: int = attrs.field(default=1, validator=at_least(1))
    replication: int = attrs.field(default=1, validator=at_least(1))
    acks: str | int = attrs.field(default="all", validator=one_of("0", "1", "all", "-1"))
    duration: Duration = attrs.field(default=Duration(30), validator=positive)
    warmup: Duration = Duration(5)
    #: Consumers (Kafka's ConsumerPerformance) in one group reading the topic during the run;
    #: messages consumed in MEASURE come from the group's committed offsets. Any N > 0 also
    #: runs an end-to-end latency probe (EndToEndLatency on `<topic>-e2e`, acks "all" unless
    #: acks is "1" or "0", which the probe sends with acks "1"). More consumers than
    #: partitions leaves the extra ones idle.
    consumers: int = attrs.field(default=0, validator=at_least(0))
    #: The service to load, by its plan name.
    target: str = "kafka"
    #: Extra producer settings (linger.ms, batch.size, compression.type ...).
    producer_config: dict[str, str] = attrs.field(factory=dict)
    #: A run whose achieved rate is below this fraction of `load` fails (0 turns it off).
    min_achieved_ratio: float = attrs.field(default=0.9, validator=ratio)
    #: JVM heap of each producer.
    producer_heap: str = "512m"
    #: JVM heap of each consumer and of the latency probe.
    consumer_heap: str = "256m"
    #: Producers run this long past the end of MEASURE, so the load covers the whole window.
    tail: Duration = Duration(0.5)
    #: After warm-up, wait up to this long for every producer to be back on its rate before
    #: MEASURE starts. Kafka's producer tool keeps its average since it started, so after a
    #: slow start (JVM warm-up, metadata) it sends faster than asked until it has caught up;
    #: measuring during that burst would label the run with a load it didn't have.
    #: Settling time not used runs after MEASURE as extra margin, so `tail` can stay short:
    #: after MEASURE the producers send at most settle + tail more seconds of records.
    settle: Duration = Duration(1)

    @property
    def ramp_s(self) -> float:
        """The producers reach their rate by a linear ramp over the first half of the
        warm-up: the JVMs (broker and producers) compile their hot paths under a growing
        load rather than building a backlog at full rate while cold, which MEASURE would
        then see drained as more than the asked rate."""
        return RAMP_SHARE * self.warmup

    @property
    def per_producer(self) -> float:
        """Each producer's rate, messages per second."""
        return self.load / self.producers

    @property
    def probe_acks(self) -> str:
        """The latency probe's acks: the tool takes "1" or "all" only."""
        return "all" if str(self.acks) in ("all", "-1") else "1"

    @property
    def probe_span_s(self) -> float:
        """What the probe's measured round is sized to cover: MEASURE and the tail."""
        return self.duration + self.tail

    @property
    def probe_grace_s(self) -> float:
        """How long the probe may still run once the load has ended."""
        return max(PROBE_GRACE_MIN_S, PROBE_GRACE * self.probe_span_s)


__all__ = [
    "BEHIND_RATIO",
    "COMMIT_INTERVAL_MS",
    "PROBE_GRACE",
    "PROBE_GRACE_MIN_S",
    "RAMP_SHARE",
    "KafkaIngestConfig",
]
