"""The SQLite store: every method round-trips, resume and reset semantics, schema checks."""

from __future__ import annotations

import math
import os
import signal
import sqlite3
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

from greenflow.api.context import Metric, Phase, Sample, WorkloadResult
from greenflow.errors import StoreError
from greenflow.store import DB_NAME, SCHEMA_VERSION, RunRow, RunStatus, Store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "out") as s:
        yield s


@pytest.fixture
def exp(store: Store) -> int:
    return store.upsert_experiment("kafka-sweep", "plans/kafka.toml", 'name = "kafka-sweep"\n', 7)


def test_open_creates_directory_and_database(tmp_path: Path) -> None:
    """Opening a store creates the output directory and greenflow.sqlite in it."""
    with Store.open(tmp_path / "a" / "b") as store:
        assert store.path == tmp_path / "a" / "b" / DB_NAME
    assert (tmp_path / "a" / "b" / DB_NAME).is_file()


def test_pragmas(store: Store) -> None:
    """The database is in WAL mode with synchronous=NORMAL, foreign keys and a schema version."""
    conn = store._conn
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_wal_mode_persists_for_other_connections(tmp_path: Path) -> None:
    """The WAL journal mode is recorded in the file, so plain sqlite3 readers see it too."""
    Store.open(tmp_path).close()
    conn = sqlite3.connect(tmp_path / DB_NAME)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    """A store written by a newer schema version is a StoreError naming both versions."""
    Store.open(tmp_path).close()
    conn = sqlite3.connect(tmp_path / DB_NAME)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(StoreError, match=rf"schema version {SCHEMA_VERSION + 1}.*newer.*Upgrade"):
        Store.open(tmp_path)


def test_not_a_database_is_a_store_error(tmp_path: Path) -> None:
    """A greenflow.sqlite that is not SQLite gives a StoreError, not a traceback."""
    (tmp_path / DB_NAME).write_bytes(b"this is not a database, it is a text file" * 100)
    with pytest.raises(StoreError, match="not a GreenFlow store"):
        Store.open(tmp_path)


def test_open_without_create_needs_an_existing_store(tmp_path: Path) -> None:
    """Readers open with create=False and get a clear error where no store exists."""
    with pytest.raises(StoreError, match="no GreenFlow store in"):
        Store.open(tmp_path / "missing", create=False)
    assert not (tmp_path / "missing").exists()


@pytest.fixture
def unwritable(monkeypatch: pytest.MonkeyPatch) -> None:
    """Directories and files read as not writable, as on a read-only file system (tests run
    as root, whom permission bits do not stop; tests/integration mounts a real one)."""
    real = os.access

    def access(path: Any, mode: int, *args: Any, **kwargs: Any) -> bool:
        return False if mode & os.W_OK else real(path, mode, *args, **kwargs)

    monkeypatch.setattr(os, "access", access)


@pytest.mark.parametrize("left_open", [False, True], ids=["closed", "still-open"])
def test_a_store_that_cannot_be_written_opens_read_only(
    tmp_path: Path, unwritable: None, left_open: bool
) -> None:
    """A reader opens an unwritable store read-only (closed cleanly, or still open with its
    WAL): it reads everything and refuses a write with a StoreError."""
    writer = Store.open(tmp_path)
    exp = writer.upsert_experiment("e", "plan.toml", "", 1)
    writer.add_run(exp, "r1", {"rate": 1}, 0, 0)
    if not left_open:
        writer.close()
    try:
        with Store.open(tmp_path, create=False) as store:
            assert [r.run_id for r in store.get_runs(exp)] == ["r1"]
            with pytest.raises(StoreError):
                store.upsert_experiment("other", "plan.toml", "", 1)
    finally:
        writer.close()


def test_an_unwritable_file_that_is_not_a_store_says_so(tmp_path: Path, unwritable: None) -> None:
    """An SQLite file without GreenFlow's schema, read-only, is 'not a GreenFlow store'."""
    sqlite3.connect(tmp_path / DB_NAME).execute("CREATE TABLE t (x)").connection.close()
    with pytest.raises(StoreError, match="is not a GreenFlow store"):
        Store.open(tmp_path, create=False)


