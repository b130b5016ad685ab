"""The report's text parts: warnings, idle power, the points and runs tables and the
provenance."""

from __future__ import annotations

import json

from greenflow.report import plots
from greenflow.report.conclusions import PROVENANCE_KEY, read_conclusions
from greenflow.report.context import (
    Context,
    asked_rate,
    group_share,
    group_stat,
    host_stat,
    joules_column,
    run_order,
    share_label,
    summary_stat,
)
from greenflow.report.data import (
    IdlePower,
    short_axis,
    standard_error,
)
from greenflow.report.text import (
    escape,
    flatten,
    hidden,
    num,
    percent,
    stat_text,
    table,
)
from greenflow.store.db import BaselineRow


def warnings(ctx: Context) -> str:
    d = ctx.data
    if not d.warnings:
        return '<p class="meta">No warning was stored for this experiment.</p>'
    by_id = {r.run.run_id: r for r in d.runs}
    ordered = sorted(
        d.warnings,
        key=lambda w: (w.run_id != "", by_id[w.run_id].run.order if w.run_id in by_id else -1),
    )
    items = []
    for w in ordered:
        if not w.run_id:
            where = "experiment"
        elif w.run_id in by_id:
            r = by_id[w.run_id]
            where = f"run #{r.run.order} ({ctx.point_label(r)})"
        else:
            where = f"run {w.run_id}"
        items.append(
            f'<li><span class="where">{escape(where)}</span> <code>{escape(w.code)}</code>: '
            f"{escape(ctx.paths.text(w.message))}</li>"
        )
    return (
        f'<ul class="warnings">{"".join(items)}</ul><p class="meta">What each code means: '
        "docs/measurement.md, Warnings.</p>"
    )


def wall_checks(ctx: Context) -> str:
    """Per run and host, another instrument's energy ÷ the energy at the plug; empty when
    no host was measured both ways."""
    from greenflow.report.data import wall_checks as read

    checks = read(ctx.store, [r.run for r in ctx.data.runs])
    if not checks:
        return ""
    rows = [
        [str(c.order), escape(c.host), escape(c.instrument), escape(c.wall), f"{c.ratio:.3f}"]
        for c in checks
    ]
    return table(
        ["run", "host", "instrument", "wall", "÷ wall"],
        rows,
        numeric=[True, False, False, False, True],
    ) + (
        '<p class="meta">The energy each instrument measured over MEASURE divided by the '
        "energy measured at the plug (a wattmeter or the BMC) on the same host and run. "
        "CPU-package counters (RAPL, Scaphandre) leave out fans, disks, memory and "
        "power-supply losses: this is how much of the machine they saw "
        "(docs/measurement.md, Wall power).</p>"
    )


def idle(ctx: Context) -> str:
    d = ctx.data
    if not d.idle:
        measured = any(r.idle_measured for r in d.runs if r.finished)
        return (
            '<p class="note">No idle baseline is stored ([experiment] baseline = 0, or '
            "every baseline failed): dynamic figures are absent.</p>"
            if not measured
            else '<p class="note">No baseline record is stored (a store written '
            "before baselines were kept); the runs' idle figures are in the runs' "
            "metrics.</p>"
        )
    rows, values = [], []
    for i in d.idle:
        for kind, b in (
            ("opening", i.opening),
            ("closing", i.closing),
            ("services-down", i.services_down),
        ):
            if b is None:
                continue
            drift = ""
            if kind == "closing" and i.drift is not None:
                drift = f"{i.drift:+.3g} W ({100 * (i.drift_ratio or 0.0):+.1f} %)"
            rows.append(_baseline_row(ctx, i, kind, b, drift))
        if i.opening is not None:
            values.append(
                f"<b>{escape(i.host)}</b> {i.opening.mean_watts:.3g} W"
                + (f" (deployment {ctx.deployment(i.group)})" if len(ctx.deployments) > 1 else "")
                + (" <i>(model)</i>" if i.modelled else "")
            )
    model = any(i.modelled for i in d.idle)
    model_note = (
        '<p class="note"><i>(model)</i>: under <code>model:&lt;name&gt;</code> idle power '
        "is the model's <code>idle_watts</code> input plus the little CPU an idle system "
        "uses, not a measurement (docs/measurement.md, The model): the dynamic figures "
        "then price busy CPU-seconds alone.</p>"
        if model
        else ""
    )
    return (
        f'<p class="idle-values">Idle power (opening baseline): {", ".join(values)}.</p>'
        + table(
            [
                "deployment",
                "runs",
                "host",
                "baseline",
                "window s",
                "mean W",
                "sd W (intervals)",
                "standard error W",
                "settled",
                "drift (closing − opening)",
                "method",
            ],
            rows,
            numeric=[False, False, False, False, True, True, True, True, False, True, False],
        )
        + '<p class="meta">Idle power: the host\'s power with the services up and no load '
        "(services-down: before anything was deployed), the energy over the window ÷ its "
        "length, read at its edges. sd: the spread of the power between consecutive "
        "readings; standard error: sd ÷ √intervals. The opening mean is subtracted from "
        "every run of the deployment; its standard error and the drift make the "
        "uncertainty added to the dynamic figures' intervals. The same value is drawn as "
        "a line on the power plots below.</p>" + model_note
    )


