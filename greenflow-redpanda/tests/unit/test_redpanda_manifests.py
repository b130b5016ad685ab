"""Redpanda's Kubernetes manifests as pure functions."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from greenflow_redpanda.kube import (
    RedpandaKubeSpec,
    bootstrap_properties,
    config_map,
    manifests,
    start_flags,
    statefulset,
)
from greenflow_redpanda.service import RedpandaConfig, RedpandaService


def _spec(**kw: object) -> RedpandaKubeSpec:
    base: dict[str, object] = {
        "name": "redpanda",
        "namespace": "ns",
        "version": "v26.1.14",
        "brokers": 3,
        "cores": 2,
        "memory": "4Gi",
    }
    base.update(kw)
    return RedpandaKubeSpec(**base)  # type: ignore[arg-type]  # test helper


def test_seastar_gets_cores_and_most_of_the_memory() -> None:
    """--smp is the cores, --memory 80 % of the limit with nothing reserved on top."""
    flags = start_flags(_spec())
    assert "--smp=2" in flags and "--memory=3276M" in flags and "--reserve-memory=0M" in flags
    assert "--overprovisioned" in flags
    assert "--overprovisioned" not in start_flags(_spec(overprovisioned=False))
    assert not any("dev-container" in f or "bypass-fsync" in f for f in flags)


def test_every_broker_is_a_seed_and_advertises_its_own_name() -> None:
    """Seeds list every pod's RPC address; each pod advertises its DNS name."""
    flags = start_flags(_spec())
    seeds = next(f for f in flags if f.startswith("--seeds="))
    assert seeds == (
        "--seeds=" + ",".join(f"redpanda-{i}.redpanda-headless.ns.svc:33145" for i in range(3))
    )
    assert "--advertise-kafka-addr=internal://${HOSTNAME}.redpanda-headless.ns.svc:9092" in flags
    assert _spec().bootstrap.split(",")[2] == "redpanda-2.redpanda-headless.ns.svc:9092"


def test_write_caching_and_overrides_go_to_the_bootstrap_file() -> None:
    """.bootstrap.yaml carries write_caching_default and the overrides."""
    spec = _spec(write_caching=True, overrides={"log_segment_size": "134217728"})
    assert bootstrap_properties(spec) == {
        "write_caching_default": "true",
        "log_segment_size": "134217728",
    }
    data = json.loads(config_map(spec)["data"][".bootstrap.yaml"])
    assert data["write_caching_default"] == "true"
    with pytest.raises(ValueError, match="write_caching"):
        _spec(overrides={"write_caching_default": "true"})


def test_resources_placement_and_probe() -> None:
    """Whole cores and memory as requests = limits, broker nodes, one per node, admin probe."""
    sts = statefulset(_spec(node_selector={"node.kubernetes.io/broker": "true"}))
    pod = sts["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert (
        container["resources"]["requests"]
        == container["resources"]["limits"]
        == {"cpu": "2", "memory": "4Gi"}
    )
    assert pod["nodeSelector"] == {"node.kubernetes.io/broker": "true"}
    assert "podAntiAffinity" in pod["affinity"]
    assert container["readinessProbe"]["httpGet"] == {"path": "/v1/status/ready", "port": 9644}
    assert sts["spec"]["template"]["metadata"]["annotations"] == {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": "9644",
        "prometheus.io/path": "/public_metrics",
    }
    assert [m["kind"] for m in manifests(_spec())] == ["ConfigMap", "Service", "StatefulSet"]


def test_too_little_memory_is_refused() -> None:
    """A broker needs at least 1 GiB for Seastar."""
    with pytest.raises(ValueError, match="at least 1 GiB"):
        _spec(memory="1Gi")


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
def test_start_script_runs_rpk_with_the_pod_name(tmp_path: Path) -> None:
    """The pod's script sets seed-driven cluster formation, then execs rpk with its own name
    in the advertised addresses (a stand-in rpk records what it is given)."""
    rpk = tmp_path / "rpk"
    rpk.write_text('#!/bin/sh\necho "rpk $*" >> "$RPK_LOG"\n')
    rpk.chmod(0o755)
    container = statefulset(_spec())["spec"]["template"]["spec"]["containers"][0]
    script = container["command"][2].replace(
        "cp /etc/greenflow/.bootstrap.yaml /etc/redpanda/.bootstrap.yaml", "true"
    )
    log = tmp_path / "log"
    env = {
        "PATH": f"{tmp_path}:{os.environ['PATH']}",
        "HOSTNAME": "redpanda-1",
        "RPK_LOG": str(log),
    }
    subprocess.run(["bash", "-c", script], env=env, check=True)
    first, second = log.read_text().splitlines()
    assert first == "rpk redpanda config set redpanda.empty_seed_starts_cluster false"
    assert second.startswith("rpk redpanda start --smp=2 ")
    assert "--advertise-rpc-addr=redpanda-1.redpanda-headless.ns.svc:33145" in second


def test_config_validates_its_keys() -> None:
    """Cores and brokers are at least 1 and memory is a Kubernetes quantity, named in errors."""
    with pytest.raises(ValueError, match="cores"):
        RedpandaConfig(cores=0)
    with pytest.raises(ValueError, match="memory"):
        RedpandaConfig(memory="lots")


def test_brokers_need_the_broker_role() -> None:
    """The service asks the platform for hosts with the role "broker"."""
    assert RedpandaService.required_roles(RedpandaConfig()) == frozenset({"broker"})
