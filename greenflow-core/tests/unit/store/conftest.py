from __future__ import annotations

from pathlib import Path

import pytest

from greenflow.api.context import Metric, Phase, Sample, WorkloadResult
from greenflow.store import RunStatus, Store


@pytest.fixture
def results_dir(tmp_path: Path) -> Path:
    """An output directory with one experiment of three runs: finished, failed, pending."""
    out = tmp_path / "greenflow-output"
    with Store.open(out) as store:
        exp = store.upsert_experiment("kafka-sweep", "plan.toml", 'name = "kafka-sweep"\n', 7)
        store.add_run(exp, "aaaa1111", {"rate": 1000, "size": 512}, 0, 0, group="g")
        store.add_run(exp, "bbbb2222", {"rate": 2000, "size": 512}, 0, 1, group="g")
        store.add_run(exp, "cccc3333", {"rate": 4000, "size": 512}, 0, 2, group="g")
        store.record_phase(exp, None, Phase.BASELINE, 90.0)

        store.set_run_status("aaaa1111", RunStatus.RUNNING)
        for phase, at in [
            ("prepare", 99.0),
            ("warmup", 100.0),
            ("measure", 105.0),
            ("cooldown", 135.0),
        ]:
            store.record_phase(exp, "aaaa1111", phase, at)
        store.add_samples(
            exp,
            "aaaa1111",
            [
                Sample(105.0, "host_energy_joules", 1000.0, "joules", "rapl", "node-1"),
                Sample(135.0, "host_energy_joules", 1600.0, "joules", "rapl", "node-1"),
                Sample(
                    120.0, "power_watts", 20.0, "watts", "rapl", "node-1", {"domain": "package-0"}
                ),
            ],
        )
        store.set_result(
            "aaaa1111",
            WorkloadResult(
                units=30000,
                unit="message",
                payload_bytes=15360000,
                achieved_rate=1000.0,
                latency_ms={"p99": 8.0, "p50": 2.0, "max": 20.0},
                metrics={"asked_rate_per_s": 1000.0},
            ),
        )
        store.add_metrics(
            "aaaa1111",
            [
                Metric(
                    "energy_joules", 400.0, "joules", "rapl", {"scope": "host", "host": "node-1"}
                ),
                Metric(
                    "energy_joules", 200.0, "joules", "rapl", {"scope": "host", "host": "node-2"}
                ),
                Metric(
                    "energy_joules",
                    250.0,
                    "joules",
                    "model:linear",
                    {"scope": "host", "host": "node-1"},
                ),
                Metric(
                    "energy_joules",
                    150.0,
                    "joules",
                    "rapl",
                    {"scope": "service", "group": "service:kafka", "host": "node-1"},
                ),
                Metric("power_watts", 20.0, "watts", "rapl", {"scope": "idle", "host": "node-1"}),
                Metric("measure_duration_seconds", 30.0, "seconds", "clock"),
            ],
        )
        store.set_run_status("aaaa1111", RunStatus.FINISHED)

        store.set_run_status("bbbb2222", RunStatus.RUNNING)
        store.record_phase(exp, "bbbb2222", "prepare", 140.0)
        store.set_run_status("bbbb2222", RunStatus.FAILED, "producer exited with 1\ntraceback...")
    return out