def _baseline_row(ctx: Context, i: IdlePower, kind: str, b: BaselineRow, drift: str) -> list[str]:
    se = standard_error(b)
    if b.settled is None:
        settled = "not waited for"
    elif b.settled:
        settled = f"yes, after {b.settle_s or 0:.0f} s"
    else:
        settled = f'<span class="bad">no</span> (waited {b.settle_s or 0:.0f} s)'
    first = f" (from #{i.first_order})" if i.first_order is not None else ""
    return [
        escape(ctx.deployment(i.group)),
        escape(f"{i.runs}{first}") if i.group else "",
        escape(i.host),
        escape(kind),
        num(b.end - b.start, ".3g"),
        num(b.mean_watts, ".4g"),
        f"{num(b.stdev_watts, '.2g')} ({b.intervals})",
        num(se, ".2g"),
        settled,
        drift,
        escape(b.method) + (" <i>(model)</i>" if b.method.startswith("model:") else ""),
    ]


def points_table(ctx: Context) -> str:
    d = ctx.data
    u = escape(ctx.unit)
    name = d.per_unit_name
    points = d.points
    ns = [len(p.finished) for p in points]
    columns: list[tuple[str, list[str]]] = [
        ("series", [escape(p.series) for p in points]),
        (escape(ctx.x_title()), [escape("" if p.x is None else p.x) for p in points]),
        ("finished / runs", [f"{len(p.finished)} / {len(p.runs)}" for p in points]),
    ]
    for g in ctx.services:
        label = escape(g.split(":", 1)[-1])
        columns.append(
            joules_column(
                f"{label} {{}}J per {u}",
                [group_stat(p, name, g, None) if name else None for p in points],
                ns,
            )
        )
        columns.append(
            (
                f"{label} % of host",
                [escape(percent(group_share(p, g), len(p.finished))) for p in points],
            )
        )
    columns.append(
        joules_column(
            f"host {{}}J per {u}",
            [host_stat(p, name, None) if name else None for p in points],
            ns,
        )
    )
    columns.append(
        joules_column(
            f"dynamic {{}}J per {u}",
            [host_stat(p, f"active_{name}", None) if name else None for p in points],
            ns,
        )
    )
    for g in ctx.loadgens:
        columns.append(
            (
                f"{escape(g.split(':', 1)[-1])} % of host",
                [escape(percent(group_share(p, g), len(p.finished))) for p in points],
            )
        )
    for title, pick in (
        ("host energy J", lambda p: host_stat(p, "energy_joules", None)),
        (f"achieved {u}s/s", lambda p: summary_stat(p, "achieved_rate")),
        ("asked /s", asked_rate),
        ("latency p50 ms", lambda p: summary_stat(p, "latency_ms.p50")),
        ("latency p99 ms", lambda p: summary_stat(p, "latency_ms.p99")),
    ):
        columns.append((title, [escape(stat_text(pick(p), n=len(p.finished))) for p in points]))
    head = [c[0] for c in columns]
    rows = [[c[1][i] for c in columns] for i in range(len(points))]
    return (
        '<p class="meta">Mean ± half-width of the 95 % CI over the finished repetitions '
        "(a figure that fewer of them have says its own n); the system under test's "
        "figures first.</p>"
        + table(
            head,
            rows,
            numeric=[False, True] + [True] * (len(head) - 2),
            scroll=len(rows) > 25,
            css="wide",
        )
    )


