"""The ``g5k`` platform end to end: `greenflow run` reserves three nodes through the Grid'5000
API emulator, gets root on them through ``sudo-g5k``, installs k3s with the plan's roles,
deploys a Kafka broker on the broker node, drives a load from the worker node, measures
each node's wall energy, and releases — k3s uninstalled, the job deleted; a failure after
the reservation (k3s cannot install) still deletes the job and leaves nothing on the hosts.

Real: python-grid5000, the runner and the store, sshd per host, fabric, greenflow-k3s'
installer, a control plane, kubelets, kube-proxy and CoreDNS (Kubernetes v1.37.2 built
here), containerd and runc running the broker and producer pods, Kafka's own jars.
SIMULATED: Grid'5000's API (greenflow_g5k.testing.emulator), the nodes (SSH test hosts in
network namespaces named as the job's nodes by an SSH config), ``sudo-g5k`` (a script that
runs sudo), k3s itself (scripts/k3s-standin), the ``apache/kafka`` image (a stand-in built
here: scripts/kube-node/build-kafka-standin.sh), uploaded as an air-gap image archive
where a Grid'5000 node would pull it, and the wattmeters (the emulator's 100 W).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from greenflow.testing.cli import run_greenflow
from greenflow_g5k.testing import Cluster, G5kEmulator, JobScript, Site
from greenflow_k3s.testing.hosts import SUDO_USER, HostPool, SshHosts
from greenflow_k3s.testing.standin import network_left

USER, PASSWORD = "alice", "s3cret-Pa55"
VERSION = "v1.33.4+k3s1"
NODES = ("nova-1", "nova-2", "nova-3")

PLAN = """\
[experiment]
name = "g5k-e2e"
baseline = "0s"
cooldown = "0s"
# No unmeasured run before the measured one (Kafka asks for one: ~40 s of JVMs here; the
# warm-up on Kubernetes is tested on the real node, greenflow-kafka/tests/real_node).
warmup_runs = 0
output = "{out}"

[platform]
type = "g5k"
site = "lyon"
cluster = "nova"
walltime = "1h"
api_url = "{api}"
credentials_file = "g5k.yaml"
user = "{user}"
ssh_config = "ssh_config"
roles.control = {{ nodes = 1 }}
roles.broker = {{ nodes = 1 }}
roles.worker = {{ nodes = 1 }}

[platform.k3s]
install_script = "{artefacts}/install.sh"
k3s_binary = "{binary}"
k3s_version = "{version}"
ready_timeout = "60s"
airgap_images = {images}

{workload}

[[collectors]]
type = "kwollect"
site = "lyon"
api_url = "{api}"
credentials_file = "{credentials}"
poll = "0.5s"
"""


@pytest.fixture
def emu() -> Iterator[G5kEmulator]:
    with G5kEmulator(
        [Site("lyon", clusters=[Cluster("nova", nodes=3, wattmeter=True, cores=16)])],
        username=USER,
        password=PASSWORD,
    ) as emulator:
        # Running at once: the waits' pauses (5 s and up) are tested in tests/emulator.
        emulator.script_next_job(JobScript(states=("running",)))
        yield emulator


def _nodes_are(hosts: SshHosts, tmp_path: Path) -> None:
    """An SSH config that names the test hosts as the job's nodes, and ``sudo-g5k`` on
    each (sudo, as on a Grid'5000 node for the job's owner)."""
    lines = []
    for node, host in zip(NODES, hosts, strict=True):
        lines += [
            f"Host {node}.lyon.grid5000.fr",
            f"    HostName {host.address}",
            f"    IdentityFile {hosts.key}",
            "    IdentitiesOnly yes",
        ]
        sudo_g5k = host.private("/usr/local/bin/sudo-g5k")
        sudo_g5k.write_text('#!/bin/sh\nexec sudo -n "$@"\n')
        sudo_g5k.chmod(0o755)
    (tmp_path / "ssh_config").write_text("\n".join(lines) + "\n")


def _left(hosts: SshHosts) -> dict[str, list[str]]:
    paths = ["/usr/local/bin/k3s", "/var/lib/rancher/k3s", "/etc/rancher/k3s"]
    return {h.name: there for h in hosts if (there := [p for p in paths if h.private(p).exists()])}


#: One broker on the broker node, one producer at 200 msg/s of 1 KiB from the worker node.
KAFKA_WORKLOAD = """\
[[services]]
type = "kafka"
brokers = 1
cpu = "500m"
memory = "1Gi"

