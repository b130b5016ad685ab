"""Seconds from starting `greenflow run` to the first MEASURE phase in the store, for a
1-broker kafka-ingest plan with the Kafka jars already cached (no baseline, warmup 1s).
Target: ≤ 15 s.

    python benchmarks/kafka_cold_start.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from greenflow.store import Store

TARGET_S = 15.0
PLAN = """\
[experiment]
name = "kafka-cold-start"
output = "{output}"
baseline = "0s"

[platform]
type = "local"

[[services]]
type = "kafka"
brokers = 1
heap = "384m"

[workload]
type = "kafka-ingest"
load = 1000
warmup = "1s"
duration = "2s"
min_achieved_ratio = 0.0
"""


def once(root: Path) -> float:
    plan = root / "plan.toml"
    plan.write_text(PLAN.format(output=root / "out"))
    t0 = time.time()
    proc = subprocess.Popen(
        [sys.executable, "-m", "greenflow", "-q", "run", str(plan)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    _, err = proc.communicate(timeout=300)
    if proc.returncode != 0:
        raise SystemExit(f"greenflow run exited {proc.returncode}:\n{err[-3000:]}")
    with Store.open(root / "out", create=False) as store:
        (exp,) = store.experiments()
        measure = [at for phase, at in store.phases(exp.id) if phase == "measure"]
    return min(measure) - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    times = []
    for i in range(args.repeat):
        with tempfile.TemporaryDirectory(prefix="gf-cold-start-") as tmp:
            times.append(once(Path(tmp)))
        print(f"run {i + 1}: {times[-1]:.1f}s to first MEASURE")
    med = statistics.median(times)
    print(
        f"median {med:.1f}s, min {min(times):.1f}s, max {max(times):.1f}s; target ≤ {TARGET_S:g}s: "
        f"{'met' if med <= TARGET_S else 'NOT met'}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
