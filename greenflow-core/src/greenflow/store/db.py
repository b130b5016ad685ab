"""The embedded results store: one SQLite database per output directory (DESIGN.md §6).

Every method is one transaction, committed before it returns, so that a crash or a
kill keeps every state change made so far. The database runs in WAL mode, so
``greenflow results`` can read while a run writes, and ``greenflow down`` can open it
from another process. docs/results.md describes the schema.
"""

from __future__ import annotations

import enum
import json
import math
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from types import TracebackType
from typing import Any

import attrs

from greenflow.api.context import Metric, Phase, Sample, Window, WorkloadResult
from greenflow.errors import StoreError
from greenflow.store.redact import redact, redact_text, redact_toml

#: File name of the database inside the output directory.
DB_NAME = "greenflow.sqlite"

#: Version of the schema this code writes (``PRAGMA user_version``).
SCHEMA_VERSION = 2

# How long a writer waits for another process's write transaction before giving up;
# the only other writer is a short-lived command such as `greenflow down`.
_BUSY_TIMEOUT_S = 30.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS experiments (
    id          INTEGER PRIMARY KEY,
    name        TEXT    NOT NULL UNIQUE,
    plan_path   TEXT    NOT NULL,
    plan_text   TEXT    NOT NULL,
    seed        INTEGER NOT NULL,
    created_at  REAL    NOT NULL,
    provenance  TEXT    NOT NULL DEFAULT '{}'
);

CREATE TABLE IF NOT EXISTS runs (
    run_id      TEXT    PRIMARY KEY,
    exp_id      INTEGER NOT NULL REFERENCES experiments(id) ON DELETE CASCADE,
    params      TEXT    NOT NULL,
    repetition  INTEGER NOT NULL,
    run_order   INTEGER NOT NULL,
    run_group   TEXT    NOT NULL DEFAULT '',
    status      TEXT    NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'running', 'finished', 'failed', 'aborted')),
    error       TEXT,
    started_at  REAL,
    ended_at    REAL,
    attempts    INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS runs_by_experiment ON runs (exp_id, run_order);

CREATE TABLE IF NOT EXISTS phases (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    exp_id      INTEGER NOT NULL REFERENCES experiments(id) ON DELETE CASCADE,
    run_id      TEXT    REFERENCES runs(run_id) ON DELETE CASCADE,
    phase       TEXT    NOT NULL,
    at          REAL    NOT NULL
);
CREATE INDEX IF NOT EXISTS phases_by_run ON phases (exp_id, run_id, at);

