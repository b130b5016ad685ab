"""What kafka-ingest's Kubernetes Jobs print, parsed: offsets and consumer-group readings
between clock marks of the reading pod, and the latency probe's round."""

from __future__ import annotations

import re
from collections.abc import Mapping

import attrs
import structlog

from greenflow_kafka.consumer import ProbeRound, first_latency_ms
from greenflow_kafka.perf import parse_end_to_end_latency_output

log = structlog.get_logger("greenflow.kafka_ingest")

#: A read's clock stamp is taken as a phase boundary only when it lies between creating its
#: Job and seeing it complete, on greenflow's clock, give or take this (clock skew).
CLOCK_TOLERANCE_S = 0.5

_OFFSET_LINE = re.compile(r"^(?P<topic>[^\s:]+):(?P<partition>\d+):(?P<offset>-?\d+)$")
_READ_MARK = re.compile(
    r"^greenflow-read-(?P<which>start|end|group-start|group-end) (?P<t>\d+(?:[.,]\d+)?)$"
)
_PROBE_MARK = re.compile(r"^greenflow-probe-(?P<which>start|end) (?P<t>\d+(?:[.,]\d+)?)$")
_CHECK_MARK = re.compile(r"^greenflow-check-(?P<which>start|end) (?P<i>\d+)$")
# kafka-consumer-groups.sh --describe (offsets): GROUP TOPIC PARTITION CURRENT-OFFSET
# LOG-END-OFFSET LAG CONSUMER-ID HOST CLIENT-ID, "-" where there is no value.
_GROUP_OFFSETS_ROW = re.compile(
    r"^(?P<group>\S+)\s+(?P<topic>\S+)\s+(?P<partition>\d+)\s+(?P<current>\d+|-)\s+"
    r"(?P<end>\d+|-)\s+(?P<lag>-?\d+|-)\s+(?P<consumer>\S+)\s+\S+\s+\S+$"
)
# kafka-consumer-groups.sh --describe --state: GROUP COORDINATOR (ID) ASSIGNMENT-STRATEGY
# STATE #MEMBERS; the strategy column is blank while the group rebalances.
_GROUP_STATE_ROW = re.compile(
    r"^(?P<group>\S+)\s+\S+\s+\(-?\d+\)\s+(?:\S+\s+)?(?P<state>[A-Za-z]+)\s+(?P<members>\d+)$"
)


def _stamp(match: re.Match[str]) -> float:
    # EPOCHREALTIME follows the locale's decimal separator.
    return float(match.group("t").replace(",", "."))


@attrs.frozen
class OffsetsReading:
    """End offsets by partition, read between ``started`` and ``ended`` (the reading pod's
    clock, Unix seconds)."""

    offsets: Mapping[int, int]
    started: float | None
    ended: float | None

    @property
    def total(self) -> int:
        return sum(self.offsets.values())


def parse_offsets_output(text: str, topic: str) -> OffsetsReading | None:
    """What an offsets Job printed; None when it printed no offset of ``topic``."""
    offsets: dict[int, int] = {}
    marks: dict[str, float] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if m := _READ_MARK.match(line):
            marks[m.group("which")] = _stamp(m)
        elif (m := _OFFSET_LINE.match(line)) and m.group("topic") == topic:
            offsets[int(m.group("partition"))] = int(m.group("offset"))
    if not offsets:
        return None
    return OffsetsReading(offsets, marks.get("start"), marks.get("end"))


@attrs.frozen
class GroupReading:
    """What ``kafka-consumer-groups.sh --describe`` printed about ``group`` on one topic.

    ``committed`` has the partitions with a committed offset; ``log_end`` the log-end offset
    the tool read beside each commit (the same instant, as far as the lag is concerned);
    ``assigned`` the partitions a member owns. ``state`` (lower case, e.g. ``"stable"``) and
    ``members`` come from ``--state`` and are None without it. ``started`` and ``ended`` are
    the reading pod's clock around the read, when it printed them.
    """

    committed: Mapping[int, int]
    log_end: Mapping[int, int]
    assigned: frozenset[int]
    state: str | None = None
    members: int | None = None
    rebalancing: bool = False
    started: float | None = None
    ended: float | None = None

    @property
    def total(self) -> int:
        return sum(self.committed.values())

    def describe(self, want: int) -> str:
        return (
            f"state {self.state or '?'}, {self.members if self.members is not None else '?'}"
            f"/{want} members, partitions assigned {sorted(self.assigned)}, committed "
            f"{sorted(self.committed)}{' (rebalancing)' if self.rebalancing else ''}"
        )


