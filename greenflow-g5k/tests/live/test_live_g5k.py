"""Against the REAL Grid'5000 (``nox -s live_g5k``, never part of ``nox -s tests``): one
node reserved through OAR for 15 minutes, its wall power read from Kwollect, the job
deleted. docs/g5k.md, "Running the live test".

Needs your credentials (``~/.python-grid5000.yaml``, or a frontend) and
``GREENFLOW_G5K_LIVE=1``; ``GREENFLOW_G5K_SITE`` and ``GREENFLOW_G5K_CLUSTER`` choose where
(default: nancy, gros — a cluster with wattmeters). Skips otherwise, saying why.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

import pytest

from greenflow.api import CollectorContext, Host, Inventory, Window
from greenflow.plan.structure import structure
from greenflow_g5k import oar
from greenflow_g5k.config import DEFAULT_API_URL, DEFAULT_CREDENTIALS_FILE, G5kConfig
from greenflow_g5k.kwollect import KwollectCollector, KwollectCollectorConfig

SITE = os.environ.get("GREENFLOW_G5K_SITE", "nancy")
CLUSTER = os.environ.get("GREENFLOW_G5K_CLUSTER", "gros")


def _live_or_skip() -> None:
    if os.environ.get("GREENFLOW_G5K_LIVE") != "1":
        pytest.skip("live Grid'5000 tests run only with GREENFLOW_G5K_LIVE=1 (nox -s live_g5k)")
    on_frontend = socket.getfqdn().endswith(".grid5000.fr")
    if not on_frontend and not Path(DEFAULT_CREDENTIALS_FILE).expanduser().exists():
        pytest.skip(f"no {DEFAULT_CREDENTIALS_FILE} and not on a Grid'5000 frontend")


@pytest.mark.timeout(3600)
def test_reserve_one_node_read_its_wall_power_and_delete_it() -> None:
    _live_or_skip()
    config: G5kConfig = structure(
        {
            "site": SITE,
            "cluster": CLUSTER,
            "roles": {"control": {"nodes": 1}},
            "walltime": "15m",
            "job_name": "greenflow-live-test",
        },
        G5kConfig,
        path=Path("live.toml"),
        section="platform",
    )
    credentials = oar.load_credentials(Path(DEFAULT_CREDENTIALS_FILE).expanduser())
    client = oar.connect(DEFAULT_API_URL, credentials)
    site = client.sites[SITE]
    job = oar.submit(site, config, oar.job_request(config, config.name_for("live"), exotic=False))
    try:
        oar.wait_running(job, deadline_s=1800, cancel=threading.Event())
        (node,) = job.assigned_nodes
        assert oar.cluster_of(node) == CLUSTER
        wall = KwollectCollector("wall", KwollectCollectorConfig(site=SITE))
        wall.start(
            CollectorContext(
                experiment="live",
                inventory=Inventory([Host(oar.short(node), node, {"control"})]),
            )
        )
        start = time.time()
        time.sleep(60)
        window = Window(start, start + 50)
        samples = wall.collect(window)
        assert samples and {s.method for s in samples} <= {"kwollect:wattmeter", "kwollect:bmc"}
        joules = samples[-1].value - samples[0].value
        assert 10 * 50 < joules < 2000 * 50  # between 10 W and 2 kW: a server's power
    finally:
        assert oar.delete(site, int(job.uid)) in (True, False)
    job.refresh()
    assert job.state in ("error", "terminated", "finishing")
