"""The k3s stand-in (scripts/k3s-standin) on the SSH test hosts, driven over SSH the way an
installer drives k3s' air-gapped install: install.sh and the k3s binary uploaded over SFTP,
``INSTALL_K3S_SKIP_DOWNLOAD=true``, the server on one host, its join token read from
``node-token`` and written to an agent host for ``K3S_TOKEN_FILE``, the kubeconfig fetched
and rewritten to the server's address, k3s' own uninstall scripts at the end.

A real control plane (etcd, kube-apiserver, controller-manager, scheduler) runs on gfh0,
real containerd + kubelet on gfh0 and gfh1, each in its host's network and mount namespace
(root, Linux; skipped with the reason elsewhere). docs/k3s-testing.md, "The k3s stand-in".
"""

from __future__ import annotations

import hashlib
import re
import secrets
import shlex
import subprocess
import time
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs
import pytest
from fabric import Config, Connection

from greenflow_k3s.testing.hosts import HostPool, SshHost, SshHosts
from greenflow_k3s.testing.standin import network_left

VERSION = "v1.33.4+k3s1"
TOKEN_PATH = "/var/lib/rancher/k3s/server/node-token"
KUBECONFIG_PATH = "/etc/rancher/k3s/k3s.yaml"
SCRIPT = "/tmp/k3s-install.sh"
#: Where the agent's token file goes (the host's private /tmp).
JOIN_TOKEN = "/tmp/k3s-join-token"
#: The stand-in's "systemd" directory (k3s: /etc/systemd/system, shared by the test hosts).
UNITS = "/etc/rancher/standin/systemd"
WORKER_LABEL = "node.kubernetes.io/worker"
SERVER_LABEL = "greenflow.test/server"
#: Processes of the stand-in, by their command name.
K3S_COMMANDS = {
    "etcd",
    "kube-apiserver",
    "kube-controller",  # kube-controller-manager, cut to 15 characters
    "kube-scheduler",
    "kubelet",
    "containerd",
    "containerd-shim",
    "k3s",
}
READY_TIMEOUT_S = 120.0
#: The sandbox image scripts/kube-node/build-images.sh makes (the tests' only image), put in
#: the agent's air-gap directory as an installer puts k3s' images archive.
IMAGES = Path.home() / ".cache" / "greenflow" / "kube-node" / "images"
PAUSE_IMAGE = IMAGES / "pause-oci.tar"
#: Debian's static busybox as an image (build-images.sh): a shell, nslookup, wget, httpd.
BUSYBOX_IMAGE = IMAGES / "busybox-oci.tar"
AIRGAP_DIR = "/var/lib/rancher/k3s/agent/images"


def connect(host: SshHost) -> Connection:
    """fabric to ``host`` with the test key only, nothing read from pytest's stdin."""
    return Connection(
        host.address,
        user=host.user,
        port=host.port,
        config=Config(overrides={"run": {"in_stream": False}}),
        connect_timeout=10,
        connect_kwargs={
            "key_filename": str(host.key),
            "look_for_keys": False,
            "allow_agent": False,
        },
    )


def install_command(env: Mapping[str, str], *args: str) -> str:
    """``env K=V ... sh install.sh ARGS``, as an installer runs the uploaded script."""
    assignments = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
    return f"env {assignments} sh {SCRIPT} {' '.join(shlex.quote(a) for a in args)}".rstrip()


def bootstrap_token(secret: str) -> str:
    """The Kubernetes bootstrap token the stand-in derives from a k3s token's secret."""
    digest = hashlib.sha256(f"k3s-standin:{secret}".encode()).hexdigest()
    return f"{digest[:6]}.{digest[6:22]}"


@attrs.define
class Cluster:
    hosts: SshHosts
    conns: list[Connection]
    kubeconfig: Path
    #: The join token: never printed (a failed assertion must not show it either).
    token: str
    #: stdout + stderr of each install, by host name.
    outputs: dict[str, str]
    timings: dict[str, float]

    @property
    def secret(self) -> str:
        return self.token.rsplit(":", 1)[1]

    def core(self) -> Any:
        from kubernetes import client, config

        api_client = config.new_client_from_config(config_file=str(self.kubeconfig))  # type: ignore[no-untyped-call]
        return client.CoreV1Api(api_client)