def parse_group_output(text: str, group: str, topic: str) -> GroupReading:
    """Parse ``kafka-consumer-groups.sh --describe [--state]`` output about ``group`` and
    ``topic`` (other lines, a missing group's error included, are ignored)."""
    committed: dict[int, int] = {}
    log_end: dict[int, int] = {}
    assigned: set[int] = set()
    state: str | None = None
    members: int | None = None
    rebalancing = False
    marks: dict[str, float] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if m := _READ_MARK.match(line):
            marks[m.group("which")] = _stamp(m)
        elif (m := _GROUP_OFFSETS_ROW.match(line)) and m.group("group") == group:
            if m.group("topic") != topic:
                continue
            partition = int(m.group("partition"))
            if m.group("current") != "-":
                committed[partition] = int(m.group("current"))
            if m.group("end") != "-":
                log_end[partition] = int(m.group("end"))
            if m.group("consumer") != "-":
                assigned.add(partition)
        elif (m := _GROUP_STATE_ROW.match(line)) and m.group("group") == group:
            state, members = m.group("state").lower(), int(m.group("members"))
        elif "is rebalancing" in line:
            rebalancing = True
    return GroupReading(
        committed,
        log_end,
        frozenset(assigned),
        state,
        members,
        rebalancing,
        marks.get("group-start"),
        marks.get("group-end"),
    )


def last_group_check(text: str) -> str | None:
    """The output of the last complete look of
    :func:`~greenflow_kafka.ingest.jobs.group_check_command`, or None."""
    blocks: dict[str, list[str]] = {}
    current: str | None = None
    last: str | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if m := _CHECK_MARK.match(line):
            if m.group("which") == "start":
                current = m.group("i")
                blocks[current] = []
            elif current == m.group("i"):
                last, current = current, None
        elif current is not None:
            blocks[current].append(raw)
    return "\n".join(blocks[last]) if last is not None else None


def parse_probe_output(text: str, records: int) -> ProbeRound:
    """A :class:`~greenflow_kafka.consumer.ProbeRound` from what a probe pod printed
    (:func:`~greenflow_kafka.ingest.jobs.probe_command`), parsed by the local probe's own
    parsers. Times are the pod's clock: launched when the script started the tool, ended
    when it exited; the records after the first are placed back to back before the end at
    the round's own mean latency (the local probe does the same when it did not see the
    round start)."""
    marks: dict[str, float] = {}
    for raw in text.splitlines():
        if m := _PROBE_MARK.match(raw.strip()):
            marks[m.group("which")] = _stamp(m)
    stats = parse_end_to_end_latency_output(text, records)
    ended = marks.get("end")
    sending_from = (
        ended - records * stats.avg_ms / 1000 if stats is not None and ended is not None else None
    )
    return ProbeRound(
        records=records,
        launched_at=marks.get("start", 0.0),
        sending_from=sending_from,
        ended_at=ended or 0.0,
        exit_code=0 if stats is not None else None,
        stats=stats,
        first_ms=first_latency_ms(text),
    )


@attrs.frozen
class BoundaryRead:
    """One offsets read and its timing: created and seen complete on greenflow's clock
    (Unix seconds), ``lag`` between the two."""

    reading: OffsetsReading
    committed: GroupReading | None
    lag: float
    created: float
    seen: float

    @property
    def boundary_on_read_clock(self) -> bool:
        """Whether the read's own stamp (the pod's clock when the offsets were in hand) is
        plausible on greenflow's clock: between creating the Job and seeing it complete.
        On one machine the clocks are the same; across nodes NTP keeps them within
        milliseconds, and a node whose clock is off by more fails this check."""
        t = self.reading.ended
        return (
            t is not None and self.created - CLOCK_TOLERANCE_S <= t <= self.seen + CLOCK_TOLERANCE_S
        )

    @property
    def stamp_lag(self) -> float:
        """From creating the Job to the boundary it marks, on greenflow's clock."""
        return self.boundary() - self.created

    def boundary(self) -> float:
        """The phase boundary this read marks: its own stamp when plausible (so MEASURE on
        greenflow's clock is the counting window), else when it was seen complete."""
        if self.boundary_on_read_clock:
            assert self.reading.ended is not None
            return min(self.reading.ended, self.seen)
        log.warning(
            "kafka_ingest.read_clock_implausible",
            read_ended=self.reading.ended,
            job_created=round(self.created, 3),
            job_seen_complete=round(self.seen, 3),
        )
        return self.seen


__all__ = [
    "CLOCK_TOLERANCE_S",
    "BoundaryRead",
    "GroupReading",
    "OffsetsReading",
    "last_group_check",
    "parse_group_output",
    "parse_offsets_output",
    "parse_probe_output",
]
