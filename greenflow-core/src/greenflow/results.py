"""Stored results for notebooks and scripts: ``greenflow.results.load(output_dir)``.

The functions return a pandas DataFrame when pandas can be imported and a list of
dicts (one per row, same keys as the DataFrame's columns) otherwise: GreenFlow does
not depend on pandas, and a plain list is what ``json`` or ``csv`` take anyway.
Columns are described in docs/results.md.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from greenflow.errors import StoreError
from greenflow.store import RunRow, Store
from greenflow.store.export import columns, rows

__all__ = ["load", "load_samples", "summary"]

#: Columns of :func:`load_samples`, in order.
SAMPLE_COLUMNS = ("timestamp", "metric", "value", "unit", "method", "host", "labels", "run_id")


def load(output_dir: str | Path, experiment: str | None = None) -> Any:
    """One row per run of ``experiment`` (default: every experiment) in ``output_dir``.

    Returns a ``pandas.DataFrame`` if pandas is installed, else a ``list[dict]``.
    Raises :class:`~greenflow.errors.StoreError` if there is no store there or no such
    experiment.
    """
    with Store.open(output_dir, create=False) as store:
        data = rows(store, experiment)
    return _frame(data, columns(data))


def load_samples(output_dir: str | Path, run_id: str) -> Any:
    """Every sample stored for one run, in time order.

    ``run_id`` may be a unique prefix of the id (as ``greenflow results`` shows it).
    Columns: timestamp (Unix s), metric, value, unit, method, host, labels (a dict),
    run_id. A DataFrame if pandas is installed, else a ``list[dict]``.
    """
    with Store.open(output_dir, create=False) as store:
        run = store.get_run(run_id) or _by_prefix(store, run_id)
        data = [
            {
                "timestamp": s.timestamp,
                "metric": s.metric,
                "value": s.value,
                "unit": s.unit,
                "method": s.method,
                "host": s.host,
                "labels": dict(s.labels),
                "run_id": run.run_id,
            }
            for s in store.samples(run.exp_id, run.run_id)
        ]
    return _frame(data, list(SAMPLE_COLUMNS))


def summary(output_dir: str | Path, experiment: str | None = None) -> Any:
    """One row per parameter point across repetitions, of ``experiment`` (default: all).

    Columns: ``experiment``, ``param.<key>``, ``n`` (finished runs), ``n_failed``,
    ``n_aborted``, ``unit``, then for every figure ``<column>.mean``, ``.sd``, ``.ci_low``,
    ``.ci_high`` (95 % Student t), ``.n`` and ``.method`` (see docs/results.md,
    *Statistics*; :func:`greenflow.stats.summarize` gives the same as objects).
    A DataFrame if pandas is installed, else a ``list[dict]``.
    """
    from greenflow.stats import summarize, to_rows

    with Store.open(output_dir, create=False) as store:
        names = [e.name for e in store.experiments()] if experiment is None else [experiment]
        data = to_rows([p for name in names for p in summarize(store, name)])
    return _frame(data, list(data[0]) if data else [])


def _by_prefix(store: Store, prefix: str) -> RunRow:
    matches = [
        r for e in store.experiments() for r in store.get_runs(e.id) if r.run_id.startswith(prefix)
    ]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        msg = f"no run {prefix!r} in {store.path}; `greenflow results` lists the runs"
    else:
        ids = ", ".join(r.run_id for r in matches[:5])
        msg = f"run id prefix {prefix!r} is ambiguous in {store.path}: {ids}{'...' if len(matches) > 5 else ''}"
    raise StoreError(msg)


def _frame(data: list[dict[str, Any]], cols: Sequence[str]) -> Any:
    try:
        # Imported by name so that type checking does not need pandas or its stubs.
        pandas = importlib.import_module("pandas")
    except ImportError:
        return data
    return pandas.DataFrame.from_records(data, columns=list(cols))
