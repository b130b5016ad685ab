"""Topic administration and offsets through confluent-kafka, each call bounded by a deadline.

Every function takes the bootstrap servers and optional extra client settings
(``client_config``, e.g. security options) and opens its own short-lived client, so that
callers need no client lifecycle of their own. Waits poll metadata; none sleeps a fixed time.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from greenflow_kafka.errors import KafkaAdminError


class AdminSession:
    """A confluent-kafka ``AdminClient`` that is destroyed when its ``with`` block ends.

    librdkafka has no close(): a client lives as long as a reference to it, and keeps
    reconnecting (and logging) meanwhile. An exception's traceback keeps the frames that
    raised it alive, so a client held in a local could outlive the cluster it talks to;
    held here, it is dropped on exit whatever escapes.
    """

    def __init__(
        self, bootstrap_servers: str, client_config: Mapping[str, Any] | None = None
    ) -> None:
        from confluent_kafka.admin import AdminClient

        conf: dict[str, Any] = {
            "bootstrap.servers": bootstrap_servers,
            # Idle connections closed by the broker are normal, not worth a log line.
            "log.connection.close": False,
            # librdkafka's info lines (e.g. "Purging unserved events" when a short-lived client
            # closes) go to stderr and say nothing a caller needs; warnings and errors still do.
            "log_level": 4,
        }
        conf.update(client_config or {})
        self._client: Any = AdminClient(conf)

    @property
    def client(self) -> Any:
        if self._client is None:
            msg = "this AdminSession is closed"
            raise KafkaAdminError(msg)
        return self._client

    def close(self) -> None:
        self._client = None

    def __enter__(self) -> AdminSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def kafka_error(exc: BaseException) -> tuple[Any, str]:
    """The KafkaError inside a KafkaException (or None) and a readable text."""
    err: Any = exc.args[0] if exc.args else None
    if hasattr(err, "code") and hasattr(err, "str"):
        return err, f"{err.name()}: {err.str()}"
    return None, f"{type(exc).__name__}: {exc}"


def create_topic(
    bootstrap_servers: str,
    topic: str,
    *,
    partitions: int = 1,
    replication_factor: int = 1,
    config: Mapping[str, str] | None = None,
    exist_ok: bool = False,
    timeout_s: float = 30.0,
    client_config: Mapping[str, Any] | None = None,
) -> None:
    """Create ``topic`` and wait until every partition has a leader.

    Raises ``KafkaAdminError`` if the cluster refuses (e.g. replication above the number of
    brokers), if the topic exists and ``exist_ok`` is false, or at the deadline.
    """
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import NewTopic  # type: ignore[attr-defined]  # re-exported from cimpl without __all__

    deadline = time.monotonic() + timeout_s
    new = NewTopic(
        topic,
        num_partitions=partitions,
        replication_factor=replication_factor,
        config=dict(config or {}),
    )
    with AdminSession(bootstrap_servers, client_config) as session:
        future = session.client.create_topics(
            [new], operation_timeout=timeout_s, request_timeout=timeout_s
        )[topic]
        try:
            future.result(timeout=timeout_s)
        except KafkaException as exc:
            err, text = kafka_error(exc)
            if not (exist_ok and err is not None and err.code() == KafkaError.TOPIC_ALREADY_EXISTS):
                msg = (
                    f"creating topic {topic!r} (partitions={partitions}, replication={replication_factor}) "
                    f"on {bootstrap_servers} failed: {text}"
                )
                raise KafkaAdminError(msg) from exc
        except TimeoutError as exc:
            msg = f"creating topic {topic!r} on {bootstrap_servers} got no answer within {timeout_s:g}s"
            raise KafkaAdminError(msg) from exc

        last = "no metadata yet"
        while True:
            remaining = deadline - time.monotonic()
            try:
                md = session.client.list_topics(topic=topic, timeout=max(0.5, min(5.0, remaining)))
                tmd = md.topics.get(topic)
                if tmd is None or tmd.error is not None:
                    last = f"topic error {tmd.error if tmd else 'missing'}"
                else:
                    leaders = {p: pm.leader for p, pm in tmd.partitions.items()}
                    if len(leaders) >= partitions and all(
                        leader >= 0 for leader in leaders.values()
                    ):
                        return
                    last = f"partition leaders {dict(sorted(leaders.items()))}"
            except KafkaException as exc:
                last = kafka_error(exc)[1]
            if time.monotonic() >= deadline:
                msg = (
                    f"topic {topic!r} was created on {bootstrap_servers} but its {partitions} partition(s) "
                    f"had no leaders after {timeout_s:g}s; last seen: {last}"
                )
                raise KafkaAdminError(msg)
            time.sleep(0.1)  # poll interval


def delete_topic(
    bootstrap_servers: str,
    topic: str,
    *,
    missing_ok: bool = True,
    timeout_s: float = 30.0,
    client_config: Mapping[str, Any] | None = None,
) -> None:
    """Delete ``topic`` and wait until cluster metadata no longer lists it."""
    from confluent_kafka import KafkaError, KafkaException

    deadline = time.monotonic() + timeout_s
    with AdminSession(bootstrap_servers, client_config) as session:
        future = session.client.delete_topics(
            [topic], operation_timeout=timeout_s, request_timeout=timeout_s
        )[topic]
        try:
            future.result(timeout=timeout_s)
        except KafkaException as exc:
            err, text = kafka_error(exc)
            if not (
                missing_ok and err is not None and err.code() == KafkaError.UNKNOWN_TOPIC_OR_PART
            ):
                msg = f"deleting topic {topic!r} on {bootstrap_servers} failed: {text}"
                raise KafkaAdminError(msg) from exc
        except TimeoutError as exc:
            msg = f"deleting topic {topic!r} on {bootstrap_servers} got no answer within {timeout_s:g}s"
            raise KafkaAdminError(msg) from exc

        last = "no metadata yet"
        while True:
            remaining = deadline - time.monotonic()
            try:
                # All-topics metadata: asking for the one topic could auto-create it again on
                # brokers with auto.create.topics.enable=true.
                md = session.client.list_topics(timeout=max(0.5, min(5.0, remaining)))
                if topic not in md.topics:
                    return
                last = "topic still listed"
            except KafkaException as exc:
                last = kafka_error(exc)[1]
            if time.monotonic() >= deadline:
                msg = f"topic {topic!r} still exists on {bootstrap_servers} {timeout_s:g}s after deletion; last seen: {last}"
                raise KafkaAdminError(msg)
            time.sleep(0.1)  # poll interval


def topic_exists(
    bootstrap_servers: str,
    topic: str,
    *,
    timeout_s: float = 10.0,
    client_config: Mapping[str, Any] | None = None,
) -> bool:
    from confluent_kafka import KafkaException

    with AdminSession(bootstrap_servers, client_config) as session:
        try:
            md = session.client.list_topics(timeout=timeout_s)
        except KafkaException as exc:
            msg = f"listing topics on {bootstrap_servers} failed: {kafka_error(exc)[1]}"
            raise KafkaAdminError(msg) from exc
        return topic in md.topics


def partition_end_offsets(
    bootstrap_servers: str,
    topic: str,
    *,
    timeout_s: float = 10.0,
    client_config: Mapping[str, Any] | None = None,
) -> dict[int, int]:
    """High watermark of every partition of ``topic`` (partition → offset)."""
    from confluent_kafka import KafkaException, TopicPartition
    from confluent_kafka.admin import OffsetSpec  # type: ignore[attr-defined]  # re-exported without __all__

    with AdminSession(bootstrap_servers, client_config) as session:
        try:
            md = session.client.list_topics(topic=topic, timeout=timeout_s)
            tmd = md.topics.get(topic)
            if tmd is None or tmd.error is not None:
                msg = f"cannot read offsets of topic {topic!r} on {bootstrap_servers}: {tmd.error if tmd else 'no such topic'}"
                raise KafkaAdminError(msg)
            latest = OffsetSpec.latest()  # type: ignore[no-untyped-call]  # confluent-kafka leaves it unannotated
            request = {TopicPartition(topic, p): latest for p in tmd.partitions}
            futures = session.client.list_offsets(request, request_timeout=timeout_s)
            return {
                tp.partition: fut.result(timeout=timeout_s).offset for tp, fut in futures.items()
            }
        except KafkaException as exc:
            msg = f"reading end offsets of topic {topic!r} on {bootstrap_servers} failed: {kafka_error(exc)[1]}"
            raise KafkaAdminError(msg) from exc
        except TimeoutError as exc:
            msg = f"reading end offsets of topic {topic!r} on {bootstrap_servers} got no answer within {timeout_s:g}s"
            raise KafkaAdminError(msg) from exc


def end_offsets(
    bootstrap_servers: str,
    topic: str,
    *,
    timeout_s: float = 10.0,
    client_config: Mapping[str, Any] | None = None,
) -> int:
    """Sum of the high watermarks of ``topic``'s partitions: records written since it was created
    (as long as nothing was deleted or compacted)."""
    offsets = partition_end_offsets(
        bootstrap_servers, topic, timeout_s=timeout_s, client_config=client_config
    )
    return sum(offsets.values())


__all__ = [
    "AdminSession",
    "create_topic",
    "delete_topic",
    "end_offsets",
    "kafka_error",
    "partition_end_offsets",
    "topic_exists",
]
