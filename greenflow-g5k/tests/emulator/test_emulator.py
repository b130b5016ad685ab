"""The Grid'5000 API emulator, driven through the real python-grid5000 client: what the
``g5k`` platform relies on when it is tested against the emulator."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
import requests
from grid5000 import Grid5000
from grid5000.exceptions import (
    Grid5000AuthenticationError,
    Grid5000CreateError,
    Grid5000DeleteError,
    Grid5000GetError,
    Grid5000ParsingError,
)

from greenflow_g5k.testing import PARIS, Cluster, G5kEmulator, JobScript, Site

#: The emulator's frozen "now": 2026-06-01 10:00:00 in Paris (summer time, +02:00).
T0 = int(datetime(2026, 6, 1, 10, 0, tzinfo=PARIS).timestamp())
SITES = (
    Site(
        "lyon",
        clusters=[
            Cluster("nova", nodes=4, wattmeter=True, cores=16, memory_bytes=64 * 2**30),
            Cluster("sirius", nodes=1, exotic=True, cpu_model="AMD EPYC", cpu_version="7742"),
        ],
    ),
    Site("grenoble", clusters=[Cluster("dahu", nodes=2, cpu_version="Gold 6130", cores=32)]),
)
# EnOSlib's regular expression for OAR's counter-proposal (enoslib/infra/enos_g5k/provider.py).
COULD_RUN_AT = re.compile(
    r"Reservation not valid --> KO \(This reservation could run at (\d{4}-"
    r"\d{2}-\d{2} \d{2}:\d{2}:\d{2})\)"
)


def fake_power(node: str, unix_time: float) -> float:
    """Distinct per node and per second, so a sample shows where it came from."""
    return 100.0 + int(node.rsplit("-", 1)[1]) + (unix_time % 60) / 10


def job_body(resources: str = "{cluster='nova'}/nodes=2", **extra: Any) -> dict[str, Any]:
    """A job request as EnOSlib sends it."""
    return {
        "name": "greenflow-test",
        "types": ["allow_classic_ssh"],
        "resources": f"{resources},walltime=01:00:00",
        "command": "sleep 31536000",
        "queue": "default",
        **extra,
    }


def refresh_until(job: Any, state: str, polls: int = 10) -> list[str]:
    """Poll the job until ``state``; the states seen, in order."""
    seen = []
    for _ in range(polls):
        job.refresh()
        seen.append(job.state)
        if job.state == state:
            return seen
    raise AssertionError(f"job never reached {state}: {seen}")


@pytest.fixture
def emu() -> Iterator[G5kEmulator]:
    with G5kEmulator(SITES, clock=lambda: float(T0), power=fake_power) as emulator:
        yield emulator


@pytest.fixture
def gk(emu: G5kEmulator) -> Iterator[Any]:
    with Grid5000(uri=emu.url, username="alice", password="s3cret") as client:
        yield client


# --- reference API --------------------------------------------------------------------------


def test_reference_api_describes_sites_clusters_and_nodes(gk: Any) -> None:
    assert [site.uid for site in gk.sites.list()] == ["lyon", "grenoble"]
    lyon = gk.sites["lyon"]
    nova = lyon.clusters["nova"]
    assert nova.exotic is False
    assert lyon.clusters["sirius"].exotic is True
    metrics = {metric["name"]: metric for metric in nova.metrics}
    assert metrics["wattmetre_power_watt"] == {
        "name": "wattmetre_power_watt",
        "description": "Power consumption of node reported by wattmetre, in watt",
        "period": 1000,
        "optional_period": 20,
        "source": {"protocol": "wattmetre"},
    }
    assert metrics["bmc_node_power_watt"]["period"] == 5000
    assert [node.uid for node in nova.nodes.list()] == ["nova-1", "nova-2", "nova-3", "nova-4"]
    node = nova.nodes["nova-2"]
    assert node.processor["model"] == "Intel Xeon"
    assert node.processor["version"] == "E5-2620 v4"
    assert node.architecture["nb_cores"] == 16
    assert node.architecture["nb_threads"] == 32
    assert node.main_memory["ram_size"] == 64 * 2**30
    assert node.network_adapters[0]["network_address"] == "nova-2.lyon.grid5000.fr"
    assert node.pdu == [{"uid": "wattmetre1", "port": 2}]


def test_bmc_only_cluster_lists_only_the_bmc_metric(gk: Any) -> None:
    dahu = gk.sites["grenoble"].clusters["dahu"]
    assert [metric["name"] for metric in dahu.metrics] == ["bmc_node_power_watt"]
    node = dahu.nodes["dahu-1"]
    assert node.architecture["nb_cores"] == 32
    assert "pdu" not in node.to_dict()


def test_unknown_cluster_is_a_404(gk: Any) -> None:
    with pytest.raises(Grid5000GetError) as raised:
        gk.sites["lyon"].clusters["nope"]
    assert raised.value.response_code == 404


def test_answers_are_json_with_the_collection_shape(emu: G5kEmulator) -> None:
    # python-grid5000 has no call that shows headers: one raw request.
    with requests.Session() as session:
        response = session.get(f"{emu.url}/sites", auth=("alice", "s3cret"))
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    assert (body["total"], body["offset"], len(body["items"])) == (2, 0, 2)


# --- authentication, failures, request log --------------------------------------------------


@pytest.mark.parametrize("password", ["wrong", None])
def test_bad_or_missing_credentials_raise_the_authentication_error(
    emu: G5kEmulator, password: str | None
) -> None:
    username = "alice" if password else None
    with (
        Grid5000(uri=emu.url, username=username, password=password) as client,
        pytest.raises(Grid5000AuthenticationError) as raised,
    ):
        client.sites["lyon"]
    assert raised.value.response_code == 401
    assert raised.value.error_message == "Authorization Required"


def test_a_500_is_retried_by_the_client(emu: G5kEmulator, gk: Any) -> None:
    emu.fail_next("GET", r"^/sites/lyon$", status=500)
    assert gk.sites["lyon"].uid == "lyon"
    assert [r.path for r in emu.requests if r.method == "GET"] == ["/sites/lyon", "/sites/lyon"]


def test_a_500_on_post_is_not_retried(emu: G5kEmulator, gk: Any) -> None:
    site = gk.sites["lyon"]
    emu.fail_next("POST", r"/jobs$", status=500)
    with pytest.raises(Grid5000CreateError) as raised:
        site.jobs.create(job_body())
    assert raised.value.response_code == 500
    assert [r.method for r in emu.requests].count("POST") == 1
    assert site.jobs.list() == []


def test_request_log_has_the_calls_but_never_the_credentials(emu: G5kEmulator, gk: Any) -> None:
    job = gk.sites["lyon"].jobs.create(job_body())
    job.delete()
    assert ("DELETE", f"/sites/lyon/jobs/{job.uid}", {}, None) in emu.requests
    submitted = next(r for r in emu.requests if r.method == "POST")
    assert submitted.body == job_body()
    assert "s3cret" not in repr(emu.requests)
    assert "Basic" not in repr(emu.requests)


# --- OAR jobs ---------------------------------------------------------------------------------


def test_job_lives_waiting_launching_running_as_scripted(emu: G5kEmulator, gk: Any) -> None:
    emu.script_next_job(
        JobScript(states=(("waiting", 2), ("launching", 1), "running"), scheduled_at=T0 + 30)
    )
    site = gk.sites["lyon"]
    job = site.jobs.create(job_body(project="greenflow"))
    assert isinstance(job.uid, int)
    assert job.site == "lyon"  # from the URL: jobs carry no "site" key
    assert (job.state, job.user, job.walltime, job.scheduled_at) == (
        "waiting",
        "alice",
        3600,
        T0 + 30,
    )
    assert (job.name, job.types, job.queue, job.project) == (
        "greenflow-test",
        ["allow_classic_ssh"],
        "default",
        "greenflow",
    )
    assert (job.submitted_at, job.started_at) == (T0, 0)
    assert [job.refresh() or job.state for _ in range(3)] == ["waiting", "waiting", "waiting"]
    emu.advance(30)  # the predicted start: the job may leave "waiting"
    assert refresh_until(job, "running") == ["launching", "running"]
    assert job.started_at == T0 + 30
    assert job.assigned_nodes == ["nova-1.lyon.grid5000.fr", "nova-2.lyon.grid5000.fr"]
    assert job.resources_by_type == {
        "cores": [f"nova-{n}.lyon.grid5000.fr/{core}" for n in (1, 2) for core in range(16)]
    }


def test_a_job_may_start_on_hold(emu: G5kEmulator, gk: Any) -> None:
    emu.script_next_job(JobScript(states=(("hold", 2), ("waiting", 1), "running")))
    job = gk.sites["lyon"].jobs.create(job_body())
    assert job.state == "hold"
    assert refresh_until(job, "running") == ["hold", "hold", "waiting", "running"]


def test_a_job_may_fail(emu: G5kEmulator, gk: Any) -> None:
    emu.script_next_job(JobScript(states=(("waiting", 1), ("launching", 1), "error")))
    job = gk.sites["lyon"].jobs.create(job_body())
    assert refresh_until(job, "error") == ["waiting", "launching", "error"]


def test_nodes_go_to_jobs_lowest_first_and_come_back(gk: Any) -> None:
    site = gk.sites["lyon"]
    first = site.jobs.create(job_body())
    servers = "{network_address in ('nova-4.lyon.grid5000.fr')}/nodes=1"
    second = site.jobs.create(job_body(resources=f"{servers}+{{cluster='nova'}}/nodes=1"))
    # Without a predicted start, a waiting job shows no nodes yet.
    assert (second.assigned_nodes, second.resources_by_type) == ([], {})
    refresh_until(second, "running")
    assert second.assigned_nodes == ["nova-4.lyon.grid5000.fr", "nova-3.lyon.grid5000.fr"]
    with pytest.raises(Grid5000CreateError, match="not enough resources"):
        site.jobs.create(job_body(resources="{cluster='nova'}/nodes=1"))
    refresh_until(first, "running")
    first.delete()
    third = site.jobs.create(job_body())
    refresh_until(third, "running")
    assert third.assigned_nodes == first.assigned_nodes


def test_list_filters_by_name_state_and_user(gk: Any) -> None:
    site = gk.sites["lyon"]
    one = site.jobs.create(job_body(resources="{cluster='nova'}/nodes=1"))
    two = site.jobs.create(job_body(resources="{cluster='nova'}/nodes=1"))
    site.jobs.create(job_body(resources="{cluster='nova'}/nodes=1", name="other"))
    gone = site.jobs.create(job_body(resources="{cluster='nova'}/nodes=1"))
    gone.delete()
    active = "waiting,launching,running"
    found = site.jobs.list(name="greenflow-test", state=active, user="alice")
    assert [job.uid for job in found] == [two.uid, one.uid]  # newest first
    assert site.jobs.list(name="greenflow-test", state=active, user="bob") == []
    assert "assigned_nodes" not in found[0].to_dict()  # a list leaves resources out unless asked
    detailed = site.jobs.list(name="greenflow-test", state=active, resources="yes")
    assert detailed[0].assigned_nodes == two.assigned_nodes
    assert [job.uid for job in site.jobs.list(state="error")] == [gone.uid]


def test_not_enough_nodes_is_refused_as_oar_does(gk: Any) -> None:
    with pytest.raises(Grid5000CreateError) as raised:
        gk.sites["lyon"].jobs.create(job_body(resources="{cluster='nova'}/nodes=5"))
    assert raised.value.response_code == 400
    assert "There are not enough resources for your request" in str(raised.value)


def test_unknown_cluster_is_refused_as_oar_does(gk: Any) -> None:
    with pytest.raises(Grid5000CreateError, match="There are not enough resources"):
        gk.sites["lyon"].jobs.create(job_body(resources="{cluster='nope'}/nodes=1"))


def test_exotic_cluster_needs_the_exotic_type(gk: Any) -> None:
    site = gk.sites["lyon"]
    with pytest.raises(Grid5000CreateError, match=r"Filtering out exotic resources \(sirius\)"):
        site.jobs.create(job_body(resources="{cluster='sirius'}/nodes=1"))
    job = site.jobs.create(job_body(resources="{cluster='sirius'}/nodes=1", types=["exotic"]))
    refresh_until(job, "running")
    assert job.assigned_nodes == ["sirius-1.lyon.grid5000.fr"]


def test_refused_reservation_says_when_it_could_run(emu: G5kEmulator, gk: Any) -> None:
    could_run_at = int(datetime(2026, 12, 6, 10, 0, tzinfo=PARIS).timestamp())
    emu.script_next_job(JobScript(could_run_at=could_run_at))
    site = gk.sites["lyon"]
    with pytest.raises(Grid5000CreateError) as raised:
        site.jobs.create(job_body(reservation="2026-06-01 12:00:00"))
    assert raised.value.response_code == 400
    match = COULD_RUN_AT.search(str(raised.value))
    assert match is not None
    assert match.group(1) == "2026-12-06 10:00:00"
    # OAR numbered the reservation before refusing it: it stays, in error.
    assert [job.message for job in site.jobs.list(state="error")] == [
        "This reservation could run at 2026-12-06 10:00:00"
    ]


def test_reservation_whose_window_has_passed_is_too_old(gk: Any) -> None:
    with pytest.raises(Grid5000CreateError, match="Reservation too old"):
        gk.sites["lyon"].jobs.create(job_body(reservation="2026-06-01 08:30:00"))


def test_reservation_waits_for_its_start(emu: G5kEmulator, gk: Any) -> None:
    job = gk.sites["lyon"].jobs.create(job_body(reservation="2026-06-01 11:00:00"))
    assert job.scheduled_at == T0 + 3600
    assert [job.refresh() or job.state for _ in range(3)] == ["waiting"] * 3
    emu.advance(3600)
    assert refresh_until(job, "running") == ["launching", "running"]


def test_delete_then_delete_again_says_already_killed(emu: G5kEmulator, gk: Any) -> None:
    job = gk.sites["lyon"].jobs.create(job_body())
    refresh_until(job, "running")
    job.delete()
    job.refresh()
    assert job.state == "error"
    assert "FRAG_JOB_REQUEST" in [event["type"] for event in job.events]
    with pytest.raises(Grid5000DeleteError, match="This job was already killed") as raised:
        job.delete()
    assert raised.value.response_code == 400
    assert [r.method for r in emu.requests].count("DELETE") == 2


def test_killed_job_may_show_finishing_first(emu: G5kEmulator, gk: Any) -> None:
    emu.script_next_job(JobScript(finishing_polls=1))
    job = gk.sites["lyon"].jobs.create(job_body())
    refresh_until(job, "running")
    job.delete()
    assert refresh_until(job, "error") == ["finishing", "error"]


def test_walltime_reached_kills_the_job(emu: G5kEmulator, gk: Any) -> None:
    job = gk.sites["lyon"].jobs.create(job_body())
    refresh_until(job, "running")
    emu.advance(3600)
    job.refresh()
    assert job.state == "running"
    emu.advance(1)
    job.refresh()
    assert job.state == "error"
    assert job.stopped_at == T0 + 3600
    assert "WALLTIME" in [event["type"] for event in job.events]
    with pytest.raises(Grid5000DeleteError, match="This job was already killed"):
        job.delete()


def test_walltime_extension(emu: G5kEmulator, gk: Any) -> None:
    job = gk.sites["lyon"].jobs.create(job_body())
    with pytest.raises(Grid5000CreateError, match=f"Job {job.uid} is not running") as raised:
        job.walltime_change.create({"walltime": "+1:00"})
    assert raised.value.response_code == 403
    refresh_until(job, "running")
    # Accepted, but g5k-api's answer is a bare sentence the client cannot parse as JSON.
    with pytest.raises(Grid5000ParsingError):
        job.walltime_change.create({"walltime": "+1:00"})
    assert ("POST", f"/sites/lyon/jobs/{job.uid}/walltime", {}, {"walltime": "+1:00"}) in (
        emu.requests
    )
    job.refresh()
    assert job.walltime == 7200
    change = job.walltime_change.get()
    assert (change.walltime, change.granted, change.possible) == ("2:0:0", "+1:0:0", "UNLIMITED")


def test_walltime_extension_refused_by_the_script(emu: G5kEmulator, gk: Any) -> None:
    emu.script_next_job(JobScript(walltime_max_increase=1800))
    job = gk.sites["lyon"].jobs.create(job_body())
    refresh_until(job, "running")
    with pytest.raises(Grid5000CreateError, match="cannot increase by more than 0:30:0") as raised:
        job.walltime_change.create({"walltime": "+1:00"})
    assert raised.value.response_code == 403
    job.refresh()
    assert job.walltime == 3600


def test_unknown_job_is_a_404(gk: Any) -> None:
    with pytest.raises(Grid5000GetError, match="Couldn't find OAR::Job") as raised:
        gk.sites["lyon"].jobs[999]
    assert raised.value.response_code == 404


def test_peek_does_not_count_as_a_poll(emu: G5kEmulator, gk: Any) -> None:
    job = gk.sites["lyon"].jobs.create(job_body())
    assert [emu.peek_job(job.uid)["state"] for _ in range(3)] == ["waiting"] * 3
    assert refresh_until(job, "running") == ["waiting", "launching", "running"]


# --- Kadeploy ---------------------------------------------------------------------------------


def test_deployment_with_a_node_ko_then_ok_on_retry(emu: G5kEmulator, gk: Any) -> None:
    site = gk.sites["lyon"]
    nodes = ["nova-1.lyon.grid5000.fr", "nova-2.lyon.grid5000.fr"]
    emu.deploy_ko({nodes[1]: 1})
    request = {"nodes": nodes, "environment": "debian12-min", "key": "ssh-ed25519 AAAA test"}
    deployment = site.deployments.create(request)
    assert deployment.uid.startswith("D-")
    assert (deployment.status, deployment.user_uid, deployment.site_uid) == (
        "processing",
        "alice",
        "lyon",
    )
    assert deployment.key.startswith(f"{emu.url}/sites/lyon/files/alice-key-")
    statuses = []
    while deployment.status == "processing":
        deployment.refresh()
        statuses.append(deployment.status)
    assert statuses == ["processing", "terminated"]
    assert {node: result["state"] for node, result in deployment.result.items()} == {
        nodes[0]: "OK",
        nodes[1]: "KO",
    }
    retry = site.deployments.create({**request, "nodes": [nodes[1]]})
    retry.refresh()
    retry.refresh()
    assert (retry.status, retry.result[nodes[1]]["state"]) == ("terminated", "OK")


def test_deployment_may_fail_as_a_whole(emu: G5kEmulator, gk: Any) -> None:
    emu.fail_next_deployment("Kadeploy error #1: boom")
    deployment = gk.sites["lyon"].deployments.create(
        {"nodes": ["nova-1.lyon.grid5000.fr"], "environment": "debian12-min"}
    )
    deployment.refresh()
    deployment.refresh()
    assert (deployment.status, deployment.output) == ("error", "Kadeploy error #1: boom")


def test_deployment_of_unknown_nodes_is_refused(gk: Any) -> None:
    with pytest.raises(Grid5000CreateError, match="unknown nodes nova-9") as raised:
        gk.sites["lyon"].deployments.create(
            {"nodes": ["nova-9.lyon.grid5000.fr"], "environment": "debian12-min"}
        )
    assert raised.value.response_code == 400


# --- Kwollect ---------------------------------------------------------------------------------


def as_unix(timestamp: str) -> float:
    return datetime.fromisoformat(timestamp).timestamp()


def test_samples_follow_the_power_source_on_the_period_grid(gk: Any) -> None:
    metrics = gk.sites["lyon"].metrics.list(
        nodes="nova-1,nova-2", metrics="wattmetre_power_watt", start_time=T0 - 9.5, end_time=T0
    )
    times = [T0 - 9 + second for second in range(10)]
    assert [(as_unix(m.timestamp), m.device_id) for m in metrics] == [
        (t, node) for t in times for node in ("nova-1", "nova-2")
    ]
    assert all(m.value == fake_power(m.device_id, as_unix(m.timestamp)) for m in metrics)
    assert metrics[0].timestamp == "2026-06-01T09:59:51+02:00"
    assert metrics[0].metric_id == "wattmetre_power_watt"
    assert metrics[0].labels == {"_device_orig": ["wattmetre1-port1"]}


def test_bmc_samples_every_five_seconds(gk: Any) -> None:
    metrics = gk.sites["lyon"].metrics.list(
        nodes="nova-3", metrics="bmc_node_power_watt", start_time=T0 - 12, end_time=T0
    )
    assert [as_unix(m.timestamp) for m in metrics] == [T0 - 10, T0 - 5, T0]
    assert {m.labels == {} for m in metrics} == {True}


def test_window_in_paris_winter_time_given_as_iso(gk: Any) -> None:
    metrics = gk.sites["lyon"].metrics.list(
        nodes="nova-1",
        metrics="wattmetre_power_watt",
        start_time="2026-01-15T10:00:00",
        end_time="2026-01-15T10:00:02",
    )
    assert [m.timestamp for m in metrics] == [
        "2026-01-15T10:00:00+01:00",
        "2026-01-15T10:00:01+01:00",
        "2026-01-15T10:00:02+01:00",
    ]


def test_samples_appear_after_the_ingestion_delay() -> None:
    with (
        G5kEmulator(SITES, clock=lambda: float(T0), kwollect_delay=5) as emu,
        Grid5000(uri=emu.url, username="alice", password="s3cret") as gk,
    ):
        site = gk.sites["lyon"]
        query = {"nodes": "nova-1", "metrics": "wattmetre_power_watt", "end_time": T0}
        late = site.metrics.list(start_time=T0 - 10, **query)
        assert as_unix(late[-1].timestamp) == T0 - 5
        emu.advance(5)
        assert as_unix(site.metrics.list(start_time=T0 - 10, **query)[-1].timestamp) == T0


def test_gaps_have_no_samples(emu: G5kEmulator, gk: Any) -> None:
    emu.add_gap("nova-1", T0 - 5, T0 - 2)
    metrics = gk.sites["lyon"].metrics.list(
        nodes="nova-1,nova-2", metrics="wattmetre_power_watt", start_time=T0 - 6, end_time=T0
    )
    seen = {(m.device_id, as_unix(m.timestamp)) for m in metrics}
    assert {t for node, t in seen if node == "nova-1"} == {T0 - 6, T0 - 2, T0 - 1, T0}
    assert len([node for node, _ in seen if node == "nova-2"]) == 7


def test_bmc_only_cluster_has_no_wattmetre_samples(gk: Any) -> None:
    site = gk.sites["grenoble"]
    window = {"nodes": "dahu-1", "start_time": T0 - 10, "end_time": T0}
    assert site.metrics.list(metrics="wattmetre_power_watt", **window) == []
    metrics = site.metrics.list(**window)
    assert {m.metric_id for m in metrics} == {"bmc_node_power_watt"}
    assert len(metrics) == 3


def test_samples_of_a_job(emu: G5kEmulator, gk: Any) -> None:
    site = gk.sites["lyon"]
    job = site.jobs.create(job_body(resources="{cluster='nova'}/nodes=1"))
    refresh_until(job, "running")
    emu.advance(10)
    metrics = site.metrics.list(job_id=job.uid, metrics="wattmetre_power_watt")
    assert {m.device_id for m in metrics} == {"nova-1"}
    assert [as_unix(m.timestamp) for m in metrics] == [T0 + second for second in range(11)]


def test_start_and_stop_for_a_fixture() -> None:
    emulator = G5kEmulator(SITES)
    with pytest.raises(RuntimeError, match="not started"):
        emulator.url  # noqa: B018  (the property raises)
    emulator.start()
    try:
        with Grid5000(uri=emulator.url, username="alice", password="s3cret") as client:
            assert client.sites["grenoble"].uid == "grenoble"
    finally:
        emulator.stop()
    with pytest.raises(RuntimeError):
        emulator.url  # noqa: B018
