"""The most records/s one instance of greenflow-theodolite's load generator sends on this
machine, against Theodolite's design figure of 150,000 records/s per generator instance
(its deployments run ceil(load / 150,000) instances), as a ratio (issue 14).

    .venv/bin/python benchmarks/theodolite_generator_ceiling.py [--ask 400000] [--seconds 20]

One local broker (Kafka's own, the distribution greenflow-kafka resolves), the schema
registry stand-in, and one generator asked for far more than it can send (``NUM_SENSORS``
sensors every second, ``THREADS`` = 4 as Theodolite's default): its rate is the records it
reports sent over the second half of the run, once the JVM is warm. The broker shares the
machine's 2 cores with it, as it would with a single-host plan; the figure is what one
instance reaches here, not what it would alone.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from greenflow_kafka import create_topic, resolve_distribution
from greenflow_kafka.cluster import LocalKafkaCluster
from greenflow_theodolite.apps import GENERATOR_MAIN, app_command, resolve_apps
from greenflow_theodolite.config import RECORDS_PER_GENERATOR
from greenflow_theodolite.registry import SchemaRegistry

_LINE = re.compile(r"greenflow-theodolite-generator t=(\d+) sent=(\d+)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ask", type=int, default=400_000, help="records/s asked (sensors/s)")
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--threads", type=int, default=4)
    args = ap.parse_args()
    distribution = resolve_distribution()
    build = resolve_apps(kafka_version=distribution.version)
    with tempfile.TemporaryDirectory(prefix="gf-theo-gen-") as tmp, SchemaRegistry() as reg:
        root = Path(tmp)
        cluster = LocalKafkaCluster(distribution, root / "work", root / "logs", brokers=1)
        cluster.start()
        try:
            cluster.wait_ready(120)
            create_topic(cluster.bootstrap_servers, "input", partitions=12)
            env = {
                **os.environ,
                "KAFKA_BOOTSTRAP_SERVERS": cluster.bootstrap_servers,
                "SCHEMA_REGISTRY_URL": reg.url,
                "NUM_SENSORS": str(args.ask),
                "PERIOD_MS": "1000",
                "THREADS": str(args.threads),
            }
            cmd = app_command(distribution, build, GENERATOR_MAIN, heap="1g")
            log = root / "generator.log"
            with log.open("wb") as out:
                proc = subprocess.Popen(
                    cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
                )
            time.sleep(args.seconds)
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=60)
            points = [
                (int(m.group(1)) / 1000, int(m.group(2)))
                for m in _LINE.finditer(log.read_text(errors="replace"))
            ]
        finally:
            cluster.stop()
    if len(points) < 4:
        print(f"too few progress lines from the generator ({len(points)})")
        return 1
    half = points[len(points) // 2 :]
    (t0, n0), (t1, n1) = half[0], half[-1]
    rate = (n1 - n0) / (t1 - t0)
    print(
        f"asked {args.ask:,} records/s of one generator instance ({args.threads} threads); "
        f"sent {rate:,.0f} records/s over its last {t1 - t0:.0f} s"
    )
    print(
        f"÷ Theodolite's design figure {RECORDS_PER_GENERATOR:,} records/s per instance = "
        f"{rate / RECORDS_PER_GENERATOR:.3f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