CREATE TABLE IF NOT EXISTS samples (
    id          INTEGER PRIMARY KEY,
    exp_id      INTEGER NOT NULL REFERENCES experiments(id) ON DELETE CASCADE,
    run_id      TEXT    REFERENCES runs(run_id) ON DELETE CASCADE,
    timestamp   REAL    NOT NULL,
    metric      TEXT    NOT NULL,
    value       REAL,
    unit        TEXT    NOT NULL,
    method      TEXT    NOT NULL,
    host        TEXT    NOT NULL,
    labels      TEXT    NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS samples_by_run ON samples (run_id, metric, timestamp);
CREATE INDEX IF NOT EXISTS samples_by_experiment ON samples (exp_id, metric, timestamp);

CREATE TABLE IF NOT EXISTS metrics (
    id          INTEGER PRIMARY KEY,
    run_id      TEXT    NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
    name        TEXT    NOT NULL,
    value       REAL,
    unit        TEXT    NOT NULL,
    method      TEXT    NOT NULL,
    labels      TEXT    NOT NULL DEFAULT '{}',
    UNIQUE (run_id, name, method, labels)
);

CREATE TABLE IF NOT EXISTS results (
    run_id        TEXT PRIMARY KEY REFERENCES runs(run_id) ON DELETE CASCADE,
    units         REAL NOT NULL,
    unit          TEXT NOT NULL,
    payload_bytes REAL,
    achieved_rate REAL,
    latency_ms    TEXT NOT NULL DEFAULT '{}',
    metrics       TEXT NOT NULL DEFAULT '{}'
);

CREATE TABLE IF NOT EXISTS baselines (
    id          INTEGER PRIMARY KEY,
    exp_id      INTEGER NOT NULL REFERENCES experiments(id) ON DELETE CASCADE,
    run_group   TEXT    NOT NULL DEFAULT '',
    kind        TEXT    NOT NULL,
    start       REAL    NOT NULL,
    end         REAL    NOT NULL,
    host        TEXT    NOT NULL,
    method      TEXT    NOT NULL,
    mean_watts  REAL,
    stdev_watts REAL,
    intervals   INTEGER NOT NULL,
    settled     INTEGER,
    settle_s    REAL
);
CREATE INDEX IF NOT EXISTS baselines_by_experiment ON baselines (exp_id, start);

CREATE TABLE IF NOT EXISTS warnings (
    id          INTEGER PRIMARY KEY,
    exp_id      INTEGER NOT NULL REFERENCES experiments(id) ON DELETE CASCADE,
    run_id      TEXT    NOT NULL DEFAULT '',
    code        TEXT    NOT NULL,
    message     TEXT    NOT NULL,
    at          REAL    NOT NULL,
    UNIQUE (exp_id, run_id, code)
);

CREATE TABLE IF NOT EXISTS live_state (
    exp_id      INTEGER NOT NULL REFERENCES experiments(id) ON DELETE CASCADE,
    kind        TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    plugin      TEXT    NOT NULL,
    config      TEXT    NOT NULL,
    state       TEXT    NOT NULL,
    recorded_at REAL    NOT NULL,
    PRIMARY KEY (exp_id, kind, name)
);
"""


class RunStatus(str, enum.Enum):
    """Where a run stands. Only ``finished`` runs are skipped when a plan is re-run."""

    PENDING = "pending"
    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"
    ABORTED = "aborted"

    def __str__(self) -> str:
        return self.value


_ENDED = frozenset({RunStatus.FINISHED, RunStatus.FAILED, RunStatus.ABORTED})


@attrs.frozen
class ExperimentRow:
    """One experiment: a plan's name, its (redacted) text, seed and provenance record."""

    id: int
    name: str
    plan_path: str
    plan_text: str
    seed: int
    created_at: float
    provenance: dict[str, Any]


@attrs.frozen
class BaselineRow:
    """One host's idle power over one baseline: ``kind`` is ``opening`` (after a deployment,
    before its runs), ``closing`` (after its runs) or ``services-down`` (before anything is
    deployed). ``settled`` says whether the host power had settled before it started (None:
    not waited for), after ``settle_s`` seconds of waiting."""

    exp_id: int
    group: str
    kind: str
    start: float
    end: float
    host: str
    method: str
    mean_watts: float
    stdev_watts: float
    intervals: int
    settled: bool | None
    settle_s: float | None


@attrs.frozen
class WarningRow:
    """Something a reader of the figures must know: ``code`` names the kind
    (``repetitions``, ``background-load``, ``baseline-unsettled``, ``sample-gap``...),
    ``run_id`` is "" for the experiment as a whole."""

    exp_id: int
    run_id: str
    code: str
    message: str
    at: float


@attrs.frozen
class RunRow:
    """One run: a point of the parameter space, one repetition, and where it stands.

    ``phases`` maps each phase the run reached to the time it was entered (Unix
    seconds); a phase entered twice keeps its latest time.
    """

    run_id: str
    exp_id: int
    params: dict[str, Any]
    repetition: int
    order: int
    group: str
    status: RunStatus
    error: str | None
    started_at: float | None
    ended_at: float | None
    attempts: int
    phases: dict[str, float]

    def window(self, phase: Phase | str = Phase.MEASURE) -> Window | None:
        """From entering ``phase`` to entering the next phase, or None if either is missing."""
        start = self.phases.get(_text(phase))
        if start is None:
            return None
        later = [t for t in self.phases.values() if t > start]
        return Window(start, min(later)) if later else None


def _connect_read_only(path: Path) -> sqlite3.Connection:
    """A read-only connection to the store at ``path``, for a directory this process
    cannot write.

    SQLite reads a WAL database read-only when its ``-wal`` and ``-shm`` files exist (a
    store still open, or not closed cleanly). After a clean close they are gone and a
    read-only directory cannot get them back, so the file is then opened ``immutable``:
    nothing can change it there, and a checkpointed store has nothing outside the file.
    """
    uri = path.resolve().as_uri()
    error: sqlite3.Error | None = None
    for query in ("mode=ro", "immutable=1"):
        conn = sqlite3.connect(
            f"{uri}?{query}",
            uri=True,
            timeout=_BUSY_TIMEOUT_S,
            isolation_level=None,
            check_same_thread=False,
        )
        try:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.Error as exc:  # SQLite opens lazily: the first read says
            conn.close()
            error = exc
            continue
        return conn
    assert error is not None
    raise error


class Store:
    """The SQLite store of one output directory; open it with :meth:`open`.

    Safe to share between threads and to call from a signal handler: every method
    holds one re-entrant lock for its transaction.
    """

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self._conn = conn
        self.path = path
        # Re-entrant because a signal handler runs on the main thread, possibly while
        # that thread is inside a method: a plain Lock would deadlock there.
        self._lock = threading.RLock()
        self._depth = 0

    # -- opening -------------------------------------------------------------------

    @classmethod
    def open(cls, output_dir: str | Path, *, create: bool = True) -> Store:
        """Open (and with ``create``, make) ``<output_dir>/greenflow.sqlite``.

        ``create=False`` is for readers (``greenflow results``): a missing store is a
        :class:`StoreError` rather than a new empty database, and a store this process
        cannot write (a read-only file system, another user's results) is opened
        read-only: reading works, a write raises :class:`StoreError`.
        """
        output_dir = Path(output_dir)
        path = output_dir / DB_NAME
        if not create and not path.is_file():
            msg = (
                f"no GreenFlow store in {output_dir} ({path.name} not found); pass the "
                "results directory of a plan that has run (its [experiment] output)"
            )
            raise StoreError(msg)
        # os.access says False for a read-only file system too (EROFS), even to root.
        read_only = not create and not (os.access(output_dir, os.W_OK) and os.access(path, os.W_OK))
        try:
            if read_only:
                conn = _connect_read_only(path)
            else:
                output_dir.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(
                    path,
                    timeout=_BUSY_TIMEOUT_S,
                    # Transactions are opened explicitly (BEGIN IMMEDIATE) by _transaction.
                    isolation_level=None,
                    # The runner's main thread owns the store, but a signal handler or a
                    # helper thread may write; self._lock serialises them.
                    check_same_thread=False,
                )
        except (OSError, sqlite3.Error) as exc:
            msg = f"cannot open the store {path}: {exc}"
            raise StoreError(msg) from exc
        conn.row_factory = sqlite3.Row
        store = cls(conn, path)
        try:
            store._prepare(read_only=read_only)
        except BaseException:
            conn.close()
            raise
        return store

    def _prepare(self, *, read_only: bool = False) -> None:
        mode = "wal"  # read-only: nothing may be written, the journal mode is what it is
        try:
            if not read_only:
                mode = self._conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
                self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute("PRAGMA foreign_keys=ON")
            version = int(self._conn.execute("PRAGMA user_version").fetchone()[0])
        except sqlite3.DatabaseError as exc:
            msg = f"{self.path} is not a GreenFlow store: {exc}"
            raise StoreError(msg) from exc
        if read_only and version == 0:
            raise StoreError(f"{self.path} is not a GreenFlow store (it has no schema)")
        if read_only and version < SCHEMA_VERSION:
            msg = (
                f"{self.path} was written by an older GreenFlow (schema version {version}; this "
                f"one upgrades it to {SCHEMA_VERSION} in place) and its directory is read-only: "
                "copy the results directory somewhere writable and read the copy"
            )
            raise StoreError(msg)
        if str(mode).lower() != "wal":
            msg = f"cannot switch {self.path} to WAL mode (got {mode!r}); is it on a network file system?"
            raise StoreError(msg)
        if version > SCHEMA_VERSION:
            msg = (
                f"{self.path} has schema version {version}, written by a newer GreenFlow; "
                f"this one reads up to version {SCHEMA_VERSION}. Upgrade greenflow-core."
            )
            raise StoreError(msg)
        if version < SCHEMA_VERSION:
            with self._transaction("create the schema"):
                # executescript would COMMIT our transaction first; run statements one by one.
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        self._conn.execute(statement)
                self._conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def close(self) -> None:
        """Close the connection. Idempotent."""
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r})"

    @contextmanager
    def _transaction(self, what: str) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._depth:
                # Re-entered on the same thread: a signal handler interrupted a method
                # mid-transaction. Commit at once, taking the interrupted method's
                # statements along, because the handler may raise KeyboardInterrupt
                # next and its write (state left behind for `down`) must survive that.
                self._depth += 1
                try:
                    yield self._conn
                    self._execute("COMMIT", what)
                    self._execute("BEGIN IMMEDIATE", what)
                finally:
                    self._depth -= 1
                return
            if self._conn.in_transaction:
                # An exception raised between bytecodes (a signal's KeyboardInterrupt, a
                # step's deadline) struck an earlier method before its rollback could run,
                # e.g. just after its BEGIN: its work failed, so drop it. Beginning on top
                # would fail, and so would every write of the teardown after it.
                with suppress(sqlite3.Error):
                    self._conn.execute("ROLLBACK")
            try:
                self._depth = 1
                self._execute("BEGIN IMMEDIATE", what)
                yield self._conn
            except BaseException:
                # Nothing may be left to roll back, or the connection may be gone.
                with suppress(sqlite3.Error):
                    self._conn.execute("ROLLBACK")
                raise
            else:
                self._execute("COMMIT", what)
            finally:
                self._depth = 0

    def _execute(self, sql: str, what: str) -> None:
        try:
            self._conn.execute(sql)
        except sqlite3.Error as exc:
            raise _store_error(self.path, what, exc) from exc

    @contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise _store_error(self.path, what, exc) from exc

    def _query(self, what: str, sql: str, args: Iterable[Any] = ()) -> list[sqlite3.Row]:
        with self._lock, self._errors(what):
            return self._conn.execute(sql, tuple(args)).fetchall()

    # -- experiments ---------------------------------------------------------------

    def upsert_experiment(self, name: str, plan_path: str, plan_text: str, seed: int) -> int:
        """Create or update the experiment ``name``; return its id. Its runs are kept."""
        with (
            self._transaction(f"store experiment {name!r}") as conn,
            self._errors(f"store experiment {name!r}"),
        ):
            row = conn.execute(
                "INSERT INTO experiments (name, plan_path, plan_text, seed, created_at)"
                " VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (name) DO UPDATE SET"
                " plan_path = excluded.plan_path, plan_text = excluded.plan_text, seed = excluded.seed"
                " RETURNING id",
                (name, str(plan_path), redact_toml(plan_text), int(seed), time.time()),
            ).fetchone()
            return int(row[0])

    def get_experiment(self, name: str) -> ExperimentRow | None:
        rows = self._query("read experiment", "SELECT * FROM experiments WHERE name = ?", (name,))
        return _experiment(rows[0]) if rows else None

    def experiments(self) -> list[ExperimentRow]:
        """Every experiment, oldest first."""
        rows = self._query("read experiments", "SELECT * FROM experiments ORDER BY created_at, id")
        return [_experiment(r) for r in rows]

    def set_provenance(self, exp_id: int, provenance: Mapping[str, Any]) -> None:
        """Replace the experiment's provenance record (redacted)."""
        text = _dumps(redact(_plain(provenance)))
        with self._transaction("store provenance") as conn, self._errors("store provenance"):
            cur = conn.execute("UPDATE experiments SET provenance = ? WHERE id = ?", (text, exp_id))
            if cur.rowcount == 0:
                raise StoreError(f"no experiment with id {exp_id} in {self.path}")

    # -- live state for `greenflow down` ---------------------------------------------

    def record_state(
        self,
        exp_id: int,
        kind: str,
        name: str,
        plugin: str,
        config: Mapping[str, Any],
        state: Mapping[str, Any],
    ) -> None:
        """Record what ``kind`` ("platform", "service", "collector") ``name`` left running.

        One row per (experiment, kind, name): a later call replaces config and state
        but keeps the row's place in :meth:`live_state`. Secrets are redacted.
        """
        what = f"record state of {kind} {name!r}"
        config_text = _dumps(redact(_plain(config)))
        state_text = _dumps(redact(_plain(state)))
        with self._transaction(what) as conn, self._errors(what):
            conn.execute(
                "INSERT INTO live_state (exp_id, kind, name, plugin, config, state, recorded_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (exp_id, kind, name) DO UPDATE SET"
                " plugin = excluded.plugin, config = excluded.config, state = excluded.state,"
                " recorded_at = excluded.recorded_at",
                (exp_id, kind, name, plugin, config_text, state_text, time.time()),
            )

    def live_state(self, exp_id: int) -> list[dict[str, Any]]:
        """What is still up, in the order it was first recorded (release in reverse).

        Each item: ``kind``, ``name``, ``plugin``, ``config``, ``state``, ``recorded_at``.
        """
        rows = self._query(
            "read live state",
            "SELECT kind, name, plugin, config, state, recorded_at FROM live_state"
            " WHERE exp_id = ? ORDER BY rowid",
            (exp_id,),
        )
        return [
            {
                "kind": r["kind"],
                "name": r["name"],
                "plugin": r["plugin"],
                "config": json.loads(r["config"]),
                "state": json.loads(r["state"]),
                "recorded_at": r["recorded_at"],
            }
            for r in rows
        ]

    def clear_state(self, exp_id: int, kind: str | None = None, name: str | None = None) -> None:
        """Forget live state: all of the experiment's, one kind's, or one item's."""
        sql = "DELETE FROM live_state WHERE exp_id = ?"
        args: list[Any] = [exp_id]
        if kind is not None:
            sql += " AND kind = ?"
            args.append(kind)
        if name is not None:
            sql += " AND name = ?"
            args.append(name)
        with self._transaction("clear live state") as conn, self._errors("clear live state"):
            conn.execute(sql, args)

    # -- runs ----------------------------------------------------------------------

    def add_run(
        self,
        exp_id: int,
        run_id: str,
        params: Mapping[str, Any],
        repetition: int,
        order: int,
        group: str = "",
    ) -> None:
        """Add a pending run, or, if ``run_id`` is stored, update its order and group.

        Status, attempts and results of a stored run are kept: this is what makes a
        re-run of the same plan resume.
        """
        what = f"add run {run_id}"
        with self._transaction(what) as conn, self._errors(what):
            owner = conn.execute("SELECT exp_id FROM runs WHERE run_id = ?", (run_id,)).fetchone()
            if owner is not None and owner[0] != exp_id:
                msg = (
                    f"run {run_id} already belongs to experiment id {owner[0]}, not {exp_id}; "
                    "run ids must be unique across the experiments of one output directory"
                )
                raise StoreError(msg)
            conn.execute(
                "INSERT INTO runs (run_id, exp_id, params, repetition, run_order, run_group)"
                " VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (run_id) DO UPDATE SET"
                " run_order = excluded.run_order, run_group = excluded.run_group",
                (run_id, exp_id, _dumps(_plain(params)), int(repetition), int(order), group),
            )

    def get_runs(self, exp_id: int) -> list[RunRow]:
        """The experiment's runs in execution order."""
        rows = self._query(
            "read runs", "SELECT * FROM runs WHERE exp_id = ? ORDER BY run_order, run_id", (exp_id,)
        )
        phases = self._run_phases("exp_id = ? AND run_id IS NOT NULL", (exp_id,))
        return [_run(r, phases.get(r["run_id"], {})) for r in rows]

    def get_run(self, run_id: str) -> RunRow | None:
        rows = self._query("read run", "SELECT * FROM runs WHERE run_id = ?", (run_id,))
        if not rows:
            return None
        return _run(rows[0], self._run_phases("run_id = ?", (run_id,)).get(run_id, {}))

    def _run_phases(self, where: str, args: tuple[Any, ...]) -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = {}
        for r in self._query(
            "read phases",
            f"SELECT run_id, phase, at FROM phases WHERE {where} ORDER BY at, seq",
            args,
        ):
            out.setdefault(r["run_id"], {})[r["phase"]] = r["at"]
        return out

    def set_run_status(
        self, run_id: str, status: RunStatus | str, error: str | None = None
    ) -> None:
        """Set the run's status and error (None clears it).

        Entering ``running`` stamps ``started_at``, clears ``ended_at`` and counts one
        more attempt; entering ``finished``, ``failed`` or ``aborted`` stamps ``ended_at``.
        """
        status = _status(status)
        now = time.time()
        if status is RunStatus.RUNNING:
            sql = "status = ?, error = ?, started_at = ?, ended_at = NULL, attempts = attempts + 1"
            args: tuple[Any, ...] = (status.value, _error(error), now)
        elif status in _ENDED:
            sql, args = "status = ?, error = ?, ended_at = ?", (status.value, _error(error), now)
        else:
            sql, args = "status = ?, error = ?", (status.value, _error(error))
        what = f"set status of run {run_id}"
        with self._transaction(what) as conn, self._errors(what):
            if (
                conn.execute(f"UPDATE runs SET {sql} WHERE run_id = ?", (*args, run_id)).rowcount
                == 0
            ):
                raise StoreError(f"no run {run_id} in {self.path}")

    def reset_run(self, run_id: str) -> None:
        """Make the run pending again and delete its phases, samples, metrics and result.

        ``attempts`` is kept, so the store still tells how often a run was tried.
        """
        what = f"reset run {run_id}"
        with self._transaction(what) as conn, self._errors(what):
            cur = conn.execute(
                "UPDATE runs SET status = 'pending', error = NULL, started_at = NULL, ended_at = NULL"
                " WHERE run_id = ?",
                (run_id,),
            )
            if cur.rowcount == 0:
                raise StoreError(f"no run {run_id} in {self.path}")
            for table in ("phases", "samples", "metrics", "results", "warnings"):
                conn.execute(f"DELETE FROM {table} WHERE run_id = ?", (run_id,))

    # -- phases --------------------------------------------------------------------

    def record_phase(self, exp_id: int, run_id: str | None, phase: Phase | str, at: float) -> None:
        """Store that ``phase`` was entered at ``at`` (Unix seconds).

        ``run_id`` is None for experiment-level phases (acquire, deploy, baseline,
        remove, release); repeats are kept, e.g. one baseline per deployment group.
        """
        what = f"record phase {_text(phase)}"
        with self._transaction(what) as conn, self._errors(what):
            conn.execute(
                "INSERT INTO phases (exp_id, run_id, phase, at) VALUES (?, ?, ?, ?)",
                (exp_id, run_id, _text(phase), float(at)),
            )

    def phases(self, exp_id: int, run_id: str | None = None) -> list[tuple[str, float]]:
        """Phase boundaries in time order: the run's, or with ``run_id`` None the whole
        experiment's (its own phases and every run's), e.g. to shade a timeline."""
        sql = "SELECT phase, at FROM phases WHERE exp_id = ?"
        args: list[Any] = [exp_id]
        if run_id is not None:
            sql += " AND run_id = ?"
            args.append(run_id)
        return [
            (r["phase"], r["at"])
            for r in self._query("read phases", sql + " ORDER BY at, seq", args)
        ]

    # -- samples -------------------------------------------------------------------

    def add_samples(self, exp_id: int, run_id: str | None, samples: Iterable[Sample]) -> None:
        """Store samples in one transaction; ``run_id`` None for experiment-level ones."""
        # Built before the transaction so that a slow or failing iterable never holds
        # the write lock.
        rows = [
            (
                exp_id,
                run_id,
                s.timestamp,
                s.metric,
                _real(s.value),
                s.unit,
                s.method,
                s.host,
                _dumps(s.labels),
            )
            for s in samples
        ]
        if not rows:
            return
        with self._transaction("store samples") as conn, self._errors("store samples"):
            conn.executemany(
                "INSERT INTO samples (exp_id, run_id, timestamp, metric, value, unit, method, host, labels)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )

    def samples(
        self, exp_id: int, run_id: str | None = None, metric: str | None = None
    ) -> list[Sample]:
        """Samples in time order: a run's, or with ``run_id`` None all the experiment's."""
        sql = "SELECT * FROM samples WHERE exp_id = ?"
        args: list[Any] = [exp_id]
        if run_id is not None:
            sql += " AND run_id = ?"
            args.append(run_id)
        if metric is not None:
            sql += " AND metric = ?"
            args.append(metric)
        return [
            Sample(
                timestamp=r["timestamp"],
                metric=r["metric"],
                value=_float(r["value"]),
                unit=r["unit"],
                method=r["method"],
                host=r["host"],
                labels=json.loads(r["labels"]),
            )
            for r in self._query("read samples", sql + " ORDER BY timestamp, id", args)
        ]

    # -- baselines and warnings ----------------------------------------------------

    def add_baseline(self, row: BaselineRow) -> None:
        """Store one host's baseline."""
        what = f"store the {row.kind} baseline of {row.host}"
        with self._transaction(what) as conn, self._errors(what):
            conn.execute(
                "INSERT INTO baselines (exp_id, run_group, kind, start, end, host, method,"
                " mean_watts, stdev_watts, intervals, settled, settle_s)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    row.exp_id,
                    row.group,
                    row.kind,
                    row.start,
                    row.end,
                    row.host,
                    row.method,
                    _real(row.mean_watts),
                    _real(row.stdev_watts),
                    row.intervals,
                    None if row.settled is None else int(row.settled),
                    _real(row.settle_s),
                ),
            )

    def baselines(self, exp_id: int) -> list[BaselineRow]:
        """Every baseline of the experiment, in time order."""
        rows = self._query(
            "read baselines",
            "SELECT * FROM baselines WHERE exp_id = ? ORDER BY start, host",
            (exp_id,),
        )
        return [
            BaselineRow(
                exp_id=r["exp_id"],
                group=r["run_group"],
                kind=r["kind"],
                start=r["start"],
                end=r["end"],
                host=r["host"],
                method=r["method"],
                mean_watts=_float(r["mean_watts"]),
                stdev_watts=_float(r["stdev_watts"]),
                intervals=r["intervals"],
                settled=None if r["settled"] is None else bool(r["settled"]),
                settle_s=r["settle_s"],
            )
            for r in rows
        ]

    def add_warning(self, exp_id: int, run_id: str | None, code: str, message: str) -> None:
        """Store a warning (one per experiment, run and code: a newer one replaces it)."""
        what = f"store warning {code}"
        with self._transaction(what) as conn, self._errors(what):
            conn.execute(
                "INSERT INTO warnings (exp_id, run_id, code, message, at) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (exp_id, run_id, code) DO UPDATE SET"
                " message = excluded.message, at = excluded.at",
                (exp_id, run_id or "", code, redact_text(message), time.time()),
            )

    def clear_warning(self, exp_id: int, run_id: str | None, code: str) -> None:
        """Forget a warning that no longer holds (e.g. enough repetitions now)."""
        what = f"clear warning {code}"
        with self._transaction(what) as conn, self._errors(what):
            conn.execute(
                "DELETE FROM warnings WHERE exp_id = ? AND run_id = ? AND code = ?",
                (exp_id, run_id or "", code),
            )

    def warnings(self, exp_id: int, run_id: str | None = None) -> list[WarningRow]:
        """The experiment's warnings (all, or one run's with ``run_id``), oldest first."""
        sql = "SELECT * FROM warnings WHERE exp_id = ?"
        args: list[object] = [exp_id]
        if run_id is not None:
            sql, args = sql + " AND run_id = ?", [*args, run_id]
        rows = self._query("read warnings", sql + " ORDER BY at, id", args)
        return [
            WarningRow(r["exp_id"], r["run_id"], r["code"], r["message"], r["at"]) for r in rows
        ]

    # -- metrics and results -------------------------------------------------------

    def add_metrics(self, run_id: str, metrics: Iterable[Metric]) -> None:
        """Store per-run figures; one with the same name, method and labels is replaced."""
        rows = [
            (run_id, m.name, _real(m.value), m.unit, m.method, _dumps(m.labels)) for m in metrics
        ]
        if not rows:
            return
        what = f"store metrics of run {run_id}"
        with self._transaction(what) as conn, self._errors(what):
            conn.executemany(
                "INSERT INTO metrics (run_id, name, value, unit, method, labels) VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (run_id, name, method, labels) DO UPDATE SET"
                " value = excluded.value, unit = excluded.unit",
                rows,
            )

    def metrics(self, run_id: str) -> list[Metric]:
        """The run's figures, in the order they were first stored."""
        rows = self._query(
            "read metrics", "SELECT * FROM metrics WHERE run_id = ? ORDER BY id", (run_id,)
        )
        return [
            Metric(
                name=r["name"],
                value=_float(r["value"]),
                unit=r["unit"],
                method=r["method"],
                labels=json.loads(r["labels"]),
            )
            for r in rows
        ]

    def set_result(self, run_id: str, result: WorkloadResult) -> None:
        """Store (or replace) what the run's workload achieved."""
        what = f"store result of run {run_id}"
        with self._transaction(what) as conn, self._errors(what):
            conn.execute(
                "INSERT INTO results (run_id, units, unit, payload_bytes, achieved_rate, latency_ms, metrics)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (run_id) DO UPDATE SET"
                " units = excluded.units, unit = excluded.unit, payload_bytes = excluded.payload_bytes,"
                " achieved_rate = excluded.achieved_rate, latency_ms = excluded.latency_ms,"
                " metrics = excluded.metrics",
                (
                    run_id,
                    _real(result.units),
                    result.unit,
                    _real(result.payload_bytes),
                    _real(result.achieved_rate),
                    _dumps({k: _real(v) for k, v in result.latency_ms.items()}),
                    _dumps({k: _real(v) for k, v in result.metrics.items()}),
                ),
            )

    def result(self, run_id: str) -> WorkloadResult | None:
        rows = self._query("read result", "SELECT * FROM results WHERE run_id = ?", (run_id,))
        if not rows:
            return None
        r = rows[0]
        return WorkloadResult(
            units=_float(r["units"]),
            unit=r["unit"],
            payload_bytes=r["payload_bytes"],
            achieved_rate=r["achieved_rate"],
            latency_ms={k: _float(v) for k, v in json.loads(r["latency_ms"]).items()},
            metrics={k: _float(v) for k, v in json.loads(r["metrics"]).items()},
        )