def upload(conn: Connection, artefacts: Path) -> None:
    conn.put(str(artefacts / "install.sh"), SCRIPT)
    conn.put(str(artefacts / "k3s"), "/usr/local/bin/k3s")
    conn.run("chmod 755 /usr/local/bin/k3s", hide=True)


def put_images(conn: Connection) -> None:
    """The test images there are into the host's air-gap directory, imported at k3s' start."""
    images = [i for i in (PAUSE_IMAGE, BUSYBOX_IMAGE) if i.is_file()]
    if images:
        conn.run(f"mkdir -p {AIRGAP_DIR}", hide=True)
    for image in images:
        conn.put(str(image), f"{AIRGAP_DIR}/{image.name}")


def write_secret(conn: Connection, path: str, value: str) -> None:
    """``value`` into ``path`` over SFTP, mode 0600 before its first byte."""
    with conn.sftp().open(path, "w") as f:
        f.chmod(0o600)
        f.write(value + "\n")


def node_processes(host: SshHost) -> dict[int, str]:
    """The processes in ``host``'s network namespace that belong to k3s, by pid."""
    pids = subprocess.run(
        ["ip", "netns", "pids", host.name], capture_output=True, text=True, check=False
    ).stdout.split()
    found = {}
    for pid in pids:
        try:
            comm = Path(f"/proc/{pid}/comm").read_text().strip()
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if comm in K3S_COMMANDS or b"K3S_STANDIN=1" in environ:
            found[int(pid)] = comm
    return found


def remove_cgroups(host: SshHost) -> None:
    """What a crashed test may leave of a host's kubelet cgroups (k3s-killall.sh removes them)."""
    for root in Path("/sys/fs/cgroup").glob(f"*/k3s-standin/{host.name}"):
        for d in [*sorted((p for p in root.rglob("*") if p.is_dir()), reverse=True), root]:
            try:
                d.rmdir()
            except OSError as exc:
                print(f"cannot remove the cgroup {d}: {exc}")


def wait_ready(cluster: Cluster, names: list[str]) -> None:
    core = cluster.core()
    deadline = time.monotonic() + READY_TIMEOUT_S
    why: dict[str, str] = {}
    while time.monotonic() < deadline:
        nodes = {n.metadata.name: n for n in core.list_node(_request_timeout=10).items}
        why = {}
        for name in names:
            node = nodes.get(name)
            ready = [c for c in (node.status.conditions or []) if c.type == "Ready"] if node else []
            if not ready or ready[0].status != "True":
                why[name] = f"{ready[0].reason}: {ready[0].message}" if ready else "not registered"
        if not why:
            return
        time.sleep(1)
    logs = {
        h.name: h.private(f"/var/log/{'k3s' if h.name == 'gfh0' else 'k3s-agent'}.log")
        for h in cluster.hosts
    }
    tails = "\n".join(
        f"--- {name}: {path}\n" + "\n".join(path.read_text().splitlines()[-15:])
        for name, path in logs.items()
        if path.exists()
    )
    pytest.fail(f"nodes not Ready after {READY_TIMEOUT_S:.0f} s: {why}\n{tails}")