def test_reopen_keeps_data(tmp_path: Path) -> None:
    """Closing and reopening the store keeps everything written."""
    with Store.open(tmp_path) as store:
        exp = store.upsert_experiment("e", "p.toml", "", 1)
        store.add_run(exp, "r1", {"rate": 10}, 0, 0)
    with Store.open(tmp_path) as store:
        assert [r.run_id for r in store.get_runs(exp)] == ["r1"]


def test_close_is_idempotent(tmp_path: Path) -> None:
    """close() may be called twice (context manager after an explicit close)."""
    with Store.open(tmp_path) as store:
        store.close()


# -- experiments -------------------------------------------------------------------------


def test_experiment_round_trip(store: Store) -> None:
    """An experiment reads back with its plan, seed, creation time and empty provenance."""
    exp = store.upsert_experiment("e1", "plans/e1.toml", "[experiment]\nname = 'e1'\n", 42)
    row = store.get_experiment("e1")
    assert row is not None
    assert (row.id, row.name, row.plan_path, row.seed) == (exp, "e1", "plans/e1.toml", 42)
    assert row.plan_text == "[experiment]\nname = 'e1'\n"
    assert row.created_at > 0
    assert row.provenance == {}
    assert store.get_experiment("nope") is None


def test_upsert_experiment_same_name_same_row(store: Store) -> None:
    """Upserting an experiment again keeps its id, creation time and runs, and updates the plan."""
    exp = store.upsert_experiment("e1", "old.toml", "old", 1)
    created = store.get_experiment("e1").created_at  # type: ignore[union-attr]
    store.add_run(exp, "r1", {}, 0, 0)
    again = store.upsert_experiment("e1", "new.toml", "new", 2)
    row = store.get_experiment("e1")
    assert again == exp
    assert row is not None
    assert (row.plan_path, row.plan_text, row.seed, row.created_at) == (
        "new.toml",
        "new",
        2,
        created,
    )
    assert [r.run_id for r in store.get_runs(exp)] == ["r1"]


def test_experiments_oldest_first(store: Store) -> None:
    """experiments() lists every experiment in creation order."""
    store.upsert_experiment("b", "", "", 0)
    store.upsert_experiment("a", "", "", 0)
    assert [e.name for e in store.experiments()] == ["b", "a"]


def test_provenance_round_trip(store: Store, exp: int) -> None:
    """Provenance is stored as JSON and replaced by the next call."""
    store.set_provenance(
        exp, {"cpu": {"model": "Xeon", "cores": 32}, "kernel": "6.1", "rapl": ["package-0"]}
    )
    assert store.get_experiment("kafka-sweep").provenance == {  # type: ignore[union-attr]
        "cpu": {"model": "Xeon", "cores": 32},
        "kernel": "6.1",
        "rapl": ["package-0"],
    }
    store.set_provenance(exp, {"kernel": "6.2"})
    assert store.get_experiment("kafka-sweep").provenance == {"kernel": "6.2"}  # type: ignore[union-attr]


def test_provenance_of_unknown_experiment(store: Store) -> None:
    """Provenance for an experiment id that does not exist is a StoreError."""
    with pytest.raises(StoreError, match="no experiment with id 99"):
        store.set_provenance(99, {})


def test_provenance_takes_paths_and_tuples(store: Store, exp: int) -> None:
    """Values that are not JSON types (paths, tuples, sets) are stored as their JSON shape."""
    store.set_provenance(exp, {"dir": Path("/tmp/x"), "hosts": ("a", "b"), "roles": {"broker"}})
    assert store.get_experiment("kafka-sweep").provenance == {  # type: ignore[union-attr]
        "dir": "/tmp/x",
        "hosts": ["a", "b"],
        "roles": ["broker"],
    }


# -- live state --------------------------------------------------------------------------


def test_live_state_round_trip_and_upsert(store: Store, exp: int) -> None:
    """State is keyed by (experiment, kind, name): a second record replaces it in place."""
    store.record_state(exp, "platform", "platform", "local", {"root": "/tmp"}, {"pids": [1]})
    store.record_state(exp, "service", "kafka", "kafka", {"brokers": 1}, {"pids": [2]})
    store.record_state(exp, "platform", "platform", "local", {"root": "/tmp"}, {"pids": [1, 3]})
    state = store.live_state(exp)
    assert [(s["kind"], s["name"], s["plugin"]) for s in state] == [
        ("platform", "platform", "local"),
        ("service", "kafka", "kafka"),
    ]
    assert state[0]["config"] == {"root": "/tmp"}
    assert state[0]["state"] == {"pids": [1, 3]}
    assert state[0]["recorded_at"] >= state[1]["recorded_at"]


