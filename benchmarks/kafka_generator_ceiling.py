"""Highest rate kafka-ingest's load generator reaches, against Kafka's own perf script.

    /work/venv/bin/python benchmarks/kafka_generator_ceiling.py [--repeat 2] [--json]

One 1-broker local cluster serves every run. For each message size (100 B with 3,000,000
records, 1 KiB with 1,500,000: 10-20 s each, so that both JVMs reach their compiled steady
state rather than measure their start) each repetition runs, one after the other and in
alternating order (ours first in even repetitions, theirs first in odd ones):

* ``ours``: GreenFlow's load generator (:mod:`greenflow_kafka.generator`) as the kafka-ingest
  workload starts it (its default producer heap and acks, no extra producer settings, the
  same JVM options), but with ``--rate -1`` (as fast as it can) for the record count;
* ``theirs``: ``ProducerPerformance`` as ``bin/kafka-producer-perf-test.sh`` starts it:
  ``java -Xmx512M`` plus ``kafka-run-class.sh``'s default ``KAFKA_JVM_PERFORMANCE_OPTS``,
  ``-cp <libs>/*``, the same tools log configuration (warnings to stderr, what the packaged
  ``config/tools-log4j2.yaml`` does), the same topic arguments and acks, and the tool's
  default reporting interval.

Before the measured runs of each size, one run of each tool with a third of the records
warms the broker up (not measured). Each run gets a fresh topic (1 partition) and runs to
its record count; the rate is each
tool's own: ProducerPerformance's total ``records/sec``, the generator's acknowledged records
over the time from its schedule's start to its totals line (both from the first send to the
last acknowledgement, JVM start excluded). The wall time including JVM start, and the tool's CPU time per message (its
JVM's user + system time, JVM start included, from the children's rusage), are shown beside
it: on a shared host the rate follows whatever else runs, the CPU cost much less. Target:
ours ÷ theirs ≥ 1.0: the generator's ceiling must stay above what the broker sustains, which
benchmarks/kafka_max_throughput_vs_saturation.py measures (the schedule, the latency
histogram and the reports must not cost throughput).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import attrs

from greenflow_kafka.admin import create_topic, delete_topic
from greenflow_kafka.cluster import LocalKafkaCluster
from greenflow_kafka.distribution import KafkaDistribution, package_data, resolve_distribution
from greenflow_kafka.generator import (
    generator_args,
    generator_command,
    parse_generator_output,
    resolve_generator,
)
from greenflow_kafka.ingest import KafkaIngestConfig
from greenflow_kafka.perf import PRODUCER_PERFORMANCE_MAIN, ProducerPerf, parse_producer_output

TARGET_RATIO = 1.0
SIZES = {100: 3_000_000, 1024: 1_500_000}
ACKS = str(attrs.fields(KafkaIngestConfig).acks.default)
HEAP = str(attrs.fields(KafkaIngestConfig).producer_heap.default)
# kafka-run-class.sh: KAFKA_JVM_PERFORMANCE_OPTS when unset; kafka-producer-perf-test.sh sets
# KAFKA_HEAP_OPTS="-Xmx512M" when unset.
SCRIPT_JVM_OPTS = [
    "-Xmx512M",
    "-server",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35",
    "-XX:+ExplicitGCInvokesConcurrent",
    "-XX:MaxInlineLevel=15",
    "-Djava.awt.headless=true",
]


def ours(
    dist: KafkaDistribution, bootstrap: str, topic: str, records: int, size: int, heap: str = HEAP
) -> list[str]:
    args = generator_args(
        bootstrap_servers=bootstrap,
        topic=topic,
        rate=-1,
        num_records=records,
        record_size=size,
        acks=ACKS,
    )
    return generator_command(dist, resolve_generator(), args, heap=heap, name="ceiling-ours")


def rate_of(who: str, text: str) -> float | None:
    """Records per second from first send to last acknowledgement, as each tool reports it."""
    if who == "ours":
        out = parse_generator_output(text)
        if out.end is None or out.started is None or out.end.t <= out.started:
            return None
        return out.end.acked / (out.end.t - out.started)
    total = parse_producer_output(text).total
    return total.records_per_s if total is not None else None


def theirs(
    dist: KafkaDistribution, bootstrap: str, topic: str, records: int, size: int
) -> list[str]:
    return [
        str(dist.java),
        *SCRIPT_JVM_OPTS,
        f"-Dlog4j2.configurationFile={package_data('log4j2-tools.properties')}",
        "-cp",
        f"{dist.libs_dir}/*",
        PRODUCER_PERFORMANCE_MAIN,
        "--topic",
        topic,
        "--num-records",
        str(records),
        "--record-size",
        str(size),
        "--throughput",
        "-1",
        "--bootstrap-server",
        bootstrap,
        "--command-property",
        f"acks={ACKS}",
    ]


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_once(
    who: str, command: list[str], log: Path, timeout_s: float
) -> tuple[float, float, float]:
    """(records/s the tool reports for the whole run, wall seconds including JVM start, CPU
    seconds of the tool): the CPU time is that of the children reaped meanwhile, i.e. the
    tool's JVM (the broker is a child too but is still running, so it is not counted)."""
    cpu0, t0 = _children_cpu_s(), time.monotonic()
    with ProducerPerf.start(command, log) as perf:
        result = perf.wait(timeout_s)
    wall, cpu = time.monotonic() - t0, _children_cpu_s() - cpu0
    rate = rate_of(who, log.read_text(errors="replace"))
    if result.exit_code != 0 or rate is None:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
        raise SystemExit(f"{command[0]} ... exited {result.exit_code} without a summary:\n{tail}")
    return rate, wall, cpu