@pytest.fixture(scope="module")
def cluster(
    ssh_host_pool: HostPool, artefacts: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    """A server on gfh0 and an agent on gfh1 (labelled worker, tainted), installed as an
    installer would, both nodes Ready; gfh2 has the artefacts uploaded and nothing else."""
    hosts = ssh_host_pool.get(3, fresh=True)
    conns = [connect(h) for h in hosts]
    timings: dict[str, float] = {}
    outputs: dict[str, str] = {}
    try:
        t0 = time.monotonic()
        for conn in conns:
            upload(conn, artefacts)
        timings["upload (3 hosts)"] = time.monotonic() - t0

        server = hosts[0]
        put_images(conns[0])
        t0 = time.monotonic()
        result = conns[0].run(
            install_command(
                {
                    "INSTALL_K3S_SKIP_DOWNLOAD": "true",
                    "INSTALL_K3S_VERSION": VERSION,
                    "INSTALL_K3S_EXEC": (
                        f"server --node-name={server.name} --node-label={SERVER_LABEL}=yes "
                        f"--disable=traefik --disable=servicelb --tls-san={server.address}"
                    ),
                }
            ),
            hide=True,
            warn=True,
        )
        outputs[server.name] = result.stdout + result.stderr
        assert result.ok, f"server install failed:\n{outputs[server.name]}"
        timings["server install (until ready)"] = time.monotonic() - t0

        token = conns[0].run(f"cat {TOKEN_PATH}", hide=True).stdout.strip()
        write_secret(conns[1], JOIN_TOKEN, token)
        put_images(conns[1])
        t0 = time.monotonic()
        # No command: `agent`, because K3S_URL is set; the flags as arguments (sh -s - ...).
        result = conns[1].run(
            install_command(
                {
                    "INSTALL_K3S_SKIP_DOWNLOAD": "true",
                    "INSTALL_K3S_VERSION": VERSION,
                    "K3S_URL": f"https://{server.address}:6443",
                    "K3S_TOKEN_FILE": JOIN_TOKEN,
                    "K3S_NODE_NAME": hosts[1].name,
                },
                f"--node-label={WORKER_LABEL}=true",
                f"--node-taint={WORKER_LABEL}=true:NoSchedule",
                "--kubelet-arg=max-pods=50",
            ),
            hide=True,
            warn=True,
        )
        outputs[hosts[1].name] = result.stdout + result.stderr
        assert result.ok, f"agent install failed:\n{outputs[hosts[1].name]}"
        timings["agent install"] = time.monotonic() - t0

        text = conns[0].run(f"cat {KUBECONFIG_PATH}", hide=True).stdout
        rewritten = text.replace("https://127.0.0.1:6443", f"https://{server.address}:6443")
        kubeconfig = tmp_path_factory.mktemp("kubeconfig") / "k3s.yaml"
        kubeconfig.write_text(rewritten)
        kubeconfig.chmod(0o600)
        c = Cluster(hosts, conns, kubeconfig, token, outputs, timings)
        wait_ready(c, [server.name, hosts[1].name])
        timings["agent install → both nodes Ready"] = time.monotonic() - t0
        yield c
    finally:
        for conn in reversed(conns):
            conn.run(
                "for s in /usr/local/bin/k3s-agent-uninstall.sh /usr/local/bin/k3s-uninstall.sh; do "
                '[ ! -x "$s" ] || "$s"; done',
                hide=True,
                warn=True,
            )
            conn.close()
        for host in hosts:
            remove_cgroups(host)
        print("\nk3s stand-in timings: " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()))


def test_contract_errors_fail_before_anything_is_written(cluster: Cluster) -> None:
    """What the real script refuses, refused, and the download it cannot do here; unknown
    flags fail as k3s fails them."""
    conn = cluster.conns[2]
    bin_dir, units = "/tmp/contract/bin", "/tmp/contract/units"
    conn.run(f"mkdir -p {bin_dir} {units} && cp /usr/local/bin/k3s {bin_dir}/k3s", hide=True)
    base = {"INSTALL_K3S_BIN_DIR": bin_dir, "INSTALL_K3S_SYSTEMD_DIR": units}
    skip = {**base, "INSTALL_K3S_SKIP_DOWNLOAD": "true"}
    url = f"https://{cluster.hosts[0].address}:6443"
    cases = [
        (base, "downloading k3s is impossible here"),
        ({**skip, "INSTALL_K3S_BIN_DIR": "/tmp/contract/none"}, "Executable k3s binary not found"),
        (
            {**skip, "K3S_URL": url.replace("https", "http"), "K3S_TOKEN_FILE": "/tmp/t"},
            "Only https:// URLs are supported",
        ),
        ({**skip, "K3S_URL": url}, "K3S_TOKEN or K3S_TOKEN_FILE is not defined"),
        ({**skip, "K3S_URL": url, "INSTALL_K3S_EXEC": "server"}, "(HA) is not supported"),
        ({**skip, "INSTALL_K3S_EXEC": "serve"}, "unknown k3s command 'serve'"),
    ]
    for env, message in cases:
        result = conn.run(install_command(env), hide=True, warn=True)
        assert result.failed, env
        assert message in result.stderr, (env, result.stderr)
    left = conn.run(f"find {bin_dir} {units} -mindepth 1", hide=True).stdout.split()
    assert left == [f"{bin_dir}/k3s"]
    for cmd, flag in (
        ("server --no-such-flag", "-no-such-flag"),
        ("agent --disable=traefik", "-disable"),
    ):
        result = conn.run(f"{bin_dir}/k3s {cmd}", hide=True, warn=True)
        assert result.failed
        assert f"flag provided but not defined: {flag}" in result.stderr
    conn.run("rm -rf /tmp/contract", hide=True)