def test_clear_state(store: Store, exp: int) -> None:
    """clear_state forgets one item, one kind, or everything of the experiment."""
    for kind, name in [
        ("platform", "p"),
        ("service", "a"),
        ("service", "b"),
        ("collector", "rapl"),
    ]:
        store.record_state(exp, kind, name, "x", {}, {})
    store.clear_state(exp, "service", "a")
    assert [s["name"] for s in store.live_state(exp)] == ["p", "b", "rapl"]
    store.clear_state(exp, "service")
    assert [s["name"] for s in store.live_state(exp)] == ["p", "rapl"]
    store.clear_state(exp)
    assert store.live_state(exp) == []


def test_live_state_is_per_experiment(store: Store, exp: int) -> None:
    """Live state of one experiment is not seen from another."""
    other = store.upsert_experiment("other", "", "", 0)
    store.record_state(exp, "service", "kafka", "kafka", {}, {})
    assert store.live_state(other) == []


def test_record_state_for_unknown_experiment(store: Store) -> None:
    """Recording state for an experiment id that does not exist is a StoreError."""
    with pytest.raises(StoreError, match="record state of service 'kafka'"):
        store.record_state(123, "service", "kafka", "kafka", {}, {})


# -- runs --------------------------------------------------------------------------------


def test_run_round_trip(store: Store, exp: int) -> None:
    """A new run is pending, with its params, repetition, order and group."""
    store.add_run(exp, "r1", {"rate": 1000, "size": 512, "system": "kafka"}, 2, 5, group="g1")
    run = store.get_run("r1")
    assert run == RunRow(
        run_id="r1",
        exp_id=exp,
        params={"rate": 1000, "size": 512, "system": "kafka"},
        repetition=2,
        order=5,
        group="g1",
        status=RunStatus.PENDING,
        error=None,
        started_at=None,
        ended_at=None,
        attempts=0,
        phases={},
    )
    assert store.get_run("missing") is None


def test_get_runs_in_order(store: Store, exp: int) -> None:
    """get_runs returns the experiment's runs sorted by their order."""
    for run_id, order in [("c", 2), ("a", 0), ("b", 1)]:
        store.add_run(exp, run_id, {}, 0, order)
    assert [r.run_id for r in store.get_runs(exp)] == ["a", "b", "c"]


def test_add_run_twice_keeps_status_and_updates_order(store: Store, exp: int) -> None:
    """Adding a stored run again (a resumed plan) keeps its status, result and attempts."""
    store.add_run(exp, "r1", {"rate": 1}, 0, 3)
    store.set_run_status("r1", RunStatus.RUNNING)
    store.set_result("r1", WorkloadResult(units=10))
    store.set_run_status("r1", RunStatus.FINISHED)
    store.add_run(exp, "r1", {"rate": 1}, 0, 0, group="g2")
    run = store.get_run("r1")
    assert run is not None
    assert (run.status, run.attempts, run.order, run.group) == (RunStatus.FINISHED, 1, 0, "g2")
    assert store.result("r1") == WorkloadResult(units=10)


def test_run_id_of_another_experiment_is_refused(store: Store, exp: int) -> None:
    """A run id already used by another experiment is a StoreError, not a silent move."""
    other = store.upsert_experiment("other", "", "", 0)
    store.add_run(exp, "r1", {}, 0, 0)
    with pytest.raises(StoreError, match="already belongs to experiment"):
        store.add_run(other, "r1", {}, 0, 0)


