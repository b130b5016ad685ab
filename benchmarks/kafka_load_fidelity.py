"""Achieved / asked message rate of kafka-ingest from 1k to 200k msg/s (1 KiB messages)
against one local broker, through `greenflow run` (messages counted from end offsets over
MEASURE), and the broker's saturation: the most it delivered at any asked load, when the
highest load was more than it took (achieved ÷ asked below 0.95 there). Prints a table of
ratios and that rate.

Why the peak and not the rate at the highest load: past its capacity a broker delivers
*less* the more it is asked (measured here: 155k msg/s sustained at 155k asked, 134k
achieved at 160k asked, 124k at 200k) — a backlog of full producer batches, retried and
expiring requests and a longer GC take capacity from the work itself. The rate at the top
of the sweep would read that collapse as the capacity. The sweep is finer near the top so
that the peak is found within about 15 %.

    python benchmarks/kafka_load_fidelity.py [--duration 8s] [--warmup 6s] [--loads 1000,...]

The warm-up matches examples/kafka-max-throughput.toml's (the producers ramp up over its
first half), so that benchmarks/kafka_max_throughput_vs_saturation.py compares like with like.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from greenflow.store import Store

LOADS = (1000, 10000, 100000, 125000, 150000, 175000, 200000)
#: Achieved ÷ asked below this at a load means the broker was saturated there.
SATURATED_BELOW = 0.95

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
# As examples/kafka-max-throughput.toml: a deleted topic leaves the disk before the next run.
overrides = {{ "log.segment.delete.delay.ms" = "0" }}

[workload]
type = "kafka-ingest"
load = {loads}
message_size = 1024
warmup = "{warmup}"
duration = "{duration}"
min_achieved_ratio = 0.0
"""


def run(
    loads: tuple[int, ...] = LOADS, warmup: str = "6s", duration: str = "8s"
) -> tuple[int, float, list[dict[str, Any]]]:
    """Run the sweep; (greenflow's exit code, wall seconds, one row per run)."""
    with tempfile.TemporaryDirectory(prefix="gf-fidelity-") as tmp:
        root = Path(tmp)
        plan = root / "plan.toml"
        plan.write_text(
            PLAN.format(output=root / "out", loads=list(loads), warmup=warmup, duration=duration)
        )
        t0 = time.monotonic()
        proc = subprocess.run(
            [sys.executable, "-m", "greenflow", "-q", "run", str(plan)],
            capture_output=True,
            text=True,
            check=False,
        )
        wall = time.monotonic() - t0
        if proc.returncode not in (0, 1):
            print(proc.stderr[-3000:], file=sys.stderr)
        rows = []
        with Store.open(root / "out", create=False) as store:
            (exp,) = store.experiments()
            for r in store.get_runs(exp.id):
                result = store.result(r.run_id)
                window = r.window("measure")
                rows.append(
                    {
                        "asked": float(r.params["load"]),
                        "status": r.status.value,
                        "error": (r.error or "").splitlines()[0] if r.error else "",
                        "achieved": result.achieved_rate if result else None,
                        "p99_ms": result.latency_ms.get("p99") if result else None,
                        "measure_s": window.duration_s if window else None,
                    }
                )
    return proc.returncode, wall, sorted(rows, key=lambda row: row["asked"])


def saturation(rows: list[dict[str, Any]]) -> float | None:
    """The highest achieved rate of the sweep, when the broker was saturated at its highest
    load (achieved ÷ asked below SATURATED_BELOW there); None when it kept up with every
    load (the sweep did not reach its capacity)."""
    done = [r for r in rows if r["achieved"] is not None]
    if not done:
        return None
    top = max(done, key=lambda r: r["asked"])
    if top["achieved"] / top["asked"] >= SATURATED_BELOW:
        return None
    return float(max(r["achieved"] for r in done))


def report(rows: list[dict[str, Any]]) -> None:
    print(
        f"{'asked msg/s':>12} {'achieved msg/s':>15} {'ratio':>7} {'MEASURE s':>10} {'p99 ms':>8}  status"
    )
    for r in rows:
        if r["achieved"] is None:
            print(
                f"{r['asked']:>12.0f} {'-':>15} {'-':>7} {'-':>10} {'-':>8}  {r['status']}: {r['error']}"
            )
            continue
        print(
            f"{r['asked']:>12.0f} {r['achieved']:>15.0f} {r['achieved'] / r['asked']:>7.3f} "
            f"{r['measure_s'] or float('nan'):>10.2f} {r['p99_ms'] or float('nan'):>8.1f}  {r['status']}"
        )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", default="8s")
    ap.add_argument("--warmup", default="6s")
    ap.add_argument("--loads", default=",".join(str(n) for n in LOADS))
    args = ap.parse_args()
    loads = tuple(int(x) for x in args.loads.split(","))
    code, wall, rows = run(loads, args.warmup, args.duration)
    print(f"greenflow run exit {code}, {wall:.0f}s wall, 1 broker, 1 producer, 1 KiB messages")
    report(rows)
    sat = saturation(rows)
    print(
        f"saturation: {sat:.0f} msg/s (the most achieved at any load)"
        if sat is not None
        else "saturation: not reached (the broker kept up with every load; add a higher one)"
    )
    return 0 if code in (0, 1) else code


if __name__ == "__main__":
    raise SystemExit(main())