[workload]
type = "kafka-ingest"
load = 200
message_size = 1024
producers = 1
warmup = "5s"
duration = "15s"
"""


def _setup(
    emu: G5kEmulator,
    hosts: SshHosts,
    artefacts: Path,
    tmp_path: Path,
    binary: Path | None = None,
    command: str = "true",
    workload: str | None = None,
    images: tuple[Path, ...] = (),
) -> None:
    _nodes_are(hosts, tmp_path)
    (tmp_path / "g5k.yaml").write_text(f"username: {USER}\npassword: {PASSWORD}\n")
    (tmp_path / "g5k.yaml").chmod(0o600)
    (tmp_path / "plan.toml").write_text(
        PLAN.format(
            out=tmp_path / "out",
            api=emu.url,
            user=SUDO_USER,
            artefacts=artefacts,
            binary=binary or artefacts / "k3s",
            version=VERSION,
            workload=workload or f'[workload]\ntype = "command"\ncommand = "{command}"\n',
            images="[" + ", ".join(f'"{i}"' for i in images) + "]",
            credentials=tmp_path / "g5k.yaml",
        )
    )


def _host_energy(cwd: Path) -> dict[str, tuple[float, float, str]]:
    """Host → (energy J over MEASURE, MEASURE s, method) of the experiment's one run."""
    from greenflow.store import Store

    with Store.open(cwd / "out", create=False) as store:
        (exp,) = store.experiments()
        (run,) = store.get_runs(exp.id)
        window = run.window("measure")
        assert window is not None
        return {
            m.labels["host"]: (m.value, window.duration_s, m.method)
            for m in store.metrics(run.run_id)
            if m.name == "energy_joules" and m.labels.get("scope") == "host"
        }


def _provenance(cwd: Path) -> dict[str, Any]:
    from greenflow.store import Store

    with Store.open(cwd / "out", create=False) as store:
        (exp,) = store.experiments()
        return dict(exp.provenance)


