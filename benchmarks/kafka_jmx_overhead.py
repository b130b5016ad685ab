"""CPU cost of broker metrics (the Prometheus JMX exporter agent, `metrics = true`) on a real
local Kafka broker, measured against a peer without the agent in the same run.

Two measurements:

1. **Per scrape**, on an idle broker with the agent: the broker JVM's CPU time over
   `--scrapes` back-to-back GETs of /metrics, minus its CPU time over an equally long idle
   stretch, divided by the number of scrapes.
2. **Under load**: for each repetition, three fresh 1-broker clusters one after the other
   (order rotated): agent off, agent on but never scraped, agent on and scraped every
   `--interval` s (by a thread here, as Prometheus would). Each takes `--rate` msg/s of
   `--size` B from Kafka's producer perf tool; the broker JVM's CPU seconds over the
   steady part of the load are compared: ratios on/off, per message.

    python benchmarks/kafka_jmx_overhead.py [--repeat 3] [--rate 5000] [--interval 1]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import psutil

from greenflow_kafka import admin
from greenflow_kafka.cluster import LocalKafkaCluster
from greenflow_kafka.distribution import (
    JmxExporter,
    KafkaDistribution,
    resolve_distribution,
    resolve_jmx_exporter,
)
from greenflow_kafka.perf import run_producer_perf

HEAP = "512m"


def _cpu_s(pid: int) -> float:
    t = psutil.Process(pid).cpu_times()
    return t.user + t.system + t.children_user + t.children_system


def _scrape(target: str) -> int:
    with urllib.request.urlopen(f"http://{target}/metrics", timeout=10) as resp:
        return len(resp.read())


def per_scrape(dist: KafkaDistribution, exporter: JmxExporter, root: Path, scrapes: int) -> None:
    with LocalKafkaCluster(dist, root / "w", root / "l", heap=HEAP, metrics=exporter) as c:
        c.start()
        c.wait_ready(120)
        pid, target = c.processes()["broker-0"], c.metrics_targets["broker-0"]
        admin.create_topic(c.bootstrap_servers, "t", partitions=1, replication_factor=1)
        for _ in range(20):  # warm the agent's rule cache and the JIT
            _scrape(target)
        time.sleep(2)
        t0, cpu0 = time.monotonic(), _cpu_s(pid)
        size = 0
        for _ in range(scrapes):
            size = _scrape(target)
        busy_wall, busy_cpu = time.monotonic() - t0, _cpu_s(pid) - cpu0
        cpu1 = _cpu_s(pid)
        time.sleep(busy_wall)
        idle_cpu = _cpu_s(pid) - cpu1
    cost_ms = (busy_cpu - idle_cpu) / scrapes * 1000
    print(
        f"per scrape: {cost_ms:.2f} ms of broker CPU ({size} bytes of /metrics; "
        f"{scrapes} scrapes in {busy_wall:.2f}s: {busy_cpu:.2f} CPU-s, idle peer stretch "
        f"{idle_cpu:.2f} CPU-s)"
    )
    for interval in (1, 5, 15):
        print(f"  scraped every {interval:>2}s: {cost_ms / interval / 10:.4f} % of one core")


def loaded(
    dist: KafkaDistribution,
    exporter: JmxExporter | None,
    scrape_s: float | None,
    root: Path,
    rate: int,
    size: int,
    seconds: float,
) -> float:
    """Broker CPU seconds per million messages over the steady part of the load."""
    with LocalKafkaCluster(dist, root / "w", root / "l", heap=HEAP, metrics=exporter) as c:
        c.start()
        c.wait_ready(120)
        pid = c.processes()["broker-0"]
        admin.create_topic(c.bootstrap_servers, "load", partitions=1, replication_factor=1)
        stop = threading.Event()
        scrapes = 0

        def scraper() -> None:
            nonlocal scrapes
            target = c.metrics_targets["broker-0"]
            while not stop.wait(scrape_s):
                _scrape(target)
                scrapes += 1

        warm = 5.0
        perf = threading.Thread(
            target=run_producer_perf,
            daemon=True,
            kwargs={
                "distribution": dist,
                "bootstrap_servers": c.bootstrap_servers,
                "topic": "load",
                "rate_per_s": rate,
                "duration_s": seconds + 3.0,
                "warmup_s": warm,
                "record_size": size,
                "output_path": root / "perf.out",
            },
        )
        scraping = threading.Thread(target=scraper, daemon=True) if scrape_s else None
        perf.start()
        if scraping is not None:
            scraping.start()
        # Wait until records arrive, then let the producer settle.
        deadline = time.monotonic() + 60
        while admin.end_offsets(c.bootstrap_servers, "load") == 0:
            assert time.monotonic() < deadline, "no record within 60 s"
            time.sleep(0.2)
        time.sleep(warm)
        off0, cpu0 = admin.end_offsets(c.bootstrap_servers, "load"), _cpu_s(pid)
        time.sleep(seconds)
        off1, cpu1 = admin.end_offsets(c.bootstrap_servers, "load"), _cpu_s(pid)
        stop.set()
        perf.join(120)
    messages = off1 - off0
    return (cpu1 - cpu0) / messages * 1e6


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--rate", type=int, default=5000, help="msg/s")
    ap.add_argument("--size", type=int, default=100, help="bytes per message")
    ap.add_argument("--seconds", type=float, default=20.0, help="measured part of each load")
    ap.add_argument("--interval", type=float, default=1.0, help="scrape interval, s")
    ap.add_argument("--scrapes", type=int, default=300)
    args = ap.parse_args()
    dist = resolve_distribution()
    exporter = resolve_jmx_exporter()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        per_scrape(dist, exporter, root / "scrape", args.scrapes)
        variants = {
            "off": (None, None),
            "on, unscraped": (exporter, None),
            f"on, scraped/{args.interval:g}s": (exporter, args.interval),
        }
        got: dict[str, list[float]] = {name: [] for name in variants}
        names = list(variants)
        for rep in range(args.repeat):
            for name in names[rep % 3 :] + names[: rep % 3]:  # rotate the order
                ex, scrape_s = variants[name]
                value = loaded(
                    dist,
                    ex,
                    scrape_s,
                    root / f"{rep}-{len(got[name])}-{name[:2]}",
                    args.rate,
                    args.size,
                    args.seconds,
                )
                got[name].append(value)
                print(f"  rep {rep} {name:<18} {value:8.1f} broker CPU-s per 1e6 messages")
    base = statistics.median(got["off"])
    print(
        f"\nunder load ({args.rate} msg/s of {args.size} B, {args.seconds:g}s measured, "
        f"median of {args.repeat}):"
    )
    for name, values in got.items():
        med = statistics.median(values)
        print(
            f"  {name:<18} {med:8.1f} CPU-s/1e6 msg   ratio to off {med / base:.3f}   "
            f"(runs: {', '.join(f'{v:.1f}' for v in values)})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