def test_server_writes_k3s_files(cluster: Cluster) -> None:
    """node-token (K10<CA hash>::server:<secret>, 0600), k3s.yaml (0600, the loopback
    address), the env file (0600), killall and uninstall scripts, and the version."""
    conn = cluster.conns[0]
    well_formed = re.fullmatch(r"K10[0-9a-f]{64}::server:[0-9a-f]{32}", cluster.token) is not None
    assert well_formed, "node-token is not K10<sha256>::server:<32 hex digits>"
    ca_hash = conn.run(
        "sha256sum < /var/lib/rancher/k3s/server/tls/server-ca.crt", hide=True
    ).stdout.split()[0]
    hashed = cluster.token.startswith(f"K10{ca_hash}::")
    assert hashed, "node-token does not start with K10 and the sha256 of the server's CA"
    modes = conn.run(
        f"stat -L -c '%n %a' {TOKEN_PATH} {KUBECONFIG_PATH} {UNITS}/k3s.service.env", hide=True
    ).stdout.split("\n")
    assert [m.split()[1] for m in modes if m] == ["600", "600", "600"]
    assert "server: https://127.0.0.1:6443" in conn.run(f"cat {KUBECONFIG_PATH}", hide=True).stdout
    scripts = conn.run("ls /usr/local/bin", hide=True).stdout.split()
    assert {"k3s", "k3s-killall.sh", "k3s-uninstall.sh"} <= set(scripts)
    assert "k3s-agent-uninstall.sh" not in scripts
    agent_scripts = cluster.conns[1].run("ls /usr/local/bin", hide=True).stdout.split()
    assert {"k3s", "k3s-killall.sh", "k3s-agent-uninstall.sh"} <= set(agent_scripts)
    version = conn.run("k3s --version", hide=True).stdout.splitlines()[0]
    assert version == f"k3s version {VERSION} (standin)"


def test_both_nodes_registered_ready_with_labels_and_taints(cluster: Cluster) -> None:
    """The server is a node labelled control-plane by k3s; the agent carries its
    --node-label and --node-taint from registration; both Ready, on their own addresses."""
    core = cluster.core()
    nodes = {n.metadata.name: n for n in core.list_node().items}
    server, agent = cluster.hosts[0], cluster.hosts[1]
    assert set(nodes) == {server.name, agent.name}
    s, a = nodes[server.name], nodes[agent.name]
    assert s.metadata.labels["node-role.kubernetes.io/control-plane"] == "true"
    assert s.metadata.labels["node-role.kubernetes.io/master"] == "true"
    assert s.metadata.labels[SERVER_LABEL] == "yes"
    assert not s.spec.taints
    assert a.metadata.labels[WORKER_LABEL] == "true"
    assert "node-role.kubernetes.io/control-plane" not in a.metadata.labels
    assert [(t.key, t.value, t.effect) for t in a.spec.taints] == [
        (WORKER_LABEL, "true", "NoSchedule")
    ]
    assert a.status.capacity["pods"] == "50"  # --kubelet-arg=max-pods=50
    for host, node in ((server, s), (agent, a)):
        addresses = {x.type: x.address for x in node.status.addresses}
        assert addresses["InternalIP"] == host.address
        assert node.status.node_info.kubelet_version == "v1.37.2"


