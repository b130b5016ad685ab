"""Runs flattened into rows (one per run) for CSV, JSON and DataFrames.

Column names are part of the user interface (notebooks and scripts read them), so
they are built by the rules documented in docs/results.md and nowhere else.
"""

from __future__ import annotations

import csv
import json
import math
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from greenflow.api.context import Metric, Phase
from greenflow.errors import StoreError
from greenflow.store.db import ExperimentRow, RunRow, Store

#: Columns every row has, in this order.
RUN_COLUMNS = (
    "experiment",
    "run_id",
    "order",
    "repetition",
    "group",
    "status",
    "error",
    "attempts",
    "started_at",
    "ended_at",
)
MEASURE_COLUMNS = ("measure.start", "measure.end", "measure.duration_s")
RESULT_COLUMNS = ("units", "unit", "payload_bytes", "achieved_rate")
#: Prefix of a metric column that would otherwise take one of the columns above.
METRIC_PREFIX = "metric."

# Parameters are always `param.<axis>`, so an axis named `error` or `status` cannot take a
# run column; a metric can (a workload figure named `error` is stored as a metric too).
_RESERVED = frozenset(RUN_COLUMNS + MEASURE_COLUMNS + RESULT_COLUMNS)

# Labels that make up the bracketed part of a metric column; any others follow as k=v.
_SCOPE, _HOST = "scope", "host"
_SUBJECT_KEYS = ("group", "service")


def metric_column(name: str, labels: Mapping[str, str]) -> str:
    """The column of a metric: ``name[scope/subject@host,key=value]``.

    ``subject`` is the ``group`` (else ``service``) label with a leading ``scope:``
    dropped (``service:kafka`` under scope ``service`` is ``kafka``); ``@host`` is
    there when both a subject and a host are; with no subject the host is the subject.
    Labels beyond scope, subject and host follow sorted as ``,key=value``. No labels:
    just ``name``.

    >>> metric_column("energy_joules", {"scope": "host", "host": "n1"})
    'energy_joules[host/n1]'
    >>> metric_column("energy_joules", {"scope": "service", "group": "service:kafka", "host": "n1"})
    'energy_joules[service/kafka@n1]'
    """
    scope = labels.get(_SCOPE, "")
    subject_key = next((k for k in _SUBJECT_KEYS if labels.get(k)), None)
    subject = labels[subject_key] if subject_key else ""
    if scope and subject.startswith(f"{scope}:"):
        subject = subject[len(scope) + 1 :]
    host = labels.get(_HOST, "")
    if subject and host:
        subject = f"{subject}@{host}"
    elif host:
        subject = host
    head = "/".join(p for p in (scope, subject) if p)
    used = {_SCOPE, _HOST, subject_key}
    extra = [f"{k}={v}" for k, v in sorted(labels.items()) if k not in used]
    inside = ",".join(p for p in (head, *extra) if p)
    return f"{name}[{inside}]" if inside else name


def run_row(experiment: ExperimentRow, run: RunRow, store: Store) -> dict[str, Any]:
    """One run as a flat dict (see docs/results.md for the columns)."""
    row: dict[str, Any] = {
        "experiment": experiment.name,
        "run_id": run.run_id,
        "order": run.order,
        "repetition": run.repetition,
        "group": run.group,
        "status": run.status.value,
        "error": run.error,
        "attempts": run.attempts,
        "started_at": run.started_at,
        "ended_at": run.ended_at,
    }
    for key, value in run.params.items():
        row[f"param.{key}"] = value
    window = run.window(Phase.MEASURE)
    row["measure.start"] = run.phases.get(Phase.MEASURE.value)
    row["measure.end"] = window.end if window else None
    row["measure.duration_s"] = window.duration_s if window else None
    result = store.result(run.run_id)
    if result is not None:
        row["units"] = _value(result.units)
        row["unit"] = result.unit
        row["payload_bytes"] = _value(result.payload_bytes)
        row["achieved_rate"] = _value(result.achieved_rate)
        for key, value in result.latency_ms.items():
            row[f"latency_ms.{key}"] = _value(value)
        for key, value in result.metrics.items():
            row[f"result.{key}"] = _value(value)
    row.update(metric_columns(store.metrics(run.run_id)))
    return row


