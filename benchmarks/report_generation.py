"""Time to write the HTML report of a large experiment: 1,000 runs with 60 samples each.

    /work/venv/bin/python benchmarks/report_generation.py [--runs 1000] [--samples 60]
        [--power-plots 24] [--keep DIR] [--json]

The store is synthesized with the Store API (not timed): one experiment sweeping
``target`` (kafka, redpanda) × ``message_size`` (100, 1024) × ``load`` (25 values), 10
repetitions, so 100 points × 10 = 1,000 runs by default, in shuffled order. Each run has
its phases (prepare → warmup → measure → cooldown → clean → end), ``--samples`` samples
of a cumulative RAPL ``energy_joules`` counter one second apart, the per-run metrics the
runner stores (host energy, idle, active, service/loadgen/other shares, J/message), and a
result with latency percentiles and the asked rate. One run in 50 is failed, one in 100
aborted, as in real sweeps.

It then times ``greenflow report`` in a fresh process (what a user waits for: Python,
click and matplotlib imports included; target ≤ 5 s) and ``write_report`` once more in
this process, warm. Wall and CPU times are both printed, with the load average: on a
shared 2-core machine the wall time stretches with other work, the CPU time much less.
Per-run power plots are capped by ``--power-plots`` (default 24, as the CLI): each costs
~40 ms of CPU, so all 1,000 would take about 40 s.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from greenflow.api import Metric, Sample, WorkloadResult
from greenflow.store import RunStatus, Store

TARGET_S = 5.0
TARGETS = ("kafka", "redpanda")
SIZES = (100, 1024)
HOST = "node-1"
PHASES = (
    ("prepare", 2.0),
    ("warmup", 5.0),
    ("measure", 40.0),
    ("cooldown", 5.0),
    ("clean", 3.0),
    ("end", 0.0),
)


def synthesize(out: Path, runs: int = 1000, samples: int = 60, seed: int = 1) -> None:
    """A store in ``out`` with one experiment of ``runs`` runs and ``samples`` samples each."""
    rng = random.Random(seed)
    reps = 10
    n_loads = max(1, runs // (len(TARGETS) * len(SIZES) * reps))
    loads = [1000 * (i + 1) for i in range(n_loads)]
    points = [(t, s, ld) for t in TARGETS for s in SIZES for ld in loads]
    specs = [(p, r) for r in range(reps) for p in points][:runs]
    rng.shuffle(specs)
    plan = (
        '[experiment]\nname = "bench"\nrepetitions = 10\nbaseline = "10s"\n\n'
        '[platform]\ntype = "local"\n\n[workload]\ntype = "kafka-ingest"\n'
        f"target = {json.dumps(list(TARGETS))}\nmessage_size = {list(SIZES)}\n"
        f"load = {loads}\n"
    )
    with Store.open(out) as store:
        exp = store.upsert_experiment("bench", "bench.toml", plan, seed)
        store.set_provenance(
            exp,
            {
                "axes": {"target": list(TARGETS), "message_size": list(SIZES), "load": loads},
                "host": {"hostname": HOST, "cpu_model": "synthetic", "cpu_logical": 32},
                "software": {"python": "3.11", "distributions": {"greenflow-core": "0.1.0"}},
                "seed": seed,
            },
        )
        clock = 1.8e9
        for order, ((target, size, load), rep) in enumerate(specs):
            run_id = f"{order:05d}{rng.getrandbits(40):010x}"
            store.add_run(
                exp,
                run_id,
                {"target": target, "message_size": size, "load": load},
                rep,
                order,
                group=target,
            )
            store.set_run_status(run_id, RunStatus.RUNNING)
            status = (
                RunStatus.ABORTED
                if order % 100 == 7
                else RunStatus.FAILED
                if order % 50 == 3
                else RunStatus.FINISHED
            )
            t = clock
            bounds = {}
            for phase, length in PHASES:
                store.record_phase(exp, run_id, phase, t)
                bounds[phase] = t
                t += length
            idle_w = 60.0
            busy_w = (
                idle_w + load / 1000 * (9.0 if target == "kafka" else 7.0) * (size / 512) ** 0.3
            )
            if status is not RunStatus.ABORTED:
                counter, batch = 0.0, []
                for i in range(samples):
                    ts = clock + i * (t - clock) / max(1, samples - 1)
                    in_measure = bounds["measure"] <= ts < bounds["cooldown"]
                    counter += (busy_w if in_measure else idle_w + 3) * rng.uniform(0.97, 1.03)
                    batch.append(
                        Sample(
                            ts,
                            "energy_joules",
                            counter,
                            "joules",
                            "rapl",
                            HOST,
                            {"domain": "package-0"},
                        )
                    )
                store.add_samples(exp, run_id, batch)
            if status is RunStatus.FINISHED:
                duration = bounds["cooldown"] - bounds["measure"]
                energy = busy_w * duration * rng.uniform(0.97, 1.03)
                idle = idle_w * duration
                active = energy - idle
                units = load * duration * rng.uniform(0.9, 1.0)
                shares = {"service:" + target: 0.7, "loadgen:kafka-ingest": 0.25}
                scope = {"host": HOST, "scope": "host"}
                metrics = [
                    Metric("energy_joules", energy, "joules", "rapl", scope),
                    Metric("mean_power_watts", energy / duration, "watts", "rapl", scope),
                    Metric(
                        "idle_power_watts", idle_w, "watts", "rapl", {"host": HOST, "scope": "idle"}
                    ),
                    Metric(
                        "idle_energy_joules",
                        idle,
                        "joules",
                        "rapl",
                        {"host": HOST, "scope": "idle"},
                    ),
                    Metric("active_energy_joules", active, "joules", "rapl", scope),
                    Metric("energy_per_message_joules", energy / units, "joules", "rapl", scope),
                    Metric(
                        "energy_joules",
                        active * 0.05,
                        "joules",
                        "rapl+cpu-share",
                        {"host": HOST, "scope": "other"},
                    ),
                    Metric("measure_duration_seconds", duration, "seconds", "clock"),
                    Metric("asked_messages_per_s", float(load), "", "workload"),
                ]
                for group, share in shares.items():
                    metrics.append(
                        Metric(
                            "energy_joules",
                            active * share,
                            "joules",
                            "rapl+cpu-share",
                            {"host": HOST, "scope": group.split(":")[0], "group": group},
                        )
                    )
                store.add_metrics(run_id, metrics)
                achieved = units / duration * (1.0 if load < 20000 else 0.8)
                p50 = 2 + load / 4000 * rng.uniform(0.9, 1.1)
                store.set_result(
                    run_id,
                    WorkloadResult(
                        units=units,
                        unit="message",
                        payload_bytes=units * size,
                        achieved_rate=achieved,
                        latency_ms={"p50": p50, "p99": p50 * 4, "max": p50 * 12},
                        metrics={"asked_messages_per_s": float(load)},
                    ),
                )
                store.set_run_status(run_id, status)
            elif status is RunStatus.FAILED:
                store.set_run_status(run_id, status, "achieved 40 % of the asked load\nmore lines")
            else:
                store.set_run_status(run_id, status, "interrupted by the user (SIGINT/SIGTERM)")
            clock = t + 1.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--samples", type=int, default=60)
    parser.add_argument("--power-plots", type=int, default=24)
    parser.add_argument("--keep", type=Path, help="Keep the store and the report here.")
    parser.add_argument("--json", action="store_true", help="Print the timings as JSON.")
    args = parser.parse_args()

    work = args.keep or Path(tempfile.mkdtemp(prefix="greenflow-bench-"))
    store_dir = work / "out"
    if store_dir.exists():
        shutil.rmtree(store_dir)
    t = time.perf_counter()
    synthesize(store_dir, args.runs, args.samples)
    synth_s = time.perf_counter() - t

    from greenflow.report import ReportOptions, write_report

    # What a user pays: the CLI in a fresh process (Python, click, matplotlib imports).
    load_before = os.getloadavg()[0]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "greenflow", "report", str(store_dir), "-o",
         str(work / "report.html"), "--power-plots", str(args.power_plots)],
        check=True, capture_output=True,
    )  # fmt: skip
    cli_s = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cli_cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    # Warm, in this process: the report's own work once everything is imported.
    options = ReportOptions(power_plots=args.power_plots)
    write_report(store_dir, work / "warm.html", options)
    t, c = time.perf_counter(), time.process_time()
    summary = write_report(store_dir, work / "warm.html", options)
    warm_s, warm_cpu = time.perf_counter() - t, time.process_time() - c
    size = (work / "report.html").stat().st_size
    out = {
        "runs": args.runs,
        "samples_per_run": args.samples,
        "power_plots": summary.power_plots,
        "synthesize_s": round(synth_s, 2),
        "cli_s": round(cli_s, 2),
        "cli_cpu_s": round(cli_cpu, 2),
        "warm_s": round(warm_s, 2),
        "warm_cpu_s": round(warm_cpu, 2),
        "load_average": round(load_before, 2),
        "cpus": os.cpu_count(),
        "target_s": TARGET_S,
        "html_bytes": size,
        "ok": cli_s <= TARGET_S,
    }
    if args.json:
        print(json.dumps(out))
    else:
        print(f"store: {args.runs} runs × {args.samples} samples, synthesized in {synth_s:.1f} s")
        print(
            f"greenflow report (fresh process): {cli_s:.2f} s wall, {cli_cpu:.2f} s CPU "
            f"({'within' if out['ok'] else 'OVER'} the {TARGET_S:g} s target)"
        )
        print(
            f"write_report, warm: {warm_s:.2f} s wall, {warm_cpu:.2f} s CPU; "
            f"{summary.power_plots} power plots; {size / 1e6:.1f} MB of HTML"
        )
        print(
            f"load average at the start: {load_before:.1f} on {os.cpu_count()} CPUs "
            "(wall times stretch when the machine is busy; CPU times much less)"
        )
        if args.keep:
            print(f"report: {work / 'report.html'}")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