def run(repeat: int, root: Path, ours_heap: str = HEAP) -> list[dict[str, Any]]:
    dist = resolve_distribution()
    # Deleted topics leave the disk at once, not 60 s later inside another run.
    cluster = LocalKafkaCluster(
        dist,
        root / "work",
        root / "logs",
        brokers=1,
        heap="512m",
        overrides={"log.segment.delete.delay.ms": "0"},
    )
    rows: list[dict[str, Any]] = []
    try:
        cluster.start()
        cluster.wait_ready(120)
        bootstrap = cluster.bootstrap_servers
        n = 0
        for size, records in SIZES.items():
            # Not measured: a cold broker JVM interprets its hot paths at first (the kafka
            # service asks for a warm-up run for the same reason), which would penalise
            # whichever tool runs first.
            for who in ("theirs", "ours"):
                n += 1
                topic = f"ceiling-warmup-{n}"
                create_topic(bootstrap, topic, partitions=1, replication_factor=1)
                cmd = (
                    ours(dist, bootstrap, topic, records // 3, size, ours_heap)
                    if who == "ours"
                    else theirs(dist, bootstrap, topic, records // 3, size)
                )
                run_once(who, cmd, root / f"{topic}-{who}.log", timeout_s=600)
                delete_topic(bootstrap, topic)
            for rep in range(repeat):
                order = ["ours", "theirs"] if rep % 2 == 0 else ["theirs", "ours"]
                got: dict[str, tuple[float, float, float]] = {}
                for who in order:
                    n += 1
                    topic = f"ceiling-{n}"
                    create_topic(bootstrap, topic, partitions=1, replication_factor=1)
                    cmd = (
                        ours(dist, bootstrap, topic, records, size, ours_heap)
                        if who == "ours"
                        else theirs(dist, bootstrap, topic, records, size)
                    )
                    got[who] = run_once(who, cmd, root / f"{topic}-{who}.log", timeout_s=600)
                    delete_topic(bootstrap, topic)
                rows.append(
                    {
                        "size_bytes": size,
                        "records": records,
                        "repetition": rep,
                        "order": "/".join(order),
                        "ours_msg_per_s": got["ours"][0],
                        "theirs_msg_per_s": got["theirs"][0],
                        "ratio": got["ours"][0] / got["theirs"][0],
                        "ours_wall_s": got["ours"][1],
                        "ours_cpu_us_per_msg": 1e6 * got["ours"][2] / records,
                        "theirs_cpu_us_per_msg": 1e6 * got["theirs"][2] / records,
                        "theirs_wall_s": got["theirs"][1],
                    }
                )
    finally:
        cluster.stop()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--repeat", type=int, default=2, help="repetitions per size (order alternates)"
    )
    parser.add_argument(
        "--ours-heap", default=HEAP, help=f"heap of ours (default: the workload's, {HEAP})"
    )
    parser.add_argument("--json", action="store_true", help="print rows as JSON")
    args = parser.parse_args()
    load0 = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="greenflow-ceiling-") as tmp:
        rows = run(args.repeat, Path(tmp), args.ours_heap)
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(
        f"1-broker cluster, 1 partition, acks={ACKS}, producer heap {args.ours_heap} (ours) / -Xmx512M "
        f"(theirs); {os.cpu_count()} CPUs, load average {load0:.1f} → {os.getloadavg()[0]:.1f}\n"
    )
    print(
        f"{'size':>6} {'records':>8} {'rep':>3} {'order':<12} {'ours msg/s':>11} "
        f"{'theirs msg/s':>13} {'ours÷theirs':>11} {'wall ours/theirs':>17} "
        f"{'CPU µs/msg ours/theirs':>23}"
    )
    for r in rows:
        print(
            f"{r['size_bytes']:>5}B {r['records']:>8} {r['repetition']:>3} {r['order']:<12} "
            f"{r['ours_msg_per_s']:>11.0f} {r['theirs_msg_per_s']:>13.0f} {r['ratio']:>11.3f} "
            f"{r['ours_wall_s']:>8.1f}s/{r['theirs_wall_s']:.1f}s "
            f"{r['ours_cpu_us_per_msg']:>15.2f}/{r['theirs_cpu_us_per_msg']:.2f}"
        )
    print()
    for size in SIZES:
        ratios = [r["ratio"] for r in rows if r["size_bytes"] == size]
        ours_mean = statistics.mean(r["ours_msg_per_s"] for r in rows if r["size_bytes"] == size)
        theirs_mean = statistics.mean(
            r["theirs_msg_per_s"] for r in rows if r["size_bytes"] == size
        )
        ratio = ours_mean / theirs_mean
        verdict = "met" if ratio >= TARGET_RATIO else "MISSED"
        print(
            f"{size:>5}B  ours {ours_mean:>9.0f} msg/s  theirs {theirs_mean:>9.0f} msg/s  "
            f"ratio of means {ratio:.3f} (per pair {min(ratios):.3f}–{max(ratios):.3f})  "
            f"target ≥ {TARGET_RATIO:g}: {verdict}"
        )
        cpu_ours = statistics.mean(
            r["ours_cpu_us_per_msg"] for r in rows if r["size_bytes"] == size
        )
        cpu_theirs = statistics.mean(
            r["theirs_cpu_us_per_msg"] for r in rows if r["size_bytes"] == size
        )
        print(
            f"{'':>7}CPU per message: ours {cpu_ours:.2f} µs, theirs {cpu_theirs:.2f} µs "
            f"(ours ÷ theirs {cpu_ours / cpu_theirs:.3f}; less sensitive to other load than msg/s)"
        )


if __name__ == "__main__":
    main()
