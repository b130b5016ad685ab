"""Per parameter point across repetitions: every numeric figure of the finished runs.

Runs of one experiment are grouped by their parameters (the swept values,
``RunRow.params``); the repetitions of a point are its finished runs. Each figure is
keyed by the column the per-run export gives it (docs/results.md, *Metric columns*) and
summarised per method: figures obtained by different methods are never averaged
together (see :func:`summarize`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs

from greenflow.api.context import Metric, WorkloadResult
from greenflow.errors import StoreError
from greenflow.stats.describe import Stat, describe, widen
from greenflow.store.db import RunRow, RunStatus, Store
from greenflow.store.export import columns as export_columns
from greenflow.store.export import metric_column

#: Method of the figures a workload reports itself (units, rate, latency).
WORKLOAD_METHOD = "workload"

# Per-host figures with these endings add up over hosts (energy, power, and energy per
# unit, whose denominator is the same for every host), so a total is derived.
_ADDITIVE = ("_joules", "_watts")

# (name, sorted label items, method): one figure of one run.
_Key = tuple[str, tuple[tuple[str, str], ...], str]


@attrs.frozen
class PointSummary:
    """One point of the parameter space of an experiment, across its repetitions.

    ``n`` counts the finished runs; failed and aborted runs are left out of every
    statistic and counted in ``n_failed`` and ``n_aborted`` (pending and running runs
    are in none of the counts). ``stats`` maps an export column (``energy_joules[host]``,
    ``achieved_rate``, ``latency_ms.p99``, ...) to its :class:`Stat`; a figure whose
    runs used more than one method has one entry per method (see :func:`summarize`).
    ``unit`` is what the workload counted (``message``), None if the runs disagree or
    none reported.
    """

    experiment: str
    params: dict[str, Any]
    n: int
    n_failed: int
    n_aborted: int
    unit: str | None
    stats: dict[str, Stat]


def summarize(store: Store, experiment: str) -> list[PointSummary]:
    """Mean, sd, 95 % t-interval and n of every figure, per parameter point of ``experiment``.

    Figures (docs/results.md, *Statistics*):

    * the workload's result: ``units``, ``payload_bytes``, ``achieved_rate``,
      ``latency_ms.<p>``, ``result.<key>`` (method ``workload``);
    * every stored per-run metric, under its export column (``energy_joules[host/n1]``,
      ``active_energy_joules[host/n1]``, ``idle_energy_joules[idle/n1]``,
      ``energy_per_message_joules[service/kafka@n1]``, ``energy_per_mib_joules[...]``,
      ``mean_power_watts[host/n1]``, ...);
    * totals over hosts of per-host energy and power figures (names ending ``_joules``
      or ``_watts``), under the column without the host (``energy_joules[host]``,
      ``energy_per_message_joules[service/kafka]``), derived per run when every host
      that has the figure has it with the same method, and none is stored.

    A figure obtained by several methods within one point (RAPL in some repetitions, a
    model in others; or RAPL and Kwollect in each) is summarised per method: the
    preferred method (``rapl``, then other measurements, then models) keeps the plain
    column and each other gets ``,method=<method>`` inside the brackets, as in the export.

    Points are sorted by their parameter values. Raises
    :class:`~greenflow.errors.StoreError` when there is no such experiment.
    """
    exp = store.get_experiment(experiment)
    if exp is None:
        known = ", ".join(repr(e.name) for e in store.experiments()) or "none"
        msg = f"no experiment {experiment!r} in {store.path}; stored experiments: {known}"
        raise StoreError(msg)
    points: dict[str, list[RunRow]] = {}
    for run in store.get_runs(exp.id):
        points.setdefault(_params_key(run.params), []).append(run)
    keys = list(dict.fromkeys(k for runs in points.values() for k in runs[0].params))
    out = []
    for runs in sorted(points.values(), key=lambda rs: _sort_key(rs[0].params, keys)):
        finished = [r for r in runs if r.status is RunStatus.FINISHED]
        values: dict[tuple[str, tuple[tuple[str, str], ...]], dict[str, list[float]]] = {}
        idle_u: dict[_Key, list[float]] = {}
        units: set[str] = set()
        for run in finished:
            result = store.result(run.run_id)
            if result is not None:
                units.add(result.unit)
            metrics = store.metrics(run.run_id)
            for (name, labels, method), value in _figures(metrics, result):
                if value is not None and math.isfinite(value):
                    values.setdefault((name, labels), {}).setdefault(method, []).append(value)
            for key, u in _idle_uncertainties(metrics, result).items():
                idle_u.setdefault(key, []).append(u)
        out.append(
            PointSummary(
                experiment=exp.name,
                params=dict(runs[0].params),
                n=len(finished),
                n_failed=sum(r.status is RunStatus.FAILED for r in runs),
                n_aborted=sum(r.status is RunStatus.ABORTED for r in runs),
                unit=units.pop() if len(units) == 1 else None,
                stats=_stats(values, idle_u),
            )
        )
    return out


def find(
    summary: PointSummary, name: str, labels: Mapping[str, str], method: str | None = None
) -> Stat | None:
    """The Stat of figure ``name`` with ``labels``: by ``method``, else the plain column.

    ``find(point, "energy_joules", {"scope": "host"}, "model:linear")`` finds the total
    host energy by the model whether it is ``energy_joules[host]`` (the only method) or
    ``energy_joules[host,method=model:linear]`` (RAPL was there too).
    """
    plain = summary.stats.get(metric_column(name, labels))
    if method is None or (plain is not None and plain.method == method):
        return plain
    other = summary.stats.get(metric_column(name, {**labels, "method": method}))
    return other if other is not None and other.method == method else None


def to_dicts(summaries: Iterable[PointSummary]) -> list[dict[str, Any]]:
    """Summaries as plain, JSON-ready dicts (``stats`` → ``{column: {mean, sd, ...}}``)."""
    return [
        {
            "experiment": s.experiment,
            "params": s.params,
            "n": s.n,
            "n_failed": s.n_failed,
            "n_aborted": s.n_aborted,
            "unit": s.unit,
            "stats": {k: attrs.asdict(v) for k, v in s.stats.items()},
        }
        for s in summaries
    ]


def to_json(summaries: Iterable[PointSummary]) -> str:
    """Summaries as a JSON array (NaN and infinities, which never occur, would be null)."""
    return json.dumps(to_dicts(summaries), indent=2, default=str)


#: Fields of each figure in :func:`to_rows`, as ``<column>.<field>``.
STAT_FIELDS = ("mean", "sd", "ci_low", "ci_high", "n", "method", "systematic")


def to_rows(summaries: Sequence[PointSummary]) -> list[dict[str, Any]]:
    """One flat row per point: ``experiment``, ``param.<key>``, ``n``, ``n_failed``,
    ``n_aborted``, ``unit``, then ``<column>.mean``/``.sd``/``.ci_low``/``.ci_high``/``.n``/
    ``.method`` for each figure, columns in the export's order. Every row has every key
    (None where a point lacks a figure), so the rows make a rectangular table."""
    params = list(dict.fromkeys(k for s in summaries for k in s.params))
    figures = _ordered(dict.fromkeys(k for s in summaries for k in s.stats))
    out = []
    for s in summaries:
        row: dict[str, Any] = {"experiment": s.experiment}
        row.update({f"param.{k}": s.params.get(k) for k in params})
        row.update(n=s.n, n_failed=s.n_failed, n_aborted=s.n_aborted, unit=s.unit)
        for column in figures:
            stat = s.stats.get(column)
            for field in STAT_FIELDS:
                row[f"{column}.{field}"] = getattr(stat, field) if stat is not None else None
        out.append(row)
    return out


# -- internals -----------------------------------------------------------------------


def _figures(
    metrics: Sequence[Metric], result: WorkloadResult | None
) -> list[tuple[_Key, float | None]]:
    """Every numeric figure of one run, each keyed by (name, labels, method)."""
    out: list[tuple[_Key, float | None]] = []
    if result is not None:
        plain: list[tuple[str, float | None]] = [
            ("units", result.units),
            ("payload_bytes", result.payload_bytes),
            ("achieved_rate", result.achieved_rate),
            *((f"latency_ms.{k}", v) for k, v in result.latency_ms.items()),
            *((f"result.{k}", v) for k, v in result.metrics.items()),
        ]
        out += [((name, (), WORKLOAD_METHOD), value) for name, value in plain]
    stored = [((m.name, _items(m.labels), m.method), m.value) for m in metrics]
    return out + stored + _host_totals(metrics, {key for key, _ in stored})


def _host_totals(metrics: Sequence[Metric], stored: set[_Key]) -> list[tuple[_Key, float | None]]:
    # Hosts of each subject (figure, scope, group/service), over every method and label
    # variant: a total covering fewer hosts would be a partial sum under a total's name.
    subject_hosts: dict[tuple[str, str | None, str | None], set[str]] = {}
    sums: dict[_Key, dict[str, float]] = {}
    for m in metrics:
        host = m.labels.get("host")
        if host is None or not m.name.endswith(_ADDITIVE):
            continue
        subject = (m.name, m.labels.get("scope"), m.labels.get("group") or m.labels.get("service"))
        subject_hosts.setdefault(subject, set()).add(host)
        rest = {k: v for k, v in m.labels.items() if k != "host"}
        sums.setdefault((m.name, _items(rest), m.method), {})[host] = m.value
    out: list[tuple[_Key, float | None]] = []
    for key, by_host in sums.items():
        name, labels, _ = key
        rest = dict(labels)
        subject = (name, rest.get("scope"), rest.get("group") or rest.get("service"))
        if key in stored or set(by_host) != subject_hosts[subject]:
            continue
        out.append((key, math.fsum(by_host.values())))
    return out


def _stats(
    values: Mapping[tuple[str, tuple[tuple[str, str], ...]], Mapping[str, list[float]]],
    idle_u: Mapping[_Key, list[float]],
) -> dict[str, Stat]:
    stats: dict[str, Stat] = {}
    for (name, labels), by_method in values.items():
        for i, method in enumerate(sorted(by_method, key=_method_rank)):
            shown = dict(labels) if i == 0 else {**dict(labels), "method": method}
            stat = describe(by_method[method], method)
            u = idle_u.get((name, labels, method))
            if u and len(u) == stat.n:
                # The idle power subtracted is common to the point's repetitions: its
                # uncertainty does not average out (docs/measurement.md, Idle baselines).
                stat = widen(stat, math.fsum(u) / len(u))
            stats[metric_column(name, shown)] = stat
    return {k: stats[k] for k in _ordered(stats)}


def _idle_uncertainties(
    metrics: Sequence[Metric], result: WorkloadResult | None
) -> dict[_Key, float]:
    """One run's standard uncertainty, from its idle power, of each dynamic figure: the
    host's ``active_energy_*`` and the attributed (service, load generator, other) energy
    and their per-unit figures, which are shares of the host's active energy."""
    u_host = {
        m.labels.get("host"): (m.value, m.method)
        for m in metrics
        if m.name == "active_energy_uncertainty_joules"
    }
    active = {
        m.labels.get("host"): m.value
        for m in metrics
        if m.name == "active_energy_joules" and m.labels.get("scope") == "host"
    }
    units = result.units if result is not None and result.units > 0 else None
    out: dict[_Key, float] = {}
    for m in metrics:
        host = m.labels.get("host")
        if host not in u_host:
            continue
        u, _ = u_host[host]
        scope = m.labels.get("scope")
        if scope == "host" and m.name.startswith("active_energy_"):
            fraction = 1.0
        elif scope in ("service", "loadgen", "other") and m.name.startswith("energy_"):
            whole = active.get(host)
            if not whole or m.name == "energy_share_ratio":
                continue
            # An attributed figure is the host's active energy × a share: so is its error.
            per_unit = "_per_" in m.name
            value = m.value * units if per_unit and units else m.value
            fraction = abs(value / whole)
        else:
            continue
        if "_per_" in m.name:
            if units is None or "_per_mib_" in m.name:
                continue
            out[(m.name, _items(m.labels), m.method)] = u * fraction / units
        elif m.name.endswith("_joules") and "uncertainty" not in m.name:
            out[(m.name, _items(m.labels), m.method)] = u * fraction
    return out


