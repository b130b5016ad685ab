"""Wall time outside MEASURE per run, from the store's phase timestamps.

    /work/venv/bin/python benchmarks/dead_time.py [--runs 2] [--only command|kafka] [--json]

Two plans, each run by ``greenflow run`` as a subprocess with ``baseline = "0s"`` and
``--runs`` repetitions:

* ``command``: the built-in command workload, ``command = "sleep 30"`` (MEASURE is the
  command's lifetime: the least a run can cost around its window);
* ``kafka-ingest``: a 1-broker local Kafka, 1000 msg/s of 1 KiB, ``warmup = "3s"``,
  ``duration = "30s"``, everything else at its default.

A run lasts from entering PREPARE to its END mark (after CLEAN). For each run it prints
MEASURE ÷ run wall time and MEASURE ÷ (run wall time − warm-up), the second twice: with
warm-up as the configured 3 s (so JVM start and waiting for the first record count as dead
time) and as the whole recorded WARMUP phase. Target (the issue): MEASURE ≥ 95 % of the time
outside warm-up. Each phase's share is printed so that misses show where the time goes.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from greenflow.store import Store

TARGET = 0.95
PHASES = ("prepare", "warmup", "measure", "cooldown", "clean")
COMMON = """\
[experiment]
name = "dead-time-{name}"
repetitions = {runs}
output = "{output}"
baseline = "0s"
cooldown = "0s"

[platform]
type = "local"
"""
PLANS = {
    "command": (
        0.0,
        """
[workload]
type = "command"
command = "sleep 30"
""",
    ),
    "kafka": (
        3.0,
        """
[[services]]
type = "kafka"
brokers = 1

[workload]
type = "kafka-ingest"
load = 1000
message_size = 1024
warmup = "3s"
duration = "30s"
""",
    ),
}


def run_plan(name: str, runs: int, root: Path) -> list[dict[str, Any]]:
    warmup_s, body = PLANS[name]
    out = root / name
    plan = root / f"{name}.toml"
    plan.write_text(COMMON.format(name=name, runs=runs, output=out) + body)
    proc = subprocess.run(
        [sys.executable, "-m", "greenflow", "-q", "run", str(plan)],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"greenflow run {plan} exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    rows = []
    with Store.open(out, create=False) as store:
        (exp,) = store.experiments()
        for run in sorted(store.get_runs(exp.id), key=lambda r: r.order):
            p = run.phases
            marks = [(ph, p[ph]) for ph in (*PHASES, "end") if ph in p]
            spans = {ph: nxt - t for (ph, t), (_n, nxt) in itertools.pairwise(marks)}
            wall = p["end"] - p["prepare"]
            measure = spans["measure"]
            warm_phase = spans.get("warmup", 0.0)
            rows.append(
                {
                    "plan": name,
                    "run": run.run_id,
                    "status": run.status.value,
                    "wall_s": wall,
                    "measure_s": measure,
                    "spans_s": spans,
                    "of_wall": measure / wall,
                    "outside_configured_warmup": measure / (wall - warmup_s),
                    "outside_warmup_phase": measure / (wall - warm_phase),
                }
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--only", choices=sorted(PLANS), action="append")
    parser.add_argument("--json", action="store_true", help="print rows as JSON")
    args = parser.parse_args()
    load0 = os.getloadavg()[0]
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="greenflow-dead-time-") as tmp:
        for name in args.only or list(PLANS):
            rows += run_plan(name, args.runs, Path(tmp))
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(
        f"{os.cpu_count()} CPUs, load average {load0:.1f} → {os.getloadavg()[0]:.1f}; "
        f"target MEASURE ≥ {TARGET:.0%} of the time outside warm-up\n"
    )
    head = "".join(f"{ph:>9}" for ph in PHASES)
    print(
        f"{'plan':<8} {'run':<10} {'wall s':>7} {head}  {'M÷wall':>7} "
        f"{'M÷(wall−3s)':>12} {'M÷(wall−WARMUP)':>16}"
    )
    for r in rows:
        spans = "".join(f"{r['spans_s'].get(ph, 0.0):>9.2f}" for ph in PHASES)
        print(
            f"{r['plan']:<8} {r['run'][:10]:<10} {r['wall_s']:>7.2f} {spans}  "
            f"{r['of_wall']:>7.1%} {r['outside_configured_warmup']:>12.1%} "
            f"{r['outside_warmup_phase']:>16.1%}"
        )
    print()
    for name in dict.fromkeys(r["plan"] for r in rows):
        mine = [r for r in rows if r["plan"] == name]
        dead = statistics.mean(r["wall_s"] - r["measure_s"] for r in mine)
        for key, label in (
            ("outside_configured_warmup", "outside the configured warm-up"),
            ("outside_warmup_phase", "outside the WARMUP phase"),
        ):
            worst = min(r[key] for r in mine)
            verdict = "met" if worst >= TARGET else "MISSED"
            print(
                f"{name:<8} MEASURE share {label}: worst {worst:.1%}, mean "
                f"{statistics.mean(r[key] for r in mine):.1%} (dead time {dead:.2f} s/run) "
                f"→ target {verdict}"
            )


if __name__ == "__main__":
    main()
