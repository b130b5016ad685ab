"""The ``k3s`` platform end to end on three SSH test hosts with the k3s stand-in: `greenflow
up` installs the server on gfh0 and agents on gfh1 (broker, tainted) and gfh2 (worker) from
uploaded artefacts, every node Ready with its role's label; `greenflow run` reuses the
cluster without reinstalling; `greenflow down` uninstalls it, agents first, leaving no k3s
file or process; the join token appears in no output, log or store.

Real: sshd per host, fabric, the installer, a control plane and kubelets (Kubernetes
v1.37.2 built here). Simulated: k3s itself (scripts/k3s-standin honours its install
contract; docs/k3s-testing.md says what only a real k3s proves).
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from greenflow.testing.cli import run_greenflow
from greenflow_k3s.testing.hosts import NOSUDO_USER, HostPool, SshHosts

VERSION = "v1.33.4+k3s1"

PLAN = """\
[experiment]
name = "k3s-e2e"
baseline = "0s"
cooldown = "0s"
output = "{out}"

[platform]
type = "k3s"
install_script = "{artefacts}/install.sh"
k3s_binary = "{artefacts}/k3s"
ssh_config = "{ssh_config}"
k3s_version = "{version}"
ready_timeout = "120s"
taints = {{ broker = "NoSchedule" }}

[[platform.hosts]]
name = "gfh0"
address = "{a0}"
role = "control"
user = "root"
key = "{key}"

[[platform.hosts]]
name = "gfh1"
address = "{a1}"
role = "broker"
user = "root"
key = "{key}"

[[platform.hosts]]
name = "gfh2"
address = "{a2}"
role = "worker"
user = "root"
key = "{key}"