def _method_rank(method: str) -> tuple[int, str]:
    # The same preference as the attribution's choice of a host's energy: RAPL, then
    # other measurements, then models; "rapl+cpu-share" ranks with "rapl".
    base = method.split("+", 1)[0]
    return (0 if base == "rapl" else 2 if base.startswith("model:") else 1, method)


def _ordered(columns: Iterable[str]) -> list[str]:
    """The export's column order: result columns, latency, ``result.*``, metrics by name."""
    return export_columns([dict.fromkeys(columns)])


def _items(labels: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((str(k), str(v)) for k, v in labels.items()))


def _params_key(params: Mapping[str, Any]) -> str:
    return json.dumps(params, sort_keys=True, default=str)


def _sort_key(params: Mapping[str, Any], keys: Sequence[str]) -> tuple[tuple[int, Any], ...]:
    # Numbers by value (a rate of 500 before 2000), everything else by its JSON text;
    # missing keys first. Mixed types never meet in one comparison thanks to the rank.
    def one(value: Any) -> tuple[int, Any]:
        if value is None:
            return (0, 0)
        if isinstance(value, bool):
            return (1, int(value))
        if isinstance(value, int | float):
            return (2, value)
        if isinstance(value, str):
            return (3, value)
        return (4, json.dumps(value, sort_keys=True, default=str))

    return tuple(one(params.get(k)) for k in keys)