def metric_columns(metrics: Iterable[Metric]) -> dict[str, Any]:
    """``<column>`` → value and ``<column>.method`` → method for each metric, sorted.

    When two methods give the same metric with the same labels (RAPL and a model, say),
    the first stored keeps the plain column and each other one gets ``,method=<method>``
    inside its brackets, so no figure is silently dropped. A metric whose column would be
    a run, window or result column (a workload figure named ``error``) is
    ``metric.<column>`` instead; the workload's own copy of a result figure (``payload_bytes``,
    method ``workload``) keeps the result's column, which holds the same value.
    """
    out: dict[str, Any] = {}
    methods: dict[str, str] = {}
    for m in metrics:
        column = _unreserved(metric_column(m.name, m.labels), m.method)
        if column in methods and methods[column] != m.method:
            column = _unreserved(metric_column(m.name, {**m.labels, "method": m.method}), m.method)
        methods[column] = m.method
        out[column] = _value(m.value)
        out[f"{column}.method"] = m.method
    return {k: out[k] for k in sorted(out)}


def _unreserved(column: str, method: str) -> str:
    if column not in _RESERVED or (method == "workload" and column in RESULT_COLUMNS):
        return column
    return f"{METRIC_PREFIX}{column}"


def rows(store: Store, experiment: str | None = None) -> list[dict[str, Any]]:
    """One row per run: of ``experiment``, or of every experiment (oldest first).

    Every row has every column of :func:`columns`, in that order; a value a run lacks (no
    result, a metric another run has) is None, so JSON shows ``null`` rather than leaving
    the key out.
    """
    if experiment is None:
        experiments = store.experiments()
    else:
        found = store.get_experiment(experiment)
        if found is None:
            known = ", ".join(repr(e.name) for e in store.experiments()) or "none"
            msg = f"no experiment {experiment!r} in {store.path}; stored experiments: {known}"
            raise StoreError(msg)
        experiments = [found]
    data = [run_row(exp, run, store) for exp in experiments for run in store.get_runs(exp.id)]
    # Every row lists every key in the shared column order, so JSON reads like the CSV.
    cols = columns(data)
    return [{c: row.get(c) for c in cols} for row in data]


def columns(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """Every column of ``rows`` in a stable, readable order.

    Run columns, then ``param.*``, measure window, result columns, ``latency_ms.*``,
    ``result.*``, then metric columns sorted by name; within a group, first seen first.
    """
    seen: dict[str, None] = {}
    for row in rows:
        seen.update(dict.fromkeys(row))
    fixed = sorted((c for c in seen if _rank(c)[0] != _METRICS), key=_rank)
    return fixed + sorted(c for c in seen if _rank(c)[0] == _METRICS)


_METRICS = 6
# WorkloadResult's documented percentiles, in reading order rather than alphabetical.
_LATENCY_ORDER = ("avg", "p50", "p95", "p99", "p999", "max")


def _rank(column: str) -> tuple[int, int]:
    # Python's sort is stable, so columns of equal rank keep their first-seen order.
    if column in RUN_COLUMNS:
        return (0, RUN_COLUMNS.index(column))
    if column.startswith("param."):
        return (1, 0)
    if column in MEASURE_COLUMNS:
        return (2, MEASURE_COLUMNS.index(column))
    if column in RESULT_COLUMNS:
        return (3, RESULT_COLUMNS.index(column))
    if column.startswith("latency_ms."):
        key = column.removeprefix("latency_ms.")
        return (4, _LATENCY_ORDER.index(key) if key in _LATENCY_ORDER else len(_LATENCY_ORDER))
    if column.startswith("result."):
        return (5, 0)
    return (_METRICS, 0)


def to_json(rows: Sequence[Mapping[str, Any]]) -> str:
    """Rows as a JSON array (NaN and infinities become null, so any parser reads it)."""
    return json.dumps(
        [{k: _json_value(v) for k, v in row.items()} for row in rows], indent=2, default=str
    )


def write_csv(rows: Sequence[Mapping[str, Any]], path: str | Path | IO[str]) -> None:
    """Write rows as CSV with a header of :func:`columns`; ``"-"`` writes to stdout.

    Missing values are empty cells; lists and mappings (e.g. a list-valued parameter)
    are written as JSON.
    """
    header = columns(rows)
    if isinstance(path, str | Path) and str(path) != "-":
        with open(path, "w", newline="", encoding="utf-8") as f:
            _write_csv(rows, header, f)
    else:
        _write_csv(rows, header, sys.stdout if isinstance(path, str | Path) else path)


def _write_csv(rows: Sequence[Mapping[str, Any]], header: list[str], f: IO[str]) -> None:
    writer = csv.DictWriter(f, fieldnames=header, restval="", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _csv_value(v) for k, v in row.items()})


def _value(v: float | None) -> float | None:
    # The store reads NULL as NaN; rows say "missing" the way JSON and CSV can: None.
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else v


def _json_value(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _csv_value(v: Any) -> Any:
    if v is None:
        return ""
    if isinstance(v, Mapping | list | tuple):
        return json.dumps(v, sort_keys=True, default=str)
    return v