def test_status_transitions(store: Store, exp: int) -> None:
    """running stamps started_at and counts an attempt; ended states stamp ended_at."""
    store.add_run(exp, "r1", {}, 0, 0)
    store.set_run_status("r1", RunStatus.RUNNING)
    running = store.get_run("r1")
    assert running is not None
    assert running.status is RunStatus.RUNNING and running.attempts == 1
    assert running.started_at is not None and running.ended_at is None
    store.set_run_status("r1", "failed", "producer died")
    failed = store.get_run("r1")
    assert failed is not None
    assert (failed.status, failed.error) == (RunStatus.FAILED, "producer died")
    assert failed.ended_at is not None and failed.ended_at >= running.started_at
    store.set_run_status("r1", RunStatus.RUNNING)
    again = store.get_run("r1")
    assert again is not None
    assert (again.attempts, again.error, again.ended_at) == (2, None, None)
    store.set_run_status("r1", RunStatus.ABORTED, "interrupted")
    aborted = store.get_run("r1")
    assert (
        aborted is not None and aborted.status is RunStatus.ABORTED and aborted.ended_at is not None
    )


def test_status_of_unknown_run_or_status(store: Store, exp: int) -> None:
    """An unknown run id or status name is a StoreError."""
    with pytest.raises(StoreError, match="no run nope"):
        store.set_run_status("nope", RunStatus.RUNNING)
    store.add_run(exp, "r1", {}, 0, 0)
    with pytest.raises(StoreError, match="unknown run status 'done'"):
        store.set_run_status("r1", "done")


def test_run_status_is_a_str_enum() -> None:
    """RunStatus values compare and format as their names."""
    assert isinstance(RunStatus.FINISHED, str) and RunStatus("finished") is RunStatus.FINISHED
    assert f"{RunStatus.FAILED}" == "failed"
    assert [s.value for s in RunStatus] == ["pending", "running", "finished", "failed", "aborted"]


def test_reset_run_removes_run_data(store: Store, exp: int) -> None:
    """reset_run makes the run pending and deletes its phases, samples, metrics and result."""
    store.add_run(exp, "r1", {}, 0, 0)
    store.add_run(exp, "r2", {}, 0, 1)
    for run_id in ("r1", "r2"):
        store.set_run_status(run_id, RunStatus.RUNNING)
        store.record_phase(exp, run_id, Phase.MEASURE, 1.0)
        store.add_samples(exp, run_id, [Sample(1.0, "host_energy_joules", 5, "J", "rapl", "h")])
        store.add_metrics(run_id, [Metric("energy_joules", 3, "joules", "rapl")])
        store.set_result(run_id, WorkloadResult(units=1))
        store.set_run_status(run_id, RunStatus.FAILED, "boom")
    store.record_phase(exp, None, Phase.BASELINE, 0.5)
    store.add_samples(exp, None, [Sample(0.5, "host_energy_joules", 1, "J", "rapl", "h")])

    store.reset_run("r1")

    run = store.get_run("r1")
    assert run is not None
    assert (run.status, run.error, run.started_at, run.ended_at) == (
        RunStatus.PENDING,
        None,
        None,
        None,
    )
    assert run.attempts == 1 and run.phases == {}
    assert store.phases(exp, "r1") == []
    assert store.samples(exp, "r1") == []
    assert store.metrics("r1") == []
    assert store.result("r1") is None
    # The other run and the experiment-level data are untouched.
    assert store.phases(exp, "r2") == [("measure", 1.0)]
    assert len(store.samples(exp, "r2")) == 1
    assert len(store.metrics("r2")) == 1
    assert store.result("r2") is not None
    assert ("baseline", 0.5) in store.phases(exp)
    assert len(store.samples(exp)) == 2


def test_reset_unknown_run(store: Store) -> None:
    """Resetting a run that does not exist is a StoreError."""
    with pytest.raises(StoreError, match="no run ghost"):
        store.reset_run("ghost")


# -- phases ------------------------------------------------------------------------------


def test_phases_round_trip(store: Store, exp: int) -> None:
    """Phases come back in time order; run_id None lists the whole experiment's."""
    store.add_run(exp, "r1", {}, 0, 0)
    store.record_phase(exp, None, Phase.ACQUIRE, 1.0)
    store.record_phase(exp, None, "deploy", 2.0)
    store.record_phase(exp, None, Phase.BASELINE, 3.0)
    store.record_phase(exp, "r1", Phase.MEASURE, 5.0)
    store.record_phase(exp, "r1", Phase.PREPARE, 4.0)
    store.record_phase(exp, "r1", Phase.COOLDOWN, 6.0)
    store.record_phase(exp, None, Phase.BASELINE, 7.0)  # a second deployment group
    assert store.phases(exp, "r1") == [("prepare", 4.0), ("measure", 5.0), ("cooldown", 6.0)]
    assert store.phases(exp) == [
        ("acquire", 1.0),
        ("deploy", 2.0),
        ("baseline", 3.0),
        ("prepare", 4.0),
        ("measure", 5.0),
        ("cooldown", 6.0),
        ("baseline", 7.0),
    ]


