"""The g5k platform's job handling against the Grid'5000 API emulator, through the real
python-grid5000 client: the job it submits or reuses, OAR's refusals as one line saying
what to change, the wait with its deadline and Ctrl-C, kadeploy retried on the failed nodes
only, the walltime guard, and the DELETE on every path.

SIMULATED: Grid'5000 itself (greenflow_g5k.testing.emulator: its module docstring lists
what is confirmed from the API's sources and what is assumed). The nodes are unreachable
here on purpose (SSH to port 1): every path stops at the first SSH step, after the job is
held, which is what the release must then undo; tests/hosts runs the path through SSH.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from grid5000 import Grid5000

from greenflow.api import DeployContext
from greenflow.errors import GreenFlowError, OutOfTime
from greenflow.plan.structure import structure
from greenflow_g5k import oar
from greenflow_g5k.config import G5kConfig
from greenflow_g5k.platform import G5kPlatform
from greenflow_g5k.testing import Cluster, G5kEmulator, JobScript, Site

USER, PASSWORD = "alice", "s3cret-Pa55"
SITES = [
    Site(
        "lyon",
        clusters=[
            Cluster("nova", nodes=4, wattmeter=True, cores=16),
            Cluster("sirius", nodes=2, exotic=True),
        ],
    )
]
ROLES = {"control": {"nodes": 1}, "broker": {"nodes": 2}}


@pytest.fixture
def emu() -> Iterator[G5kEmulator]:
    with G5kEmulator(SITES, username=USER, password=PASSWORD) as emulator:
        yield emulator


@pytest.fixture(autouse=True)
def quick_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    """Poll jobs and deployments every 50 ms instead of API-friendly seconds."""
    monkeypatch.setattr(oar, "POLL_PAUSES_S", (0.05,))
    monkeypatch.setattr(oar, "DEPLOY_POLL_S", 0.05)


def _platform(emu: G5kEmulator, tmp_path: Path, **raw: Any) -> G5kPlatform:
    credentials = tmp_path / "g5k.yaml"
    credentials.write_text(f"username: {USER}\npassword: {raw.pop('password', PASSWORD)}\n")
    credentials.chmod(0o600)
    ssh_config = tmp_path / "ssh_config"
    # Every node refuses SSH at once: the path stops at its first SSH step.
    ssh_config.write_text("Host *.grid5000.fr\n  HostName 127.0.0.1\n  Port 1\n")
    table = {
        "site": "lyon",
        "cluster": "nova",
        "roles": ROLES,
        "api_url": emu.url,
        "credentials_file": str(credentials),
        "ssh_config": str(ssh_config),
        "k3s": {"connect_timeout": "2s"},
        **raw,
    }
    config: G5kConfig = structure(table, G5kConfig, path=Path("plan.toml"), section="platform")
    return G5kPlatform(config)


def _ctx(
    tmp_path: Path,
    states: list[dict[str, Any]],
    cancel: threading.Event | None = None,
    shown: list[str] | None = None,
) -> DeployContext:
    return DeployContext(
        experiment="g5k test",
        work_dir=tmp_path,
        log_dir=tmp_path,
        record_state=lambda s: states.append(dict(s)),
        cancel=cancel or threading.Event(),
        plan_path=tmp_path / "plan.toml",
        progress=(shown if shown is not None else []).append,
    )


def _calls(emu: G5kEmulator, method: str, pattern: str = "") -> list[Any]:
    return [r for r in emu.requests if r.method == method and pattern in r.path]


def _acquire_fails(platform: G5kPlatform, ctx: DeployContext) -> str:
    """acquire raises a GreenFlow error (one line for the user); release() follows, as the
    runner's teardown does."""
    try:
        with pytest.raises(GreenFlowError) as info:
            platform.acquire(ctx)
    finally:
        platform.release()
    return str(info.value)


def test_a_job_is_submitted_recorded_before_the_wait_and_deleted_when_a_later_step_fails(
    emu: G5kEmulator, tmp_path: Path
) -> None:
    states: list[dict[str, Any]] = []
    platform = _platform(emu, tmp_path, walltime="2h", project="energy")
    message = _acquire_fails(platform, _ctx(tmp_path, states))
    assert "sudo-g5k" in message  # the first SSH step: root through sudo-g5k
    (post,) = _calls(emu, "POST", "/jobs")
    assert post.body["name"] == "greenflow-g5k-test"
    assert (
        post.body["resources"]
        == "{cluster='nova'}/nodes=1+{cluster='nova'}/nodes=2,walltime=2:00:00"
    )
    assert post.body["types"] == [] and post.body["project"] == "energy"
    # Recorded by name before the POST, with the job id (and no longer by name) before the
    # first poll, nodes only once it ran.
    assert states[0]["submitting"] == "greenflow-g5k-test" and "job_id" not in states[0]
    job_id = states[1]["job_id"]
    assert "submitting" not in states[1] and "nodes" not in states[1]
    assert states[-1]["roles"]["broker"]
    assert [r.path for r in _calls(emu, "DELETE")] == [f"/sites/lyon/jobs/{job_id}"]
    assert emu.peek_job(job_id)["state"] in ("error", "finishing")