[workload]
type = "command"
command = "true"
"""


def _k3s_left(hosts: SshHosts) -> dict[str, list[str]]:
    left: dict[str, list[str]] = {}
    for host in hosts:
        paths = [
            "/usr/local/bin/k3s",
            "/usr/local/bin/k3s-uninstall.sh",
            "/usr/local/bin/k3s-agent-uninstall.sh",
            "/var/lib/rancher/k3s",
            "/var/lib/rancher/greenflow-k3s",
            "/etc/rancher/k3s",
        ]
        there = [p for p in paths if host.private(p).exists()]
        if there:
            left[host.name] = there
    return left


@pytest.mark.timeout(600)
def test_up_run_down_on_three_hosts(
    ssh_host_pool: HostPool, artefacts: Path, tmp_path: Path
) -> None:
    hosts = ssh_host_pool.get(3, fresh=True)
    plan = tmp_path / "plan.toml"
    plan.write_text(
        PLAN.format(
            out=tmp_path / "out",
            artefacts=artefacts,
            ssh_config=hosts.ssh_config,
            version=VERSION,
            key=hosts.key,
            a0=hosts[0].address,
            a1=hosts[1].address,
            a2=hosts[2].address,
        )
    )
    outputs = []
    try:
        up = run_greenflow(tmp_path, "up", "plan.toml")
        outputs.append(up.stdout + up.stderr)
        assert up.returncode == 0, up.stderr[-4000:]
        token = hosts[0].private("/var/lib/rancher/k3s/server/token").read_text().strip()
        secret = token.rsplit(":", 1)[1]
        # Every node registered, Ready, with its role's label; the broker tainted.
        kubeconfig = next((tmp_path / "out").rglob("kubeconfig"))
        assert oct(kubeconfig.stat().st_mode & 0o777) == "0o600"
        nodes = _nodes(kubeconfig)
        assert sorted(nodes) == ["gfh0", "gfh1", "gfh2"]
        assert all(n["ready"] for n in nodes.values()), nodes
        assert nodes["gfh0"]["labels"].get("node-role.kubernetes.io/control-plane") == "true"
        assert nodes["gfh1"]["labels"].get("node.kubernetes.io/broker") == "true"
        assert nodes["gfh2"]["labels"].get("node.kubernetes.io/worker") == "true"
        assert nodes["gfh1"]["taints"] == ["node.kubernetes.io/broker=true:NoSchedule"]

        run = run_greenflow(tmp_path, "run", "plan.toml")
        outputs.append(run.stdout + run.stderr)
        assert run.returncode == 0, run.stderr[-4000:]
        # The same install on every host: nothing reinstalled.
        assert run.stderr.count("k3s.kept") == 3, run.stderr[-3000:]
        facts = _provenance(tmp_path)["platform"]
        assert facts["platform"] == "k3s"
        assert set(facts["hosts"]) == {"gfh0", "gfh1", "gfh2"}
        for node in facts["hosts"].values():
            assert VERSION in node["k3s_version"] and node["kernel"] and int(node["cores"]) > 0
            assert node["rapl_readable"] in ("yes", "no")
    finally:
        down = run_greenflow(tmp_path, "down", "plan.toml")
        outputs.append(down.stdout + down.stderr)
    assert down.returncode == 0, down.stderr[-4000:]
    assert _k3s_left(hosts) == {}
    # The join token's secret is in no output, log or stored byte.
    stored = b"".join(p.read_bytes() for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert secret.encode() not in stored
    assert not any(secret in text for text in outputs)


def _nodes(kubeconfig: Path) -> dict[str, dict[str, Any]]:
    from kubernetes import client, config

    api = client.CoreV1Api(
        config.new_client_from_config(config_file=str(kubeconfig))  # type: ignore[no-untyped-call]
    )
    out = {}
    for n in api.list_node(_request_timeout=10).items:
        ready = [c.status for c in n.status.conditions or [] if c.type == "Ready"]
        out[n.metadata.name] = {
            "ready": ready == ["True"],
            "labels": n.metadata.labels or {},
            "taints": [f"{t.key}={t.value}:{t.effect}" for t in n.spec.taints or []],
        }
    return out


def _provenance(cwd: Path) -> dict[str, Any]:
    from greenflow.store import Store

    with Store.open(cwd / "out", create=False) as store:
        (exp,) = store.experiments()
        return dict(exp.provenance)


@pytest.mark.timeout(600)
def test_a_failed_install_leaves_nothing_on_the_hosts(
    ssh_host_pool: HostPool, artefacts: Path, tmp_path: Path
) -> None:
    """k3s cannot start on the server (its binary exits at once): `greenflow run` fails with
    one line, and what the install put on every host is gone — on the agents, where the
    install script never ran, the uploaded binary too."""
    hosts = ssh_host_pool.get(3, fresh=True)
    broken = tmp_path / "k3s-broken"
    broken.write_text("#!/bin/sh\necho 'k3s: cannot start' >&2\nexit 1\n")
    broken.chmod(0o755)
    plan = tmp_path / "plan.toml"
    plan.write_text(
        PLAN.format(
            out=tmp_path / "out",
            artefacts=artefacts,
            ssh_config=hosts.ssh_config,
            version=VERSION,
            key=hosts.key,
            a0=hosts[0].address,
            a1=hosts[1].address,
            a2=hosts[2].address,
        ).replace(f'k3s_binary = "{artefacts}/k3s"', f'k3s_binary = "{broken}"')
    )
    run = run_greenflow(tmp_path, "run", "plan.toml")
    assert run.returncode != 0
    assert "Traceback" not in run.stderr and "Error: " in run.stderr, run.stderr[-3000:]
    assert _k3s_left(hosts) == {}


@pytest.mark.timeout(600)
def test_behind_a_gateway_the_api_goes_through_ssh(
    ssh_host_pool: HostPool, artefacts: Path, tmp_path: Path
) -> None:
    """With ``gateway`` (gfh3 as the jump host) every command and the cluster's API go
    through it: the kubeconfig names a local port forwarded over SSH, `greenflow up`, a
    `greenflow run` on the kept cluster and `greenflow down` (a new tunnel from the
    recorded state) all work, and nothing is left."""
    hosts = ssh_host_pool.get(4, fresh=True)
    plan = tmp_path / "plan.toml"
    plan.write_text(
        PLAN.format(
            out=tmp_path / "out",
            artefacts=artefacts,
            ssh_config=hosts.ssh_config,
            version=VERSION,
            key=hosts.key,
            a0=hosts[0].address,
            a1=hosts[1].address,
            a2=hosts[2].address,
        ).replace('ready_timeout = "120s"', 'ready_timeout = "120s"\ngateway = "gfh3"')
    )
    try:
        up = run_greenflow(tmp_path, "up", "plan.toml")
        assert up.returncode == 0, up.stderr[-4000:]
        assert "k3s.api_tunnel" in up.stderr
        kubeconfig = next((tmp_path / "out").rglob("kubeconfig"))
        assert "server: https://127.0.0.1:" in kubeconfig.read_text()
        run = run_greenflow(tmp_path, "run", "plan.toml")
        assert run.returncode == 0, run.stderr[-4000:]
        assert "k3s.api_tunnel" in run.stderr
    finally:
        down = run_greenflow(tmp_path, "down", "plan.toml")
    assert down.returncode == 0, down.stderr[-4000:]
    assert _k3s_left(hosts) == {}


def _bad(case: str, hosts: SshHosts, tmp_path: Path) -> tuple[str, str]:
    """(the plan's line to replace, its replacement) that makes gfh2 ``case``."""
    if case == "unreachable":
        # An address on the hosts' subnet where no host answers.
        return f'address = "{hosts[2].address}"', 'address = "10.77.0.250"'
    if case == "wrong key":
        other = tmp_path / "other_key"
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True
        )
        return (
            f'address = "{hosts[2].address}"\nrole = "worker"\nuser = "root"\nkey = "{hosts.key}"',
            f'address = "{hosts[2].address}"\nrole = "worker"\nuser = "root"\nkey = "{other}"',
        )
    # sudo refused: a user whom sudo asks for a password, with become.
    return (
        f'address = "{hosts[2].address}"\nrole = "worker"\nuser = "root"',
        f'address = "{hosts[2].address}"\nrole = "worker"\nuser = "{NOSUDO_USER}"\nbecome = true',
    )


