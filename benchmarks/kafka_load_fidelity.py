"""Achieved / asked message rate of kafka-ingest at 1k, 10k and 100k msg/s (1 KiB messages)
against one local broker, through `greenflow run` (messages counted from end offsets over
MEASURE). Prints a table of ratios.

    python benchmarks/kafka_load_fidelity.py [--duration 5s] [--warmup 2s]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from greenflow.store import Store

LOADS = (1000, 10000, 100000)

PLAN = """\
[experiment]
name = "kafka-load-fidelity"
output = "{output}"
baseline = "0s"
cooldown = "1s"
shuffle = false

[platform]
type = "local"

[[services]]
type = "kafka"
brokers = 1
heap = "512m"

[workload]
type = "kafka-ingest"
load = {loads}
message_size = 1024
warmup = "{warmup}"
duration = "{duration}"
min_achieved_ratio = 0.0
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", default="5s")
    ap.add_argument("--warmup", default="2s")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="gf-fidelity-") as tmp:
        root = Path(tmp)
        plan = root / "plan.toml"
        plan.write_text(
            PLAN.format(
                output=root / "out", loads=list(LOADS), warmup=args.warmup, duration=args.duration
            )
        )
        t0 = time.monotonic()
        proc = subprocess.run(
            [sys.executable, "-m", "greenflow", "-q", "run", str(plan)],
            capture_output=True,
            text=True,
            check=False,
        )
        wall = time.monotonic() - t0
        with Store.open(root / "out", create=False) as store:
            (exp,) = store.experiments()
            rows = []
            for run in store.get_runs(exp.id):
                result = store.result(run.run_id)
                window = run.window("measure")
                asked = float(run.params.get("load", 0)) if "load" in run.params else None
                rows.append((asked, run, result, window))
    print(
        f"greenflow run exit {proc.returncode}, {wall:.0f}s wall, 1 broker, 1 producer, 1 KiB messages"
    )
    print(
        f"{'asked msg/s':>12} {'achieved msg/s':>15} {'ratio':>7} {'MEASURE s':>10} {'p99 ms':>8}  status"
    )
    for asked, run, result, window in sorted(rows, key=lambda r: r[0] or 0):
        if result is None:
            err = (run.error or "").splitlines()[0] if run.error else ""
            print(
                f"{asked or 0:>12.0f} {'-':>15} {'-':>7} {'-':>10} {'-':>8}  {run.status.value}: {err}"
            )
            continue
        rate = result.achieved_rate or 0.0
        print(
            f"{asked or 0:>12.0f} {rate:>15.0f} {rate / (asked or 1):>7.3f} "
            f"{window.duration_s if window else float('nan'):>10.2f} "
            f"{result.latency_ms.get('p99', float('nan')):>8.0f}  {run.status.value}"
        )
    if proc.returncode not in (0, 1):
        print(proc.stderr[-3000:], file=sys.stderr)
    return 0 if proc.returncode in (0, 1) else proc.returncode


if __name__ == "__main__":
    raise SystemExit(main())