def test_run_row_phases_and_window(store: Store, exp: int) -> None:
    """RunRow.phases maps phase → time and window() spans to the next phase entered."""
    store.add_run(exp, "r1", {}, 0, 0)
    for phase, at in [
        ("prepare", 10.0),
        ("warmup", 11.0),
        ("measure", 12.0),
        ("cooldown", 42.0),
        ("clean", 43.0),
    ]:
        store.record_phase(exp, "r1", phase, at)
    run = store.get_run("r1")
    assert run is not None
    assert run.phases == {
        "prepare": 10.0,
        "warmup": 11.0,
        "measure": 12.0,
        "cooldown": 42.0,
        "clean": 43.0,
    }
    window = run.window()
    assert window is not None and (window.start, window.end, window.duration_s) == (
        12.0,
        42.0,
        30.0,
    )
    assert run.window(Phase.CLEAN) is None
    assert run.window("baseline") is None
    assert store.get_runs(exp)[0].phases == run.phases


# -- samples, metrics, results -----------------------------------------------------------


def test_samples_round_trip(store: Store, exp: int) -> None:
    """Samples keep every field, labels included, and filter by run and metric."""
    store.add_run(exp, "r1", {}, 0, 0)
    s1 = Sample(
        2.0, "host_energy_joules", 100.5, "joules", "rapl", "node-1", {"domain": "package-0"}
    )
    s2 = Sample(1.0, "cpu_seconds", 3.0, "seconds", "psutil", "node-1", {"group": "service:kafka"})
    s3 = Sample(0.5, "host_energy_joules", 90.0, "joules", "rapl", "node-1")
    store.add_samples(exp, "r1", [s1, s2])
    store.add_samples(exp, None, iter([s3]))
    assert store.samples(exp, "r1") == [s2, s1]
    assert store.samples(exp, "r1", "host_energy_joules") == [s1]
    assert store.samples(exp) == [s3, s2, s1]
    assert store.samples(exp, metric="host_energy_joules") == [s3, s1]


def test_add_samples_empty_is_a_no_op(store: Store, exp: int) -> None:
    """Adding no samples writes nothing and does not fail."""
    store.add_samples(exp, None, [])
    assert store.samples(exp) == []


def test_add_samples_many(store: Store, exp: int) -> None:
    """Thousands of samples go in one call and come back in time order."""
    samples = [
        Sample(float(i), "power_watts", i * 0.5, "watts", "model:linear", "h") for i in range(5000)
    ]
    store.add_samples(exp, None, reversed(samples))
    assert store.samples(exp) == samples


def test_nan_values_survive_as_nan(store: Store, exp: int) -> None:
    """A NaN sample or metric value is stored as NULL and read back as NaN."""
    store.add_run(exp, "r1", {}, 0, 0)
    store.add_samples(exp, "r1", [Sample(1.0, "m", math.nan, "u", "x", "h")])
    store.add_metrics("r1", [Metric("m", math.nan, "u", "x")])
    assert math.isnan(store.samples(exp, "r1")[0].value)
    assert math.isnan(store.metrics("r1")[0].value)


def test_metrics_round_trip_and_replace(store: Store, exp: int) -> None:
    """Metrics keep labels and method; the same name, method and labels again replaces the value."""
    store.add_run(exp, "r1", {}, 0, 0)
    host = Metric("energy_joules", 120.0, "joules", "rapl", {"scope": "host", "host": "n1"})
    svc = Metric(
        "energy_joules", 60.0, "joules", "rapl", {"scope": "service", "group": "service:kafka"}
    )
    model = Metric(
        "energy_joules", 110.0, "joules", "model:linear", {"scope": "host", "host": "n1"}
    )
    store.add_metrics("r1", [host, svc, model])
    assert store.metrics("r1") == [host, svc, model]
    store.add_metrics(
        "r1", [Metric("energy_joules", 121.0, "joules", "rapl", {"host": "n1", "scope": "host"})]
    )
    assert [m.value for m in store.metrics("r1")] == [121.0, 60.0, 110.0]
    assert store.metrics("other") == []