def runs_table(ctx: Context) -> str:
    d = ctx.data
    axes = d.axes
    u = escape(ctx.unit)
    head = [
        "#",
        "rep",
        *(escape(short_axis(a)) for a in axes),
        "status",
        "attempts",
        f"{u}s",
        "rate /s",
    ]
    # Each J per unit column in one SI unit (µJ per message), as in the points table.
    scales = {
        g: plots.si_scale(
            [r.groups[g].per_unit or 0.0 for r in d.runs if r.finished and g in r.groups]
        )
        for g in ctx.services
    }
    host_factor, host_prefix = plots.si_scale(
        [r.per_unit.value for r in d.runs if r.finished and r.per_unit is not None]
    )
    for g in ctx.services:
        label = escape(g.split(":", 1)[-1])
        head += [f"{label} {scales[g][1]}J per {u}", f"{label} % of host"]
    head += [
        f"host {host_prefix}J per {u}",
        *(f"{escape(g.split(':', 1)[-1])} % of host" for g in ctx.loadgens),
    ]
    head += ["energy J", "method", "warnings", "run id", "error (first line)"]
    warned: dict[str, list[str]] = {}
    for w in d.warnings:
        if w.run_id:
            warned.setdefault(w.run_id, []).append(w.code)
    rows, classes = [], []
    for r in sorted(d.runs, key=run_order):
        run, res = r.run, r.result
        status = run.status.value
        error = ctx.paths.text((run.error or "").strip()).splitlines()
        row = [
            str(run.order),
            str(run.repetition),
            *(
                escape(
                    json.dumps(run.params[a])
                    if isinstance(run.params.get(a), list | dict)
                    else run.params.get(a, "")
                )
                for a in axes
            ),
            f'<span class="status-{status}">{status}</span>',
            str(run.attempts),
            num(res.units, ".6g") if res is not None else "",
            num(res.achieved_rate) if res is not None else "",
        ]
        for g in ctx.services:
            group = r.groups.get(g)
            per_unit = group.per_unit if group is not None else None
            row += [
                num(per_unit * scales[g][0], ".3g") if per_unit is not None else "",
                share_label(group.share) if group is not None else "",
            ]
        row.append(num(r.per_unit.value * host_factor, ".3g") if r.per_unit is not None else "")
        row += [share_label(r.groups[g].share) if g in r.groups else "" for g in ctx.loadgens]
        row += [
            num(r.energy.value) if r.energy is not None else "",
            escape(r.energy.method) if r.energy is not None else "",
            escape(", ".join(warned.get(run.run_id, []))),
            f"<code>{escape(run.run_id)}</code>",
            f'<span class="error">{escape(error[0])}</span>' if error else "",
        ]
        rows.append(row)
        classes.append(f"run-{status}")
    n = len(axes)
    numeric = [True, True, *([False] * n), False, True, True, True]
    numeric += [True] * (2 * len(ctx.services) + 1 + len(ctx.loadgens) + 1)
    return table(
        head,
        rows,
        numeric=numeric,
        row_classes=classes,
        scroll=len(rows) > 25,
        css="wide",
    )


def provenance(ctx: Context) -> str:
    prov = dict(ctx.data.experiment.provenance)
    order = prov.pop("order", None)
    # A protocol's conclusions have their own section; flattened here they would be a
    # hundred rows.
    protocol = (
        prov.pop(PROVENANCE_KEY, None) if read_conclusions(ctx.data.experiment.provenance) else None
    )
    rows = []
    for key, value in flatten(prov):
        if hidden(key):
            continue
        text = ctx.paths.text(value if isinstance(value, str) else json.dumps(value))
        cell = escape(text)
        if len(text) > 160:
            cell = f"<details><summary>{escape(text[:80])}…</summary>{cell}</details>"
        rows.append([f"<code>{escape(key)}</code>", cell])
    if isinstance(protocol, dict):
        found = protocol.get("conclusions")
        n = len(found) if isinstance(found, list) else 0
        rows.append(
            [
                f"<code>{PROVENANCE_KEY}</code>",
                f"{escape(protocol.get('type'))}: {n} conclusion{'' if n == 1 else 's'} "
                f'(see <a href="#{ctx.anchor}-saturation">the saturation curve</a>; the whole '
                "record is in <code>greenflow results --json</code>)",
            ]
        )
    if isinstance(order, list):
        rows.append(
            [
                "<code>order</code>",
                f"{len(order)} run ids in execution order (the # column of the runs table)",
            ]
        )
    if not rows:
        return '<p class="note">No provenance was recorded.</p>'
    return (
        '<p class="meta">Paths are shown relative to the output directory; process ids '
        "are left out.</p>" + table(["what", "value"], rows, css="provenance")
    )