# -- conversions ---------------------------------------------------------------------


def _text(value: Phase | RunStatus | str) -> str:
    # str() of a str-mixin Enum is "Phase.MEASURE" on Python 3.11, not its value.
    return value.value if isinstance(value, enum.Enum) else str(value)


def _status(value: RunStatus | str) -> RunStatus:
    try:
        return RunStatus(_text(value))
    except ValueError:
        valid = ", ".join(s.value for s in RunStatus)
        msg = f"unknown run status {value!r}; valid: {valid}"
        raise StoreError(msg) from None


def _error(error: str | None) -> str | None:
    return None if error is None else redact_text(error)


def _real(value: float | None) -> float | None:
    # SQLite turns NaN into NULL anyway; do it here so that every reader sees the same.
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


def _float(value: float | None) -> float:
    return math.nan if value is None else float(value)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, set | frozenset):
        return sorted(obj, key=repr)
    if attrs.has(type(obj)):
        return attrs.asdict(obj, recurse=True)
    if isinstance(obj, bytes):
        return obj.decode("utf-8", "replace")
    # Plugins hand over their state as "JSON-serialisable"; anything else is stored as
    # its text rather than losing the whole record for `down`.
    return str(obj)


def _dumps(value: Any) -> str:
    return json.dumps(value, default=_json_default, sort_keys=True)


