"""Releasing what an experiment left, from what the store recorded: ``greenflow down``, and
the check a run makes before deploying so that it never measures next to an orphan.

Everything a run creates is recorded as it is created (``live_state``). A run that ends
tears it down and forgets it; what stays recorded was left by ``greenflow up`` on purpose
(marked by an :data:`UP_MARKER` entry), or by a process that died without tearing down
(``kill -9``, a machine that went away): an orphan, whose load generator may still write
to the broker the next run would reuse.
"""

from __future__ import annotations

import os
import socket
import time
from typing import Any

import structlog

from greenflow.errors import GreenFlowError
from greenflow.plan.converter import converter
from greenflow.store import RunStatus, Store

log = structlog.get_logger("greenflow.runner")

#: The live-state entry `greenflow up` records when it leaves a deployment up on purpose.
UP_MARKER = ("experiment", "up")

# Released in this order: what runs on the services, the services, then what they run on.
_ORDER = {"workload": 0, "service": 1, "collector": 2, "platform": 3}


def mark_left_up(store: Store, exp_id: int) -> None:
    """Record that the experiment's deployment is left up on purpose (``greenflow up``)."""
    kind, name = UP_MARKER
    state = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}
    store.record_state(exp_id, kind, name, "greenflow", {}, state)


def _what(entry: dict[str, Any]) -> str:
    kind, name, plugin = entry["kind"], entry["name"], entry["plugin"]
    if kind == "workload":
        return f"the load generator of {plugin}"
    if kind == "platform":
        return f"platform {plugin}"
    return f"{kind} {name} ({plugin})"


def release(store: Store, exp_id: int, *, keep_left_up: bool = False) -> list[str]:
    """Release every recorded entry of the experiment (with ``keep_left_up``, only what no
    `greenflow up` left on purpose: a crashed run's load generator, or everything when no
    `up` is recorded); return what was released, for the user."""
    from greenflow.plugins import Kind, load

    entries = store.live_state(exp_id)
    left_up = any((e["kind"], e["name"]) == UP_MARKER for e in entries)
    released = []
    for entry in sorted(entries, key=lambda e: _ORDER.get(e["kind"], 4)):
        if (entry["kind"], entry["name"]) == UP_MARKER:
            if not keep_left_up:
                store.clear_state(exp_id, *UP_MARKER)
            continue
        if keep_left_up and left_up and entry["kind"] != "workload":
            continue  # left up by `greenflow up`: the run reuses it
        kind = Kind(entry["kind"])
        cls = load(kind, entry["plugin"], where=f"recorded {entry['kind']} {entry['name']}")
        config = converter.structure(entry["config"], cls.Config)
        if entry["kind"] == "workload":
            cls.clean_recorded(config, entry["state"])
        elif entry["kind"] == "service":
            cls.remove_recorded(config, entry["state"])
        elif entry["kind"] == "platform":
            cls.release_recorded(config, entry["state"])
        store.clear_state(exp_id, entry["kind"], entry["name"])
        released.append(_what(entry))
    for run in store.get_runs(exp_id):
        if run.status == RunStatus.RUNNING:
            store.set_run_status(
                run.run_id, RunStatus.ABORTED, "the process running it ended without finishing it"
            )
    return released


def down(store: Store, experiment: str) -> list[str]:
    """Release what a crashed or ``up`` experiment left, from the recorded state."""
    row = store.get_experiment(experiment)
    if row is None:
        names = ", ".join(e.name for e in store.experiments()) or "none"
        raise GreenFlowError(f"no experiment named {experiment!r} in this store; known: {names}")
    return release(store, row.id)