def test_the_token_is_never_printed_nor_on_a_command_line(cluster: Cluster) -> None:
    """Not in the install scripts' output, the logs, the env file, nor any process's
    command line on this machine (the hosts share its process table)."""
    secret, derived = cluster.secret, bootstrap_token(cluster.secret)
    printed = [name for name, out in cluster.outputs.items() if secret in out or derived in out]
    assert printed == [], "the install output shows the token"
    logs = [
        cluster.hosts[0].private("/var/log/k3s.log"),
        cluster.hosts[1].private("/var/log/k3s-agent.log"),
    ]
    for host in cluster.hosts[:2]:
        logs += host.private("/var/lib/rancher/k3s/standin-logs").glob("*.log")
    leaked = [str(p) for p in logs if secret in p.read_text() or derived in p.read_text()]
    assert leaked == [], "a log shows the token"
    env = cluster.conns[1].run(f"cat {UNITS}/k3s-agent.service.env", hide=True).stdout
    assert f"K3S_TOKEN_FILE='{JOIN_TOKEN}'" in env
    in_env = secret in env  # (an assertion's message must not show the token either)
    assert not in_env, "the env file holds the token"
    exposed = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes()
        except OSError:
            continue
        if secret.encode() in args or derived.encode() in args:
            exposed.append(cmdline.parent.name)
    assert exposed == [], "processes with the token on their command line"


def test_an_unchanged_reinstall_keeps_the_running_agent(cluster: Cluster) -> None:
    """The same install again changes nothing and restarts nothing (k3s' script)."""
    conn = cluster.conns[1]
    pid = conn.run("cat /run/k3s-standin/k3s-agent.pid", hide=True).stdout.strip()
    result = conn.run(
        install_command(
            {
                "INSTALL_K3S_SKIP_DOWNLOAD": "true",
                "INSTALL_K3S_VERSION": VERSION,
                "K3S_URL": f"https://{cluster.hosts[0].address}:6443",
                "K3S_TOKEN_FILE": JOIN_TOKEN,
                "K3S_NODE_NAME": cluster.hosts[1].name,
            },
            f"--node-label={WORKER_LABEL}=true",
            f"--node-taint={WORKER_LABEL}=true:NoSchedule",
            "--kubelet-arg=max-pods=50",
        ),
        hide=True,
    )
    assert "No change detected so skipping service start" in result.stdout
    assert conn.run("cat /run/k3s-standin/k3s-agent.pid", hide=True).stdout.strip() == pid


def test_a_wrong_token_is_refused(cluster: Cluster) -> None:
    """The API server refuses a token with the right CA hash and a wrong secret; a token of
    another CA is refused by the agent; the refused agent runs no kubelet, registers no node."""
    host, conn = cluster.hosts[2], cluster.conns[2]
    url = f"https://{cluster.hosts[0].address}:6443"
    ca_hash = cluster.token[3:67]
    wrong_secret = f"K10{ca_hash}::server:{secrets.token_hex(16)}"
    wrong_ca = f"K10{'0' * 64}::server:{cluster.secret}"
    # In the foreground, k3s agent fails at once with the reason.
    write_secret(conn, "/tmp/wrong-secret", wrong_secret)
    write_secret(conn, "/tmp/wrong-ca", wrong_ca)
    refused = conn.run(
        f"timeout 60 k3s agent --server {url} --token-file /tmp/wrong-secret", hide=True, warn=True
    )
    assert refused.return_code == 1, refused.stderr
    assert f"the server at {url} refused it (401 Unauthorized)" in refused.stderr
    mismatch = conn.run(
        f"K3S_URL={url} K3S_TOKEN_FILE=/tmp/wrong-ca timeout 60 k3s agent", hide=True, warn=True
    )
    conn.run("rm -f /tmp/wrong-secret /tmp/wrong-ca", hide=True)
    assert mismatch.return_code == 1, mismatch.stderr
    assert "token CA hash does not match the Cluster CA certificate hash" in mismatch.stderr
    # Installed as a service, it starts (k3s-agent is Type=exec) and keeps being refused.
    write_secret(conn, JOIN_TOKEN, wrong_secret)
    result = conn.run(
        install_command(
            {
                "INSTALL_K3S_SKIP_DOWNLOAD": "true",
                "INSTALL_K3S_VERSION": VERSION,
                "K3S_URL": url,
                "K3S_TOKEN_FILE": JOIN_TOKEN,
            }
        ),
        hide=True,
    )
    assert result.ok
    log = host.private("/var/log/k3s-agent.log")
    deadline = time.monotonic() + 30
    while "refused it (401 Unauthorized)" not in log.read_text():
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.5)
    assert "kubelet" not in node_processes(host).values()
    names = [n.metadata.name for n in cluster.core().list_node().items]
    assert host.name not in names


