"""The max-throughput protocol against a real local Kafka broker: the bracket it finds
contains the rate at which achieved/asked first drops below the threshold, checked from
the stored probes (every probe is a stored run)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from greenflow.store import Store

PLAN = """
[experiment]
name = "kafka-max"
baseline = 0
output = "{out}"

[platform]
type = "local"

[[services]]
type = "kafka"
heap = "384m"

[workload]
type = "kafka-ingest"
message_size = 1024
warmup = "2s"
duration = "4s"
producer_heap = "192m"
min_achieved_ratio = 0   # a probe below the threshold is a finding, not a failure

[protocol]
type = "max-throughput"
start = 2000
threshold = 0.9
precision = 0.25
max_runs = 7
"""


def test_max_throughput_bracket_on_a_real_broker(tmp_path: Path) -> None:
    """low sustained (≥ 90 % of asked), high did not, and no probe between them."""
    plan = tmp_path / "plan.toml"
    plan.write_text(PLAN.format(out=tmp_path / "out"))
    run = subprocess.run(
        [sys.executable, "-m", "greenflow", "run", str(plan)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    with Store.open(tmp_path / "out") as store:
        exp = store.get_experiment("kafka-max")
        assert exp is not None
        conclusion = exp.provenance["protocol"]["conclusions"][0]
        probes = []
        for row in store.get_runs(exp.id):
            result = store.result(row.run_id)
            assert row.status.value == "finished" and result is not None
            assert result.achieved_rate is not None
            probes.append((float(row.params["load"]), result.achieved_rate / row.params["load"]))
    low, high = conclusion["max_sustained"], conclusion["first_unsustained"]
    assert len(probes) >= 2
    ratios = dict(probes)
    if high is None:  # the broker kept up with every probe up to the run cap
        assert conclusion["probes"] == 7 and all(r >= 0.9 for r in ratios.values())
        return
    assert low is not None, f"nothing sustained: {sorted(probes)}"
    assert ratios[low] >= 0.9 > ratios[high]
    assert not [v for v in ratios if low < v < high], "a probe inside the bracket was ignored"
    # The first drop above the highest sustained rate is the bracket's top.
    assert min(v for v, r in ratios.items() if r < 0.9 and v > low) == high
