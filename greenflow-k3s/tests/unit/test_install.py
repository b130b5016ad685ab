"""What the installer runs on a host, rendered without one: k3s' install contract
(INSTALL_K3S_*, K3S_URL, K3S_TOKEN_FILE), labels and taints by role, the idempotence key, the
kubeconfig rewrite, and why a node is not Ready. Pure functions; nothing is simulated."""

from __future__ import annotations

import shlex
from types import SimpleNamespace

import pytest

from greenflow.errors import PlatformError
from greenflow_k3s import Host, K3sConfig
from greenflow_k3s.install import (
    AGENT_TOKEN_PATH,
    INSTALLED_PATH,
    SCRIPT_PATH,
    agent_flags,
    fingerprint,
    install_command,
    install_env,
    installed_check_command,
    node_blocker,
    rewrite_kubeconfig,
    server_flags,
    server_url,
)

CONTROL = Host("cp-1", "cp-1.example.org", "control", node_ip="10.0.0.1")
BROKER = Host("broker-1", "10.0.0.2", "broker")
WORKER = Host("worker-1", "10.0.0.3", "worker")


def test_the_server_registers_with_its_name_ip_and_the_control_plane_role() -> None:
    flags = server_flags(CONTROL, K3sConfig(hosts=(), inventory="hosts.yaml"))
    assert flags[:3] == ["server", "--node-name=cp-1", "--node-ip=10.0.0.1"]
    # k3s labels its server control-plane itself: no --node-label for it.
    assert not [f for f in flags if f.startswith("--node-label")]
    assert "--disable=traefik" in flags and "--disable=servicelb" in flags
    # The kubeconfig is rewritten to the node IP: the API certificate must name it.
    assert "--tls-san=10.0.0.1" in flags and "--tls-san=cp-1.example.org" in flags


def test_agents_carry_their_role_label_and_taint_and_the_plan_args() -> None:
    config = K3sConfig(
        inventory="hosts.yaml",
        taints={"broker": "NoSchedule"},
        agent_args=("--kubelet-arg=max-pods=200",),
    )
    broker = agent_flags(BROKER, config)
    assert broker[:2] == ["agent", "--node-name=broker-1"]
    assert "--node-label=node.kubernetes.io/broker=true" in broker
    assert "--node-taint=node.kubernetes.io/broker=true:NoSchedule" in broker
    assert broker[-1] == "--kubelet-arg=max-pods=200"
    worker = agent_flags(WORKER, config)
    assert "--node-label=node.kubernetes.io/worker=true" in worker
    assert not [f for f in worker if f.startswith("--node-taint")]


def test_an_agent_joins_by_url_and_token_file_never_the_token() -> None:
    config = K3sConfig(inventory="hosts.yaml", k3s_version="v1.33.4+k3s1")
    env = install_env(config, agent_flags(BROKER, config), join=server_url(CONTROL))
    assert env["K3S_URL"] == "https://10.0.0.1:6443"
    assert env["K3S_TOKEN_FILE"] == AGENT_TOKEN_PATH
    assert "K3S_TOKEN" not in env and "INSTALL_K3S_SKIP_DOWNLOAD" not in env
    assert env["INSTALL_K3S_VERSION"] == "v1.33.4+k3s1"
    assert env["INSTALL_K3S_EXEC"].split() == agent_flags(BROKER, config)


def test_air_gapped_installs_skip_the_download() -> None:
    config = K3sConfig(inventory="hosts.yaml", k3s_binary="k3s", install_script="install.sh")
    env = install_env(config, server_flags(CONTROL, config))
    assert env["INSTALL_K3S_SKIP_DOWNLOAD"] == "true"


def test_the_command_quotes_every_value_and_records_the_fingerprint() -> None:
    config = K3sConfig(inventory="hosts.yaml")
    env = install_env(config, server_flags(CONTROL, config))
    words = shlex.split(install_command(env))
    assert words[0] == "env"
    assert f"INSTALL_K3S_EXEC={env['INSTALL_K3S_EXEC']}" in words
    assert words[words.index("sh") + 1] == SCRIPT_PATH
    assert fingerprint(env) in words and INSTALLED_PATH in words


def test_a_flag_with_white_space_is_refused() -> None:
    config = K3sConfig(inventory="hosts.yaml")
    with pytest.raises(PlatformError, match="white space"):
        install_env(config, ["server", "--kubelet-arg=a b"])


def test_the_fingerprint_changes_with_the_version_and_the_flags() -> None:
    config = K3sConfig(inventory="hosts.yaml")
    env = install_env(config, server_flags(CONTROL, config))
    newer = {**env, "INSTALL_K3S_VERSION": "v1.34.1+k3s1"}
    flags = {**env, "INSTALL_K3S_EXEC": env["INSTALL_K3S_EXEC"] + " --disable=coredns"}
    assert len({fingerprint(env), fingerprint(newer), fingerprint(flags)}) == 3
    assert fingerprint(env) == fingerprint(dict(reversed(list(env.items()))))
    check = installed_check_command(env)
    assert fingerprint(env) in check and "k3s --version" in check and "v1.33.4+k3s1" in check


def test_the_kubeconfig_points_at_the_control_host() -> None:
    text = "clusters:\n- cluster:\n    server: https://127.0.0.1:6443\n  name: default\n"
    assert "server: https://10.0.0.1:6443" in rewrite_kubeconfig(text, CONTROL)
    bare = Host("cp", "fd00::1", "control")
    assert "server: https://[fd00::1]:6443" in rewrite_kubeconfig(text, bare)
    with pytest.raises(PlatformError, match="no loopback server"):
        rewrite_kubeconfig("server: https://10.9.9.9:6443\n", CONTROL)


def _node(status: str, reason: str | None = None, message: str | None = None) -> object:
    cond = SimpleNamespace(type="Ready", status=status, reason=reason, message=message)
    return SimpleNamespace(status=SimpleNamespace(conditions=[cond]))


def test_a_node_not_ready_says_which_condition_holds_it() -> None:
    assert node_blocker(_node("True")) is None
    assert node_blocker(None) == "not registered (its agent has not joined the server)"
    assert (
        node_blocker(_node("False", "KubeletNotReady", "container runtime network not ready"))
        == "Ready=False (KubeletNotReady: container runtime network not ready)"
    )
    assert node_blocker(_node("Unknown")) == "Ready=Unknown"
