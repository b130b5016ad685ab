"""The SSH test hosts of scripts/ssh-hosts, which the k3s platform's tests install on: real
sshds in network namespaces, reached for real by fabric (root; skipped with the reason
elsewhere)."""

from __future__ import annotations

import re
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import paramiko
import pytest
from fabric import Config, Connection, ThreadingGroup

from greenflow_k3s.testing.hosts import (
    NOSUDO_USER,
    PRIVATE_DIRS,
    SUDO_USER,
    HostPool,
    SshHost,
    SshHosts,
    find_scripts,
)


@pytest.fixture(scope="module")
def hosts(ssh_host_pool: HostPool) -> SshHosts:
    return ssh_host_pool.get(3)


def config(ssh_config: Path | None = None) -> Config:
    # No stdin for remote commands: pytest captures it (and reading it raises).
    overrides = {"run": {"in_stream": False}}
    if ssh_config is None:
        return Config(overrides=overrides)
    return Config(overrides=overrides, runtime_ssh_path=str(ssh_config))


def connect(host: SshHost) -> Connection:
    # Only the test key: no agent, no ~/.ssh keys of whoever runs the tests.
    return Connection(
        host.address,
        user=host.user,
        port=host.port,
        config=config(),
        connect_timeout=10,
        connect_kwargs={
            "key_filename": str(host.key),
            "look_for_keys": False,
            "allow_agent": False,
        },
    )


@pytest.fixture
def gfh0(hosts: SshHosts) -> Iterator[Connection]:
    with connect(hosts[0]) as c:
        yield c


def test_each_host_answers_with_its_own_hostname(hosts: SshHosts) -> None:
    """fabric reaches three hosts at once by the names of ssh_config, and each is its own machine."""
    names = [h.name for h in hosts]
    # The key too comes from ssh_config (IdentityFile): no other is looked for.
    no_other_keys = {"look_for_keys": False, "allow_agent": False}
    with ThreadingGroup(
        *names, config=config(hosts.ssh_config), connect_timeout=10, connect_kwargs=no_other_keys
    ) as group:
        results = group.run("hostname; ip -4 -o addr show eth0", hide=True)
    answers = {c.original_host: r.stdout.split() for c, r in results.items()}
    assert {name: a[0] for name, a in answers.items()} == {name: name for name in names}
    for h in hosts:
        assert f"{h.address}/24" in answers[h.name]


def test_hosts_reach_each_other(hosts: SshHosts, gfh0: Connection) -> None:
    """A host reaches another's sshd by its name, as an agent reaches the k3s server."""
    banner = gfh0.run(
        f"timeout 5 bash -c 'exec 3<>/dev/tcp/{hosts[1].name}/22 && head -c 7 <&3'", hide=True
    )
    assert banner.stdout == "SSH-2.0"


def test_usr_local_bin_is_private_to_each_host(hosts: SshHosts, gfh0: Connection) -> None:
    """A file written to /usr/local/bin on gfh0 is not there on gfh1 nor on this machine."""
    name = f"gfh-probe-{uuid.uuid4().hex[:8]}"
    path = f"/usr/local/bin/{name}"
    gfh0.run(f"echo probe > {path} && chmod 755 {path}", hide=True)
    with connect(hosts[1]) as gfh1:
        assert gfh1.run(f"test -e {path}", warn=True, hide=True).failed
    assert not Path(path).exists()
    assert hosts[0].private(path).read_text() == "probe\n"
    assert not hosts[1].private(path).exists()


def test_sftp_put_uploads_to_the_host(hosts: SshHosts, gfh0: Connection, tmp_path: Path) -> None:
    """fabric's put (SFTP) lands the file, with its mode, on that host only."""
    local = tmp_path / "install.sh"
    local.write_text("#!/bin/sh\necho installed\n")
    local.chmod(0o755)
    gfh0.put(str(local), "/tmp/install.sh")
    assert gfh0.run("/tmp/install.sh", hide=True).stdout == "installed\n"
    assert hosts[0].private("/tmp/install.sh").stat().st_mode & 0o777 == 0o755
    assert not hosts[1].private("/tmp/install.sh").exists()


def test_sudo_works_for_gfuser_and_is_refused_for_gfnosudo(hosts: SshHosts) -> None:
    """gfuser runs commands as root through ``sudo -n``; gfnosudo is refused, without a prompt."""
    with connect(hosts[1].as_user(SUDO_USER)) as c:
        assert c.run("id -un", hide=True).stdout.strip() == SUDO_USER
        assert c.run("sudo -n id -un", hide=True).stdout.strip() == "root"
    with connect(hosts[1].as_user(NOSUDO_USER)) as c:
        refused = c.run("sudo -n true", warn=True, hide=True)
    assert refused.failed
    assert "a password is required" in refused.stderr


def test_a_wrong_key_is_refused(hosts: SshHosts, tmp_path: Path) -> None:
    """A key the hosts do not know fails authentication (no password fallback)."""
    wrong = tmp_path / "wrong"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(wrong)],
        check=True,
        capture_output=True,
    )
    c = connect(hosts[0])
    c.connect_kwargs["key_filename"] = str(wrong)
    with pytest.raises(paramiko.AuthenticationException):
        c.open()
    c.close()


def test_private_dirs_match_the_scripts() -> None:
    """The Python list of private paths is the one the scripts mount."""
    scripts = find_scripts()
    assert scripts is not None
    lib = (scripts / "lib.sh").read_text()
    match = re.search(r"^PRIVATE_DIRS=\((.*)\)$", lib, re.M)
    assert match is not None
    assert tuple(match.group(1).split()) == PRIVATE_DIRS


def test_a_fresh_set_has_nothing_from_before(ssh_host_pool: HostPool) -> None:
    """``get(n, fresh=True)`` replaces the hosts: a file left on one is gone."""
    left = ssh_host_pool.get(3)[2].private("/var/lib/rancher/left-over")
    left.write_text("x")
    hosts = ssh_host_pool.get(2, fresh=True)
    assert len(hosts) == 2
    assert not hosts[1].private("/var/lib/rancher/left-over").exists()
    assert not left.exists()


def test_down_leaves_no_namespace_bridge_or_sshd(ssh_host_pool: HostPool) -> None:
    """``down`` removes the namespaces, the bridge, the veths, the sshds and the state."""
    hosts = ssh_host_pool.get(3)
    pids = hosts.pids()
    ssh_host_pool.down()
    namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert not re.search(r"^gfh\d+\b", namespaces, re.M), namespaces
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    assert not re.search(r"^\d+: gfh", links, re.M), links
    running = {name: pid for name, pid in pids.items() if _alive(pid)}
    assert running == {}
    assert not hosts.state.exists()


def _alive(pid: int) -> bool:
    """Whether that sshd still runs (a zombie waiting for init to reap it does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    comm, rest = stat.split("(", 1)[1].rsplit(")", 1)
    return comm == "sshd" and rest.split()[0] != "Z"