def test_an_exotic_cluster_gets_the_exotic_type(emu: G5kEmulator, tmp_path: Path) -> None:
    platform = _platform(emu, tmp_path, cluster="sirius", roles={"control": {"nodes": 1}})
    _acquire_fails(platform, _ctx(tmp_path, []))
    (post,) = _calls(emu, "POST", "/jobs")
    assert post.body["types"] == ["exotic"]


def test_a_job_of_the_same_name_is_reused_and_two_are_an_error(
    emu: G5kEmulator, tmp_path: Path
) -> None:
    with Grid5000(uri=emu.url, username=USER, password=PASSWORD) as gk:
        body = {
            "name": "greenflow-g5k-test",
            "resources": "{cluster='nova'}/nodes=3",
            "command": "sleep 1d",
        }
        first = gk.sites["lyon"].jobs.create(body)
        states: list[dict[str, Any]] = []
        _acquire_fails(_platform(emu, tmp_path), _ctx(tmp_path, states))
        assert len(_calls(emu, "POST", "/jobs")) == 1  # the test's own: none submitted
        assert states[0]["job_id"] == first.uid and states[0]["submitted"] is False
        for _ in range(2):
            gk.sites["lyon"].jobs.create({**body, "resources": "{cluster='nova'}/nodes=1"})
        before = len(emu.requests)
        message = _acquire_fails(_platform(emu, tmp_path), _ctx(tmp_path, []))
    assert "2 jobs named 'greenflow-g5k-test' on lyon" in message and "set job_name" in message
    assert {r.method for r in emu.requests[before:]} == {"GET"}  # nothing submitted or deleted


def test_oar_refusals_say_what_to_change(emu: G5kEmulator, tmp_path: Path) -> None:
    at = time.time() + 86400
    emu.script_next_job(JobScript(could_run_at=int(at)))
    message = _acquire_fails(_platform(emu, tmp_path), _ctx(tmp_path, []))
    assert "could run at" in message and 'set reservation = "' in message
    message = _acquire_fails(
        _platform(emu, tmp_path, roles={"control": {"nodes": 9}}), _ctx(tmp_path, [])
    )
    assert "ask for fewer nodes" in message
    message = _acquire_fails(_platform(emu, tmp_path, cluster="taurus"), _ctx(tmp_path, []))
    assert message == "lyon has no cluster 'taurus'; its clusters: nova, sirius"
    assert not _calls(emu, "DELETE")  # nothing was created


def test_a_job_that_errors_in_the_queue_is_reported_and_released(
    emu: G5kEmulator, tmp_path: Path
) -> None:
    emu.script_next_job(JobScript(states=(("waiting", 1), "error")))
    message = _acquire_fails(_platform(emu, tmp_path), _ctx(tmp_path, []))
    assert "ended (error) before it ran" in message
    assert len(_calls(emu, "DELETE")) == 1  # "already killed" is no failure of release


def test_ctrl_c_while_queued_deletes_the_job(emu: G5kEmulator, tmp_path: Path) -> None:
    emu.script_next_job(JobScript(states=("waiting",), scheduled_at=int(time.time()) + 3600))
    cancel = threading.Event()
    threading.Timer(0.3, cancel.set).start()
    message = _acquire_fails(_platform(emu, tmp_path), _ctx(tmp_path, [], cancel))
    assert "interrupted while job" in message and "waiting" in message
    assert len(_calls(emu, "DELETE")) == 1