def test_metrics_for_unknown_run(store: Store) -> None:
    """Metrics for a run that was never added violate the foreign key: StoreError."""
    with pytest.raises(StoreError, match="store metrics of run ghost"):
        store.add_metrics("ghost", [Metric("x", 1, "u", "m")])


def test_result_round_trip(store: Store, exp: int) -> None:
    """A WorkloadResult reads back equal, latency and extra metrics included; set_result replaces."""
    store.add_run(exp, "r1", {}, 0, 0)
    assert store.result("r1") is None
    result = WorkloadResult(
        units=120000,
        unit="message",
        payload_bytes=61440000,
        achieved_rate=3999.5,
        latency_ms={"p50": 1.5, "p99": 9.0, "max": 31.0},
        metrics={"asked_rate_per_s": 4000.0},
    )
    store.set_result("r1", result)
    assert store.result("r1") == result
    store.set_result("r1", WorkloadResult(units=1))
    assert store.result("r1") == WorkloadResult(units=1)


def test_nested_write_survives_interrupted_transaction(store: Store, exp: int) -> None:
    """A write made from a signal handler mid-transaction is kept when the handler then interrupts."""
    store.add_run(exp, "r1", {}, 0, 0)
    with pytest.raises(KeyboardInterrupt), store._transaction("simulated method") as conn:
        conn.execute("UPDATE runs SET run_group = 'half-done' WHERE run_id = 'r1'")
        # What a SIGINT handler does: record what is left behind, then interrupt.
        store.record_state(exp, "service", "kafka", "kafka", {}, {"pids": [42]})
        raise KeyboardInterrupt
    assert store.live_state(exp)[0]["state"] == {"pids": [42]}
    # The store is usable afterwards: no transaction was left open.
    store.add_run(exp, "r2", {}, 0, 1)
    assert not store._conn.in_transaction


@contextmanager
def _sigint_just_after_begin() -> Iterator[None]:
    """A real SIGINT, raised the moment the store's ``BEGIN`` returns (its default handler:
    KeyboardInterrupt there) — where CI once caught a SIGTERM, between a write's BEGIN and
    the code that rolls it back. A profile hook finds the moment: the C call's return in
    the store's ``_execute`` running a BEGIN."""

    def hook(frame: FrameType, event: str, _arg: object) -> None:
        if (
            event == "c_return"
            and frame.f_code.co_name == "_execute"
            and str(frame.f_locals.get("sql", "")).startswith("BEGIN")
        ):
            sys.setprofile(None)
            signal.raise_signal(signal.SIGINT)

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    sys.setprofile(hook)
    try:
        yield
    finally:
        sys.setprofile(None)
        signal.signal(signal.SIGINT, previous)


def test_interrupt_just_after_begin_leaves_the_store_writable(store: Store, exp: int) -> None:
    """A signal landing right after a write began does not fail the teardown's writes."""
    store.add_run(exp, "r1", {}, 0, 0)
    with _sigint_just_after_begin(), pytest.raises(KeyboardInterrupt):
        store.set_run_status("r1", RunStatus.RUNNING)
    # What the teardown then writes lands, and the interrupted write is not half-kept.
    store.set_run_status("r1", RunStatus.ABORTED, "interrupted")
    store.record_state(exp, "platform", "g5k", "g5k", {}, {"job": 1})
    run = store.get_run("r1")
    assert run is not None
    assert (run.status, run.attempts) == (RunStatus.ABORTED, 0)
    assert store.live_state(exp)[0]["state"] == {"job": 1}
    assert not store._conn.in_transaction


def test_failed_method_rolls_back(store: Store, exp: int) -> None:
    """A method that fails half-way leaves nothing of its work behind."""
    store.add_run(exp, "r1", {}, 0, 0)
    bad = [Metric("ok", 1, "u", "m"), Metric("bad", 1, None, "m")]  # type: ignore[arg-type]
    with pytest.raises(StoreError):
        store.add_metrics("r1", bad)
    assert store.metrics("r1") == []