def _plain(mapping: Mapping[str, Any]) -> dict[str, Any]:
    """JSON-shaped copy: attrs objects, paths, enums, tuples become dicts, strings, lists."""
    plain: dict[str, Any] = json.loads(json.dumps(dict(mapping), default=_json_default))
    return plain


def _experiment(r: sqlite3.Row) -> ExperimentRow:
    return ExperimentRow(
        id=r["id"],
        name=r["name"],
        plan_path=r["plan_path"],
        plan_text=r["plan_text"],
        seed=r["seed"],
        created_at=r["created_at"],
        provenance=json.loads(r["provenance"]),
    )


def _run(r: sqlite3.Row, phases: dict[str, float]) -> RunRow:
    return RunRow(
        run_id=r["run_id"],
        exp_id=r["exp_id"],
        params=json.loads(r["params"]),
        repetition=r["repetition"],
        order=r["run_order"],
        group=r["run_group"],
        status=RunStatus(r["status"]),
        error=r["error"],
        started_at=r["started_at"],
        ended_at=r["ended_at"],
        attempts=r["attempts"],
        phases=phases,
    )


def _store_error(path: Path, what: str, exc: sqlite3.Error) -> StoreError:
    text = str(exc)
    if "locked" in text or "busy" in text:
        text += f" (another process kept {path.name} locked for {_BUSY_TIMEOUT_S:g}s; is a second greenflow writing?)"
    return StoreError(f"cannot {what} in {path}: {text}")