@pytest.mark.parametrize("after", ["release", "down"])
def test_ctrl_c_before_oars_answer_to_the_submission_deletes_the_job(
    emu: G5kEmulator, tmp_path: Path, after: str
) -> None:
    """SIGINT while the answer to the POST is on its way: OAR took the job, the platform
    never heard its id. The release — or, after a crash, `greenflow down` from the recorded
    state — finds it by its name and deletes it. (The held answer is the emulator's.)"""
    emu.hold_next_answer("POST", r"/jobs$", 5.0)
    states: list[dict[str, Any]] = []
    platform = _platform(emu, tmp_path)
    main = threading.main_thread().ident or 0

    def interrupt_once_posted() -> None:
        deadline = time.monotonic() + 10
        while not _calls(emu, "POST", "/jobs") and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.2)  # the client is waiting for the held answer
        signal.pthread_kill(main, signal.SIGINT)

    threading.Thread(target=interrupt_once_posted, daemon=True).start()
    with pytest.raises(KeyboardInterrupt):
        platform.acquire(_ctx(tmp_path, states))
    assert states[-1]["submitting"] == "greenflow-g5k-test" and "job_id" not in states[-1]
    assert not _calls(emu, "DELETE")
    if after == "release":
        platform.release()
    else:  # the process "died": only what it recorded is left
        G5kPlatform.release_recorded(platform.config, states[-1])
    assert len(_calls(emu, "POST", "/jobs")) == 1
    assert [r.path for r in _calls(emu, "DELETE")] == ["/sites/lyon/jobs/1"]
    assert emu.peek_job(1)["state"] in ("error", "finishing")


def test_a_refused_submission_looks_for_no_job_to_delete(emu: G5kEmulator, tmp_path: Path) -> None:
    """OAR refused the job: there is none, the release asks nothing more of the API."""
    emu.script_next_job(JobScript(could_run_at=int(time.time()) + 7200))
    assert "could run at" in _acquire_fails(_platform(emu, tmp_path), _ctx(tmp_path, []))
    assert [r.method for r in emu.requests][-1] == "POST"


def test_the_wait_has_a_deadline_that_names_oars_start(emu: G5kEmulator, tmp_path: Path) -> None:
    emu.script_next_job(JobScript(states=("waiting",), scheduled_at=int(time.time()) + 7200))
    shown: list[str] = []
    message = _acquire_fails(
        _platform(emu, tmp_path, wait_timeout="0.3s"), _ctx(tmp_path, [], shown=shown)
    )
    assert "still waiting after 0 s (wait_timeout); OAR schedules it at" in message
    # The progress line showed the job's state and OAR's scheduled start while it waited.
    assert shown and all(s.startswith("job 1 waiting, OAR schedules it at ") for s in shown)
    assert len(_calls(emu, "DELETE")) == 1


def test_wrong_credentials_are_one_line_without_the_password(
    emu: G5kEmulator, tmp_path: Path
) -> None:
    message = _acquire_fails(_platform(emu, tmp_path, password="wrong-Pa55"), _ctx(tmp_path, []))
    assert "refused the credentials (401)" in message
    assert "wrong-Pa55" not in message and PASSWORD not in message


def test_kadeploy_is_retried_on_the_failed_nodes_only(emu: G5kEmulator, tmp_path: Path) -> None:
    key = tmp_path / "id.pub"
    key.write_text("ssh-ed25519 AAAA test\n")
    platform = _platform(emu, tmp_path, env="debian12-min", deploy_key=str(key))
    emu.deploy_ko({"nova-2.lyon.grid5000.fr": 1})
    _acquire_fails(platform, _ctx(tmp_path, []))
    posts = [r.body for r in _calls(emu, "POST", "/deployments")]
    assert [sorted(p["nodes"]) for p in posts] == [
        [f"nova-{i}.lyon.grid5000.fr" for i in (1, 2, 3)],
        ["nova-2.lyon.grid5000.fr"],
    ]
    assert all(p["environment"] == "debian12-min" for p in posts)
    (job,) = _calls(emu, "POST", "/jobs")
    assert job.body["types"] == ["deploy"]
    assert len(_calls(emu, "DELETE")) == 1


def test_kadeploy_failing_every_round_names_the_nodes(emu: G5kEmulator, tmp_path: Path) -> None:
    key = tmp_path / "id.pub"
    key.write_text("ssh-ed25519 AAAA test\n")
    platform = _platform(emu, tmp_path, env="debian12-min", deploy_key=str(key), deploy_attempts=2)
    emu.deploy_ko({"nova-3.lyon.grid5000.fr": 5})
    message = _acquire_fails(platform, _ctx(tmp_path, []))
    assert message.startswith("kadeploy of debian12-min failed on nova-3 after 2 attempt(s)")
    assert len(_calls(emu, "DELETE")) == 1