@pytest.mark.timeout(900)
def test_reserve_root_k3s_kafka_measure_release(
    emu: G5kEmulator,
    ssh_host_pool: HostPool,
    standin_artefacts: Path,
    kafka_images: tuple[Path, ...],
    tmp_path: Path,
) -> None:
    """The whole path: reserve → root → k3s (images uploaded as air-gap archives) → a Kafka
    broker pod on the broker node, the producer Job on the worker node, reaching it by the
    headless Service's DNS name across nodes → measure → release."""
    hosts = ssh_host_pool.get(3, fresh=True)
    _setup(emu, hosts, standin_artefacts, tmp_path, workload=KAFKA_WORKLOAD, images=kafka_images)
    run = run_greenflow(tmp_path, "run", "plan.toml")
    results = run_greenflow(tmp_path, "results", "--json", "out")
    rows = json.loads(results.stdout or "[]")
    assert run.returncode == 0 and [r["status"] for r in rows] == ["finished"], (
        f"{rows}\n{run.stderr[-4000:]}"
    )
    # The load reached the broker: the count between the two offset reads is the asked
    # 200 msg/s, and the producer's own summary agrees.
    (row,) = rows
    assert row["messages_total"] / row["offsets_read_interval_s"] == pytest.approx(200, rel=0.05)
    assert row["producer_reported_messages_per_s"] == pytest.approx(200, rel=0.05)
    # J per message per node from its wattmeter: 100 W over MEASURE, over the messages.
    for node in NODES:
        column = f"energy_per_message_joules[host/{node}]"
        assert row[f"{column}.method"] == "kwollect:wattmeter"
        assert row[column] == pytest.approx(
            100.0 * row["measure.duration_s"] / row["messages_total"], rel=0.03
        )
    # Each node's energy from its (emulated) wattmeter at 100 W, over MEASURE only.
    measured = _host_energy(tmp_path)
    assert set(measured) == set(NODES)
    for joules, seconds, method in measured.values():
        assert method == "kwollect:wattmeter"
        assert joules == pytest.approx(100.0 * seconds, rel=0.02)
    (job,) = [r for r in emu.requests if r.method == "POST" and r.path == "/sites/lyon/jobs"]
    assert job.body["resources"].startswith("{cluster='nova'}/nodes=1+{cluster='nova'}/nodes=1")
    facts = _provenance(tmp_path)["platform"]
    assert facts["platform"] == "g5k" and facts["job"]["id"] == 1
    assert set(facts["hosts"]) == set(NODES)  # k3s nodes, named as the job's nodes
    assert {n: f["role"] for n, f in facts["nodes"].items()} == {
        "nova-1": "control",
        "nova-2": "broker",
        "nova-3": "worker",
    }
    assert facts["nodes"]["nova-1"]["cores"] == 16 and facts["nodes"]["nova-1"]["wattmeter"]
    assert all(VERSION in f["k3s_version"] for f in facts["hosts"].values())
    # Released: k3s gone from every node (its network too), then the job deleted.
    assert _left(hosts) == {}
    assert {h.name: left for h in hosts if (left := network_left(h))} == {}
    assert [r.path for r in emu.requests if r.method == "DELETE"] == ["/sites/lyon/jobs/1"]
    # The API password is in no output, log or stored byte.
    stored = b"".join(p.read_bytes() for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert PASSWORD.encode() not in stored
    assert PASSWORD not in run.stdout + run.stderr


@pytest.mark.timeout(600)
def test_a_failed_install_deletes_the_job_and_leaves_nothing(
    emu: G5kEmulator, ssh_host_pool: HostPool, standin_artefacts: Path, tmp_path: Path
) -> None:
    """k3s cannot start (its binary exits at once): the run fails with one line, what the
    install put on the hosts is removed, the job deleted."""
    hosts = ssh_host_pool.get(3, fresh=True)
    broken = tmp_path / "k3s-broken"
    broken.write_text("#!/bin/sh\necho 'k3s: cannot start' >&2\nexit 1\n")
    broken.chmod(0o755)
    _setup(emu, hosts, standin_artefacts, tmp_path, broken)
    run = run_greenflow(tmp_path, "run", "plan.toml")
    assert run.returncode != 0
    assert "Traceback" not in run.stderr and "Error: " in run.stderr, run.stderr[-3000:]
    assert [r.path for r in emu.requests if r.method == "DELETE"] == ["/sites/lyon/jobs/1"]
    assert _left(hosts) == {}


@pytest.mark.timeout(600)
def test_ctrl_c_in_the_queue_deletes_the_job(
    emu: G5kEmulator, ssh_host_pool: HostPool, standin_artefacts: Path, tmp_path: Path
) -> None:
    """SIGINT while OAR keeps the job waiting: `greenflow run` exits 130 and the job is
    deleted; no node was touched."""

    hosts = ssh_host_pool.get(3, fresh=True)
    _setup(emu, hosts, standin_artefacts, tmp_path)
    emu.script_next_job(JobScript(states=("waiting",), scheduled_at=int(time.time()) + 3600))
    emu.requests.clear()
    proc = subprocess.Popen(
        [sys.executable, "-m", "greenflow", "run", "plan.toml"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    posted = threading.Event()

    def watch() -> None:
        while proc.poll() is None and not posted.is_set():
            if any(r.method == "POST" for r in emu.requests):
                posted.set()
            time.sleep(0.1)

    watcher = threading.Thread(target=watch)
    watcher.start()
    assert posted.wait(60), "the job was never submitted"
    time.sleep(1.0)  # into the wait
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    watcher.join()
    assert proc.returncode == 130, err[-3000:]
    assert [r.method for r in emu.requests if r.path.startswith("/sites/lyon/jobs/")][
        -1
    ] == "DELETE"
    assert _left(hosts) == {}


@pytest.mark.timeout(600)
def test_sigterm_during_a_run_deletes_the_job_and_leaves_nothing(
    emu: G5kEmulator, ssh_host_pool: HostPool, standin_artefacts: Path, tmp_path: Path
) -> None:
    """SIGTERM while a run measures (a batch system ending the session): the run is
    aborted, k3s removed, the job deleted, `greenflow run` exits 130."""

    hosts = ssh_host_pool.get(3, fresh=True)
    _setup(emu, hosts, standin_artefacts, tmp_path, command="sleep 60")
    proc = subprocess.Popen(
        [sys.executable, "-m", "greenflow", "run", "plan.toml"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if "run.started" in line:
            break
    assert any("run.started" in line for line in seen), "".join(seen)[-3000:]
    proc.send_signal(signal.SIGTERM)
    _, rest = proc.communicate(timeout=300)
    assert proc.returncode == 130, (("".join(seen)) + rest)[-3000:]
    assert [r.path for r in emu.requests if r.method == "DELETE"] == ["/sites/lyon/jobs/1"]
    assert _left(hosts) == {}