def test_a_pod_runs_on_the_agent(cluster: Cluster) -> None:
    """A real node: the image from the air-gap directory (imported at start), a pod
    scheduled past the worker taint, run by containerd and runc, its IP from the pod CIDR
    the controller-manager gave the node. (The uninstall below then has a pod to stop.)"""
    if not PAUSE_IMAGE.is_file():
        pytest.skip(f"no {PAUSE_IMAGE}: bash scripts/kube-node/build-images.sh builds it")
    from kubernetes import client

    core = cluster.core()
    agent = cluster.hosts[1].name
    pod = client.V1Pod(
        metadata=client.V1ObjectMeta(name="standin-pause"),
        spec=client.V1PodSpec(
            node_selector={"kubernetes.io/hostname": agent},
            tolerations=[client.V1Toleration(key=WORKER_LABEL, operator="Exists")],
            containers=[
                client.V1Container(
                    name="pause", image="registry.k8s.io/pause:3.10.2", image_pull_policy="Never"
                )
            ],
        ),
    )
    core.create_namespaced_pod("default", pod)
    deadline = time.monotonic() + 60
    while (
        status := core.read_namespaced_pod("standin-pause", "default").status
    ).phase != "Running":
        assert time.monotonic() < deadline, status
        time.sleep(0.5)
    cidr = core.read_node(agent).spec.pod_cidr
    assert cidr.endswith(".0/24")
    assert status.pod_ip.rsplit(".", 1)[0] == cidr.rsplit(".", 1)[0]


def _busybox_pod(name: str, node: str, command: str, **spec: Any) -> Any:
    from kubernetes import client

    return client.V1Pod(
        metadata=client.V1ObjectMeta(name=name, labels={"app": name}),
        spec=client.V1PodSpec(
            node_selector={"kubernetes.io/hostname": node},
            tolerations=[client.V1Toleration(key=WORKER_LABEL, operator="Exists")],
            containers=[
                client.V1Container(
                    name="busybox",
                    image="docker.io/library/busybox:1.35.0",
                    image_pull_policy="Never",
                    command=["sh", "-c", command],
                )
            ],
            **spec,
        ),
    )


def _wait_phase(core: Any, name: str, phases: set[str], timeout_s: float = 60) -> Any:
    deadline = time.monotonic() + timeout_s
    while (pod := core.read_namespaced_pod(name, "default")).status.phase not in phases:
        assert time.monotonic() < deadline, pod.status
        time.sleep(0.5)
    return pod