def _running(emu: G5kEmulator, platform: G5kPlatform, walltime: str = "1:00:00") -> Any:
    """A running job of ``walltime``, held by ``platform`` as after acquire."""
    gk = Grid5000(uri=emu.url, username=USER, password=PASSWORD)
    body = {"resources": f"{{cluster='nova'}}/nodes=1,walltime={walltime}", "command": "sleep 1d"}
    emu.script_next_job(JobScript(states=("running",)))
    job = gk.sites["lyon"].jobs.create(body)
    job.refresh()
    platform._client = gk
    platform._job = job
    return job


def test_the_walltime_guard_lets_a_run_start_that_fits(emu: G5kEmulator, tmp_path: Path) -> None:
    platform = _platform(emu, tmp_path)
    _running(emu, platform, "1:00:00")
    platform.ensure_time(600)  # 10 min + the release margin < 1 h
    assert not _calls(emu, "POST", "/walltime")


def test_the_walltime_guard_extends_the_job_within_max_walltime(
    emu: G5kEmulator, tmp_path: Path
) -> None:
    platform = _platform(emu, tmp_path, walltime="1h", max_walltime="3h")
    job = _running(emu, platform, "1:00:00")
    platform.ensure_time(3600)
    (change,) = _calls(emu, "POST", "/walltime")
    assert change.body["walltime"].startswith("+")
    assert emu.peek_job(job.uid)["walltime"] > 3600


def test_the_walltime_guard_stops_before_a_run_that_would_be_cut(
    emu: G5kEmulator, tmp_path: Path
) -> None:
    platform = _platform(emu, tmp_path)
    _running(emu, platform, "0:20:00")
    with pytest.raises(OutOfTime, match="set max_walltime to let GreenFlow extend the job"):
        platform.ensure_time(1800)
    platform = _platform(emu, tmp_path, walltime="20m", max_walltime="30m")
    _running(emu, platform, "0:20:00")
    with pytest.raises(OutOfTime, match=r"max_walltime \(30m\) allows no more"):
        platform.ensure_time(1800)
    assert not _calls(emu, "POST", "/walltime")  # beyond max_walltime: not even asked


def test_an_extension_oar_refuses_stops_cleanly(emu: G5kEmulator, tmp_path: Path) -> None:
    platform = _platform(emu, tmp_path, walltime="1h", max_walltime="5h")
    gk = Grid5000(uri=emu.url, username=USER, password=PASSWORD)
    emu.script_next_job(JobScript(states=("running",), walltime_max_increase=60))
    job = gk.sites["lyon"].jobs.create(
        {"resources": "{cluster='nova'}/nodes=1,walltime=1:00:00", "command": "x"}
    )
    job.refresh()
    platform._client, platform._job = gk, job
    with pytest.raises(OutOfTime):
        platform.ensure_time(7200)
    assert len(_calls(emu, "POST", "/walltime")) == 1


def test_down_deletes_the_recorded_job(emu: G5kEmulator, tmp_path: Path) -> None:
    """After a crash, `greenflow down` has only the recorded state: it deletes the job, and
    a second down is no error (already killed)."""
    emu.script_next_job(JobScript(states=("waiting",), scheduled_at=int(time.time()) + 3600))
    states: list[dict[str, Any]] = []
    platform = _platform(emu, tmp_path, wait_timeout="0.2s")
    with pytest.raises(GreenFlowError):
        platform.acquire(_ctx(tmp_path, states))  # no release: the process "died"
    assert not _calls(emu, "DELETE")
    assert PASSWORD not in repr(states)
    G5kPlatform.release_recorded(platform.config, states[-1])
    G5kPlatform.release_recorded(platform.config, states[-1])
    assert len(_calls(emu, "DELETE")) == 2
    assert emu.peek_job(states[-1]["job_id"])["state"] == "error"


def test_validate_reaches_the_api_and_finds_the_clusters(emu: G5kEmulator, tmp_path: Path) -> None:
    """`greenflow validate`'s check: the credentials accepted and the plan's clusters
    known, one line per problem, nothing submitted."""
    assert _platform(emu, tmp_path).preflight(tmp_path / "plan.toml") == []
    (problem,) = _platform(emu, tmp_path, password="nope-Pa55").preflight(tmp_path / "plan.toml")
    assert "refused the credentials (401)" in problem and "nope-Pa55" not in problem
    (problem,) = _platform(emu, tmp_path, cluster="taurus").preflight(tmp_path / "plan.toml")
    assert problem == "lyon has no cluster 'taurus'; its clusters: nova, sirius"
    assert not _calls(emu, "POST") and not _calls(emu, "DELETE")