@pytest.mark.timeout(600)
@pytest.mark.parametrize(
    ("case", "said"),
    [
        ("unreachable", "gfh2"),
        ("wrong key", "gfh2"),
        ("sudo refused", "sudo"),
    ],
)
def test_a_bad_host_fails_the_run_in_one_line_and_leaves_nothing(
    case: str, said: str, ssh_host_pool: HostPool, artefacts: Path, tmp_path: Path
) -> None:
    """One host of three cannot be used (no answer at its address, a key it refuses, sudo
    refused): `greenflow run` fails with one error naming it, no traceback, and the other
    hosts keep nothing of the install."""
    hosts = ssh_host_pool.get(3, fresh=True)
    text = PLAN.format(
        out=tmp_path / "out",
        artefacts=artefacts,
        ssh_config=hosts.ssh_config,
        version=VERSION,
        key=hosts.key,
        a0=hosts[0].address,
        a1=hosts[1].address,
        a2=hosts[2].address,
    ).replace('ready_timeout = "120s"', 'ready_timeout = "120s"\nconnect_timeout = "3s"')
    old, new = _bad(case, hosts, tmp_path)
    assert old in text
    (tmp_path / "plan.toml").write_text(text.replace(old, new))
    run = run_greenflow(tmp_path, "run", "plan.toml")
    assert run.returncode != 0
    assert "Traceback" not in run.stderr
    errors = [line for line in run.stderr.splitlines() if line.startswith("Error: ")]
    assert errors and said in run.stderr[run.stderr.index("Error: ") :], run.stderr[-3000:]
    assert _k3s_left(hosts) == {}


@pytest.mark.timeout(300)
def test_validate_reaches_every_host_and_names_the_one_that_fails(
    ssh_host_pool: HostPool, artefacts: Path, tmp_path: Path
) -> None:
    """`greenflow validate` connects to every host (sudo tried where become) and names the
    one it cannot use; --offline skips that; nothing is installed either way."""
    hosts = ssh_host_pool.get(3, fresh=True)
    text = PLAN.format(
        out=tmp_path / "out",
        artefacts=artefacts,
        ssh_config=hosts.ssh_config,
        version=VERSION,
        key=hosts.key,
        a0=hosts[0].address,
        a1=hosts[1].address,
        a2=hosts[2].address,
    )
    (tmp_path / "plan.toml").write_text(text)
    good = run_greenflow(tmp_path, "validate", "plan.toml")
    assert good.returncode == 0, good.stderr[-3000:]
    assert "plan.toml: ok — 1 runs" in good.stdout
    old, new = _bad("sudo refused", hosts, tmp_path)
    (tmp_path / "plan.toml").write_text(text.replace(old, new))
    bad = run_greenflow(tmp_path, "validate", "plan.toml")
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    assert "plan.toml [platform]: not ready:" in bad.stderr
    assert f"gfh2 ({NOSUDO_USER}@{hosts[2].address})" in bad.stderr
    assert "sudo" in bad.stderr and "gfh0" not in bad.stderr.split("not ready:")[1]
    offline = run_greenflow(tmp_path, "validate", "--offline", "plan.toml")
    assert offline.returncode == 0, offline.stderr[-3000:]
    assert _k3s_left(hosts) == {}
