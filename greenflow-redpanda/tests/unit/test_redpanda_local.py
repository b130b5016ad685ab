"""Redpanda as local processes: the files and command line GreenFlow writes, and what the
service says when it cannot run (no process is started here; see
tests/integration/test_local_redpanda.py for running brokers)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from greenflow.api import Host, Inventory
from greenflow.builtin.local import LocalConfig, LocalPlatform
from greenflow.errors import ServiceError
from greenflow.testing import make_deploy_context
from greenflow_redpanda.kube import bootstrap_properties
from greenflow_redpanda.local import (
    LocalRedpandaSpec,
    RedpandaNode,
    cluster_properties,
    command,
    node_config,
    plan_nodes,
    to_yaml,
)
from greenflow_redpanda.service import RedpandaConfig, RedpandaService

FAKE = Path(__file__).parents[1] / "fake_redpanda" / "redpanda"


def _nodes(tmp_path: Path, brokers: int = 3) -> tuple[RedpandaNode, ...]:
    return plan_nodes(brokers, "127.0.0.1", tmp_path / "work", tmp_path / "logs")


def test_each_broker_gets_its_own_ports_and_directory(tmp_path: Path) -> None:
    """Three brokers get node ids 0..2, nine distinct ports and a directory each."""
    nodes = _nodes(tmp_path)
    assert [n.node_id for n in nodes] == [0, 1, 2]
    ports = [p for n in nodes for p in (n.kafka_port, n.rpc_port, n.admin_port)]
    assert len(set(ports)) == 9
    assert nodes[1].config_path == tmp_path / "work" / "broker-1" / "redpanda.yaml"
    assert nodes[1].bootstrap_path.parent == nodes[1].config_path.parent
    assert nodes[1].data_dir == tmp_path / "work" / "broker-1" / "data"
    assert nodes[1].log_path == tmp_path / "logs" / "broker-1.log"


def test_node_config_is_redpanda_yaml_with_seed_driven_formation(tmp_path: Path) -> None:
    """redpanda.yaml parses as YAML and has Redpanda's node schema: data directory, node id,
    every broker's RPC address as a seed in node order with empty_seed_starts_cluster false,
    and the RPC, Kafka and Admin listeners on the host's address, advertised as such."""
    nodes = _nodes(tmp_path)
    node = nodes[1]
    text = to_yaml(node_config(node, nodes, "127.0.0.1", developer_mode=False), "header")
    assert text.startswith("# header\n")
    parsed = yaml.safe_load(text)
    assert list(parsed) == ["redpanda"]
    rp = parsed["redpanda"]
    assert rp["data_directory"] == str(node.data_dir)
    assert rp["node_id"] == 1
    assert rp["developer_mode"] is False
    assert rp["empty_seed_starts_cluster"] is False
    assert rp["seed_servers"] == [
        {"host": {"address": "127.0.0.1", "port": n.rpc_port}} for n in nodes
    ]
    assert (
        rp["rpc_server"]
        == rp["advertised_rpc_api"]
        == {"address": "127.0.0.1", "port": node.rpc_port}
    )
    assert (
        rp["kafka_api"]
        == rp["advertised_kafka_api"]
        == [{"name": "internal", "address": "127.0.0.1", "port": node.kafka_port}]
    )
    assert rp["admin"] == [{"address": "127.0.0.1", "port": node.admin_port}]


def test_yaml_quotes_strings_that_yaml_would_read_otherwise() -> None:
    """Strings that look like booleans, numbers or carry YAML syntax stay strings."""
    value = {
        "a": "true",
        "b": "0123",
        "c": "x: y # z",
        "d": 'q"uote',
        "e": [],
        "f": {},
        "g": [1, [2, 3]],
        "h": None,
    }
    assert yaml.safe_load(to_yaml(value)) == value


def test_cluster_properties_set_write_caching_and_overrides(tmp_path: Path) -> None:
    """.bootstrap.yaml carries write_caching_default and the overrides, the same mapping the
    Kubernetes ConfigMap holds."""
    props = cluster_properties(True, {"log_segment_size": "134217728"})
    assert props == {"write_caching_default": "true", "log_segment_size": "134217728"}
    assert yaml.safe_load(to_yaml(props)) == props
    assert cluster_properties(False, {}) == {"write_caching_default": "false"}
    from greenflow_redpanda.kube import RedpandaKubeSpec

    kube = RedpandaKubeSpec(
        name="r",
        namespace="n",
        version="v",
        brokers=1,
        cores=1,
        memory="2Gi",
        write_caching=True,
        overrides={"log_segment_size": "134217728"},
    )
    assert bootstrap_properties(kube) == props


def test_command_is_the_binary_with_its_config_and_seastar_flags(tmp_path: Path) -> None:
    """The argv is what rpk's launcher would exec: --redpanda-cfg, --smp, --memory,
    --reserve-memory=0M, fsync kept, and --overprovisioned only when asked; no rpk flag."""
    node = _nodes(tmp_path, 1)[0]
    spec = LocalRedpandaSpec(binary="/opt/rp/redpanda", cores=2, memory_mib=4096)
    cmd = command(spec, node)
    assert cmd[:3] == ["/opt/rp/redpanda", "--redpanda-cfg", str(node.config_path)]
    assert cmd[3:] == [
        "--smp=2",
        "--memory=4096M",
        "--reserve-memory=0M",
        "--unsafe-bypass-fsync=false",
        "--default-log-level=info",
        "--overprovisioned",
    ]
    lean = command(LocalRedpandaSpec(binary="rp", overprovisioned=False), node)
    assert "--overprovisioned" not in lean
    assert not any(a.startswith(("--check", "--seeds", "--kafka-addr", "--mode")) for a in cmd)


