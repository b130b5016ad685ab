"""Other processes (``greenflow results``, ``greenflow down``) use the store while a run has it open."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

from greenflow.api.context import Sample
from greenflow.store import RunStatus, Store


def _python(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


READ_RUNS = """
    import json, sys
    from greenflow.store import Store
    with Store.open(sys.argv[1], create=False) as store:
        exp = store.get_experiment("e")
        print(json.dumps([[r.run_id, r.status.value] for r in store.get_runs(exp.id)]))
"""


def test_reader_process_while_writer_holds_a_write_transaction(tmp_path: Path) -> None:
    """A second process reads committed runs while the first is in the middle of a write."""
    with Store.open(tmp_path) as store:
        exp = store.upsert_experiment("e", "p.toml", "", 1)
        store.add_run(exp, "r1", {"rate": 1}, 0, 0)
        store.set_run_status("r1", RunStatus.RUNNING)
        # Hold the write lock with an uncommitted insert, as a run does mid-method.
        with store._transaction("held open by the test") as conn:
            conn.execute(
                "INSERT INTO runs (run_id, exp_id, params, repetition, run_order) VALUES ('r2', ?, '{}', 0, 1)",
                (exp,),
            )
            proc = _python(READ_RUNS, str(tmp_path))
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout) == [["r1", "running"]]
        # And once committed, a new reader sees both.
        proc = _python(READ_RUNS, str(tmp_path))
        assert json.loads(proc.stdout) == [["r1", "running"], ["r2", "pending"]]


def test_reader_process_while_samples_stream_in(tmp_path: Path) -> None:
    """Readers in other processes keep working while a thread commits sample batches."""
    with Store.open(tmp_path) as store:
        exp = store.upsert_experiment("e", "p.toml", "", 1)
        store.add_run(exp, "r1", {}, 0, 0)
        stop = threading.Event()

        def write() -> None:
            t = 0.0
            while not stop.is_set():
                batch = [
                    Sample(t + i, "power_watts", 1.0, "watts", "rapl", "h") for i in range(200)
                ]
                store.add_samples(exp, "r1", batch)
                t += 200

        writer = threading.Thread(target=write)
        writer.start()
        try:
            for _ in range(3):
                proc = _python(READ_RUNS, str(tmp_path))
                assert proc.returncode == 0, proc.stderr
                assert json.loads(proc.stdout) == [["r1", "pending"]]
        finally:
            stop.set()
            writer.join()
        assert len(store.samples(exp, "r1")) % 200 == 0


def test_second_process_writes_while_first_is_open(tmp_path: Path) -> None:
    """`greenflow down` in another process can clear state the open store then sees gone."""
    with Store.open(tmp_path) as store:
        exp = store.upsert_experiment("e", "p.toml", "", 1)
        store.record_state(exp, "service", "kafka", "kafka", {}, {"pids": [1]})
        proc = _python(
            """
            import sys
            from greenflow.store import Store
            with Store.open(sys.argv[1]) as store:
                exp = store.get_experiment("e")
                store.clear_state(exp.id, "service", "kafka")
            """,
            str(tmp_path),
        )
        assert proc.returncode == 0, proc.stderr
        assert store.live_state(exp) == []
