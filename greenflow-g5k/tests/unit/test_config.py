"""The g5k platform's [platform] settings, checked when the plan is read (before the API is
reached): each key's default, what it accepts, and a message naming the key for what it
refuses; and the OAR request they turn into."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from greenflow.plan.structure import PlanErrors, structure
from greenflow_g5k import oar
from greenflow_g5k.config import (
    DEFAULT_API_URL,
    G5kConfig,
    oar_walltime,
    walltime_seconds,
)
from greenflow_k3s import DEFAULT_K3S_VERSION

PLAN = Path("plan.toml")
ROLES = {
    "control": {"nodes": 1},
    "broker": {"nodes": 3},
    "worker": {"cluster": "paravance", "nodes": 2},
}


def _config(**raw: Any) -> G5kConfig:
    """``raw`` as the plan's [platform] table (less its type) through the core's converter."""
    raw = {"site": "rennes", "cluster": "parasilo", "roles": ROLES, **raw}
    config: G5kConfig = structure(raw, G5kConfig, path=PLAN, section="platform")
    return config


def _refused(**raw: Any) -> str:
    with pytest.raises(PlanErrors) as info:
        _config(**raw)
    problems = info.value.problems
    assert len(problems) == 1, problems
    return problems[0]


def test_defaults() -> None:
    """One hour on the default queue, no deploy (sudo-g5k), the real API, python-grid5000's
    credentials file, an hour's wait at most, three kadeploy rounds, release at the end,
    greenflow-k3s' own defaults for k3s."""
    config = _config()
    assert (config.walltime_s, config.max_walltime_s, config.queue) == (3600, None, "default")
    assert (config.env, config.project, config.reservation) == (None, None, None)
    assert config.api_url == DEFAULT_API_URL == "https://api.grid5000.fr/stable"
    assert config.credentials_file == "~/.python-grid5000.yaml"
    assert (config.wait_timeout, config.deploy_attempts, config.keep) == (3600.0, 3, False)
    assert config.k3s.k3s_version == DEFAULT_K3S_VERSION
    assert config.name_for("kafka vs redpanda/1") == "greenflow-kafka-vs-redpanda-1"
    assert _config(job_name="mine").name_for("x") == "mine"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("2h", 7200),
        ("1h30m", 5400),
        (5400, 5400),
        ("2:00:00", 7200),
        ("1:30", 5400),
        ("30:00:00", 108000),
    ],
)
def test_walltime_as_a_duration_or_as_oar_writes_it(text: str | int, seconds: int) -> None:
    assert walltime_seconds(text) == seconds
    assert walltime_seconds(oar_walltime(seconds)) == seconds


def test_the_oar_request_names_servers_first_then_one_group_per_role() -> None:
    config = _config(
        roles={
            "control": {"servers": ["parasilo-3"]},
            "broker": {"nodes": 3},
            "worker": {"cluster": "paravance", "nodes": 2},
        },
        walltime="1h30m",
        job_types=["night"],
        project="energy",
        reservation="2026-12-24 19:00:00",
    )
    body = oar.job_request(config, "greenflow-x", exotic=True)
    assert body["resources"] == (
        "{network_address in ('parasilo-3.rennes.grid5000.fr')}/nodes=1"
        "+{cluster='parasilo'}/nodes=3+{cluster='paravance'}/nodes=2,walltime=1:30:00"
    )
    assert body["types"] == ["night", "exotic"]
    assert (body["queue"], body["project"], body["reservation"]) == (
        "default",
        "energy",
        "2026-12-24 19:00:00",
    )
    assert oar.job_request(_config(env="debian12-min"), "n", exotic=False)["types"] == ["deploy"]


def test_roles_map_to_nodes_the_same_way_on_every_reload() -> None:
    """Named nodes to their role, then per role the lowest free nodes of its cluster,
    whatever order the API lists them in."""
    config = _config(
        roles={
            "control": {"servers": ["parasilo-9"]},
            **{k: ROLES[k] for k in ("broker", "worker")},
        }
    )
    nodes = [f"parasilo-{i}.rennes.grid5000.fr" for i in (12, 9, 2, 3, 10)] + [
        "paravance-7.rennes.grid5000.fr",
        "paravance-1.rennes.grid5000.fr",
    ]
    roles = oar.assign_roles(config, nodes)
    assert roles == oar.assign_roles(config, list(reversed(nodes)))
    assert [oar.short(n) for n in roles["control"]] == ["parasilo-9"]
    assert [oar.short(n) for n in roles["broker"]] == ["parasilo-10", "parasilo-12", "parasilo-2"]
    assert [oar.short(n) for n in roles["worker"]] == ["paravance-1", "paravance-7"]
    with pytest.raises(oar.JobError, match="broker needs 3 node"):
        oar.assign_roles(config, nodes[:3] + nodes[5:])


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"site": "lyon; rm"}, "[platform] site: expected a name"),
        ({"roles": {"broker": {"nodes": 1}}}, "[platform] roles: no control role"),
        ({"roles": {"control": {}, "brokers": {}}}, 'unknown role \'brokers\' (did you mean "broker"?)'),
        ({"cluster": None, "roles": {"control": {}}}, "roles.control: no cluster; set cluster"),
        ({"roles": {"control": {"nodes": 2, "servers": ["a-1"]}}}, "nodes: 2 but 1 servers"),
        ({"roles": {"control": {"servers": ["nova one"]}}}, 'like "nova-3"'),
        ({"walltime": "two hours"}, '[platform] walltime: expected a walltime like "2h"'),
        ({"walltime": "30s"}, "walltime: at least one minute"),
        ({"queue": "defualt"}, 'queue: expected one of default, production, testing, besteffort, got \'defualt\' (did you mean "default"?)'),
        ({"reservation": "tomorrow"}, 'reservation: expected a start date "YYYY-MM-DD HH:MM:SS"'),
        ({"job_types": ["deploy"]}, "job_types: 'deploy' is set by GreenFlow: set env"),
        ({"api_url": "api.grid5000.fr"}, "[platform] api_url"),
        ({"gateway": "a@b@c"}, "[platform] gateway: expected"),
        ({"k3s": {"k3s_version": "stable"}}, "[platform] k3s: k3s_version: expected a k3s release tag"),
        ({"wallclock": "1h"}, "unknown key(s): wallclock"),
    ],
)  # fmt: skip
def test_a_wrong_key_is_refused_naming_it(raw: dict[str, Any], expected: str) -> None:
    assert expected in _refused(**raw)


def test_max_walltime_below_walltime_is_refused() -> None:
    assert "max_walltime: below walltime" in _refused(walltime="2h", max_walltime="1h")


@pytest.mark.parametrize(("mode", "warned"), [(0o600, False), (0o644, True), (0o640, True)])
def test_a_password_file_others_can_read_is_warned_about(
    tmp_path: Path, mode: int, warned: bool
) -> None:
    """As ssh does for a key: the warning says which file and the chmod, never the password."""
    file = tmp_path / "g5k.yaml"
    file.write_text("username: alice\npassword: s3cret-Pa55\n")
    file.chmod(mode)
    with capture_logs() as logs:
        credentials = oar.load_credentials(file)
    assert credentials.password == "s3cret-Pa55"
    events = [e for e in logs if e["event"] == "g5k.credentials_readable_by_others"]
    assert len(events) == int(warned)
    if warned:
        assert events[0]["hint"] == f"chmod 600 {file}" and "s3cret" not in repr(events)