def test_less_than_a_gib_per_core_needs_developer_mode() -> None:
    """Seastar memory below 1 GiB per core is refused (Redpanda would refuse it at start),
    unless developer_mode, which skips that check."""
    with pytest.raises(ValueError, match="1024 MiB per core unless developer_mode"):
        LocalRedpandaSpec(binary="rp", cores=2, memory_mib=1638)
    LocalRedpandaSpec(binary="rp", cores=2, memory_mib=1638, developer_mode=True)
    with pytest.raises(ValueError, match="write_caching"):
        LocalRedpandaSpec(binary="rp", overrides={"write_caching_default": "true"})


def _local_deploy(svc: RedpandaService, root: Path) -> None:
    svc.deploy(
        LocalPlatform(LocalConfig()),
        Inventory([Host("here", "127.0.0.1", ["broker"])]),
        make_deploy_context(root),
    )


def test_local_platform_without_binary_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no redpanda binary on PATH, deploy fails at once naming the package, where to
    read about it and the Kubernetes alternative, and starts nothing."""
    monkeypatch.setenv("PATH", str(tmp_path))
    svc = RedpandaService("redpanda", RedpandaConfig())
    with pytest.raises(ServiceError) as err:
        _local_deploy(svc, tmp_path / "ctx")
    message = str(err.value)
    assert "needs a `redpanda` binary on PATH" in message
    assert "install the `redpanda` package" in message
    assert "https://docs.redpanda.com/" in message
    assert 'type = "kubernetes"' in message
    assert svc.processes() == {} and svc.health() is None
    assert not (tmp_path / "ctx" / "work" / "redpanda").exists()
    svc.remove()  # nothing to remove, never raises


def test_too_little_memory_fails_at_deploy_before_starting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A binary is on PATH but 2 cores with memory = "2Gi" leave 819 MiB per core: deploy
    says so and starts nothing."""
    binary = tmp_path / "bin" / "redpanda"
    binary.parent.mkdir()
    binary.write_text("#!/bin/sh\nexit 1\n")
    binary.chmod(0o755)
    monkeypatch.setenv("PATH", str(binary.parent))
    svc = RedpandaService("redpanda", RedpandaConfig(cores=2))
    with pytest.raises(ServiceError, match="per core"):
        _local_deploy(svc, tmp_path / "ctx")
    assert svc.processes() == {}


def test_developer_mode_is_refused_on_kubernetes(tmp_path: Path) -> None:
    """developer_mode is a local key: on Kubernetes rpk would turn it into dev-container mode,
    which bypasses fsync."""
    from greenflow.api import Capability

    class FakeKube(LocalPlatform):
        capabilities = frozenset({Capability.KUBERNETES})

    svc = RedpandaService("redpanda", RedpandaConfig(developer_mode=True))
    with pytest.raises(ServiceError, match="bypasses fsync"):
        svc.deploy(FakeKube(LocalConfig()), Inventory([]), make_deploy_context(tmp_path))


def test_recorded_state_of_dead_processes_is_not_attached(tmp_path: Path) -> None:
    """State of local brokers whose processes are gone (or whose pids were reused) is not
    attached to, and removing it only deletes the data directories."""
    data = tmp_path / "data"
    data.mkdir()
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    import psutil

    state = {
        "local": True,
        "processes": {"broker-0": [proc.pid, 1.0]},
        "data_dirs": [str(data)],
        "bootstrap_servers": "127.0.0.1:1",
    }
    assert RedpandaService.attach("redpanda", RedpandaConfig(), state) is None
    # This process exists but was not created at the recorded time: never signalled.
    me = {"local": True, "processes": {"broker-0": [os.getpid(), 1.0]}, "data_dirs": []}
    assert RedpandaService.attach("redpanda", RedpandaConfig(), me) is None
    RedpandaService.remove_recorded(RedpandaConfig(), me)
    assert psutil.pid_exists(os.getpid())
    RedpandaService.remove_recorded(RedpandaConfig(), state)
    assert not data.exists()


def test_fake_binary_rejects_unknown_flags_and_bad_config(tmp_path: Path) -> None:
    """The tests' simulated redpanda fails loudly on an rpk flag and on a config without
    data_directory, so the integration tests would notice GreenFlow writing either."""
    config = tmp_path / "redpanda.yaml"
    config.write_text("redpanda:\n  node_id: 0\n")
    run = [sys.executable, str(FAKE)]
    flag = subprocess.run(
        [*run, "--redpanda-cfg", str(config), "--check=false"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert flag.returncode == 1
    assert "unrecognised option '--check'" in flag.stdout
    bad = subprocess.run(
        [*run, "--redpanda-cfg", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert bad.returncode == 1
    assert "data_directory is required" in bad.stdout
    version = subprocess.run(
        [*run, "--version"], capture_output=True, text=True, timeout=60, check=False
    )
    assert version.returncode == 0 and "fake" in version.stdout