def test_pods_on_two_nodes_reach_each_other_by_service_name(cluster: Cluster) -> None:
    """The network k3s packages, as the stand-in runs it: a web server pod on the agent, and
    on the server a pod that finds its Service by name (CoreDNS through the kube-dns
    Service, so kube-proxy), fetches a page through the Service's cluster IP and from the
    pod's own IP (the route to the agent's pod CIDR); from this machine, the Service's
    NodePort on the SERVER's address answers from the pod on the agent."""
    if not BUSYBOX_IMAGE.is_file() or not PAUSE_IMAGE.is_file():
        pytest.skip(
            f"no {BUSYBOX_IMAGE} or {PAUSE_IMAGE}: bash scripts/kube-node/build-images.sh builds them"
        )
    from kubernetes import client

    core = cluster.core()
    server, agent = cluster.hosts[0], cluster.hosts[1]
    core.create_namespaced_pod(
        "default",
        _busybox_pod(
            "web",
            agent.name,
            'mkdir -p /tmp/www && echo "served by $(hostname)" > /tmp/www/index.html && '
            "exec httpd -f -p 8080 -h /tmp/www",
        ),
    )
    service = core.create_namespaced_service(
        "default",
        client.V1Service(
            metadata=client.V1ObjectMeta(name="web"),
            spec=client.V1ServiceSpec(
                type="NodePort",
                selector={"app": "web"},
                ports=[client.V1ServicePort(port=80, target_port=8080)],
            ),
        ),
    )
    web_ip = _wait_phase(core, "web", {"Running"}).status.pod_ip
    core.create_namespaced_pod(
        "default",
        _busybox_pod(
            "client",
            server.name,
            # (This static busybox's wget crashes without NSS: nslookup resolves, nc fetches.)
            "nslookup web.default.svc.cluster.local && "
            "ip=$(nslookup web.default.svc.cluster.local | awk '/^Address: /{a=$2} END{print a}') && "
            "get() { printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 5 $1 $2; } && "
            f"get $ip 80 && get {web_ip} 8080",
            restart_policy="Never",
        ),
    )
    client_pod = _wait_phase(core, "client", {"Succeeded", "Failed"})
    log = core.read_namespaced_pod_log("client", "default")
    assert client_pod.status.phase == "Succeeded", log
    assert client_pod.spec.node_name == server.name
    assert f"Address: {service.spec.cluster_ip}" in log  # the name, from CoreDNS
    assert log.count("served by web") == 2, log
    node_port = service.spec.ports[0].node_port
    # From this machine through the server's kube-proxy to the agent's pod; the rules may
    # take a moment after the Service is created.
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"http://{server.address}:{node_port}/", timeout=5) as r:
                assert r.read().decode().strip() == "served by web"
                break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


def test_uninstall_scripts_leave_no_files_or_processes(cluster: Cluster) -> None:
    """Agents first, then the server: nothing of k3s is left on any host — files, processes,
    mounts, the kubelets' cgroups. (Runs last: it removes the cluster.)"""
    for host, conn in reversed(list(zip(cluster.hosts, cluster.conns, strict=True))):
        script = "k3s-uninstall.sh" if host.name == "gfh0" else "k3s-agent-uninstall.sh"
        out = conn.run(f"/usr/local/bin/{script}", hide=True)
        shown = cluster.secret in out.stdout + out.stderr
        assert not shown, f"{script} printed the token"
    for host, conn in zip(cluster.hosts, cluster.conns, strict=True):
        assert node_processes(host) == {}, host.name
        left = conn.run(
            "ls -A /etc/rancher /var/lib/rancher /var/lib/kubelet /usr/local/bin /var/log; "
            "ls -d /run/k3s /run/k3s-standin /run/containerd /run/netns; "
            "grep -E ' (/run/k3s|/var/lib/kubelet/|/var/lib/rancher/k3s|/run/netns/cni-)' /proc/self/mountinfo",
            hide=True,
            warn=True,
        ).stdout.split()
        assert [x for x in left if not x.endswith(":")] == [], host.name
        # Nor kube-proxy's rules or the routes to the other nodes' pods.
        assert network_left(host) == [], host.name
        # (No pod either: its cgroups could not be removed while it ran.)
        assert list(Path("/sys/fs/cgroup").glob(f"*/k3s-standin/{host.name}")) == [], host.name
    cache = [f.name for f in Path("/var/lib/cni/results").glob("cbr0-gfh*")]
    assert cache == [], "CNI results of the hosts left in this machine's /var/lib/cni"
