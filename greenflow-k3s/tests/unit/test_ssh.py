"""SSH to the nodes, as far as it is testable without an SSH server: connections built from
the inventory, commands wrapped in ``sudo -n``, the parallel runner, one-line causes, and
secrets kept off command lines and logs. (Against real sshd hosts: tests/hosts.)"""

from __future__ import annotations

import os
import shlex
import socket
import stat
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import paramiko
import pytest
import structlog
from invoke.exceptions import CommandTimedOut, UnexpectedExit
from invoke.runners import Result

from greenflow.errors import PlatformError
from greenflow_k3s import (
    Connections,
    Gateway,
    Host,
    HostsFailed,
    Inventory,
    Secret,
    SshError,
    SudoRefused,
    remote_command,
    run_all,
    secret_file_command,
)
from greenflow_k3s.ssh import cause_of, known_hosts_files, sudo_refusal

TOKEN = "K10c4f3e1d2b5a6978::server:9f8e7d6c5b4a39281706f5e4d3c2b1a0"


def _hosts(*roles: Any) -> list[Host]:
    return [Host(f"n{i}", f"10.9.0.{i + 1}", role) for i, role in enumerate(roles)]


@pytest.fixture
def empty_ssh_config(tmp_path: Path) -> Path:
    """No ~/.ssh/config of this machine's user leaks into the tests."""
    path = tmp_path / "ssh_config"
    path.write_text("")
    return path


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- secrets ---------------------------------------------------------------------------------


def test_a_secret_never_prints_its_value() -> None:
    """str, repr, f-strings and containers show Secret('***'); reveal() gives the value."""
    secret = Secret(TOKEN)
    shown = [
        str(secret),
        repr(secret),
        f"{secret}",
        f"{secret!r}",
        str([secret]),
        str({"t": secret}),
    ]
    assert all(TOKEN not in text for text in shown)
    assert str(secret) == "Secret('***')"
    assert secret.reveal() == TOKEN


def test_an_empty_secret_is_refused() -> None:
    """An empty token is a bug upstream (an unread file), not something to send."""
    with pytest.raises(ValueError, match="non-empty"):
        Secret("")


class _FakeConnection:
    """Records what Connections.run hands to fabric, and answers with ``result``."""

    def __init__(self, result: Result | None = None) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.stdin: list[str] = []
        # Not `result or ...`: a failed Result is falsy.
        self.result = result if result is not None else Result(stdout="", exited=0)
        self.is_connected = True

    def run(self, command: str, **kwargs: Any) -> Result:
        stream = kwargs.get("in_stream")
        if stream not in (None, False):
            self.stdin.append(stream.read())
        self.calls.append((command, kwargs))
        return self.result


def _connections_with(monkeypatch: pytest.MonkeyPatch, fake: _FakeConnection) -> Connections:
    monkeypatch.setattr(Connections, "open", lambda self, host: fake)
    return Connections(Inventory(_hosts("control", "worker")))


@pytest.mark.parametrize("become", [False, True])
def test_writing_a_secret_sends_it_on_stdin_and_never_on_the_command_line(
    monkeypatch: pytest.MonkeyPatch, become: bool
) -> None:
    """write_secret's command carries only the path; the token goes to stdin, and no log
    event carries it."""
    fake = _FakeConnection()
    conns = _connections_with(monkeypatch, fake)
    host = Host("n1", "10.9.0.2", "worker", user="debian", become=become)
    with structlog.testing.capture_logs() as logs:
        conns.write_secret(host, "/etc/greenflow/k3s-token", Secret(TOKEN))
    [(command, kwargs)] = fake.calls
    assert TOKEN not in command
    assert "/etc/greenflow/k3s-token" in command
    assert fake.stdin == [TOKEN]
    assert kwargs["hide"] is True and kwargs["echo"] is False and kwargs["pty"] is False
    assert "env" not in kwargs  # fabric would put environment variables on the command line
    assert TOKEN not in repr(logs)
    assert [e["event"] for e in logs] == ["ssh.run", "ssh.secret_written"]


def test_a_command_line_that_contains_the_secret_is_refused_before_connecting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Passing the secret on stdin while also pasting it into the command is refused, and
    the error does not show it."""
    fake = _FakeConnection()
    conns = _connections_with(monkeypatch, fake)
    with pytest.raises(ValueError) as info:
        conns.run(_hosts("control")[0], f"K3S_TOKEN={TOKEN} sh install.sh", stdin=Secret(TOKEN))
    assert TOKEN not in str(info.value)
    assert fake.calls == []


def test_a_command_without_stdin_reads_none_from_this_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """in_stream=False: nothing is read from (or waits on) GreenFlow's own stdin."""
    fake = _FakeConnection(Result(stdout="ok\n", exited=0))
    conns = _connections_with(monkeypatch, fake)
    result = conns.run(_hosts("control")[0], "uname -r", timeout=30)
    assert result.stdout == "ok\n"
    [(command, kwargs)] = fake.calls
    assert command == "uname -r"
    assert kwargs["in_stream"] is False
    assert kwargs["timeout"] == 30


def test_the_secret_file_command_writes_stdin_to_a_0600_file(tmp_path: Path) -> None:
    """Run by a local sh: the file gets exactly stdin, mode 0600, its new directory 0700,
    and an existing world-readable file is replaced, not reused with its mode."""
    target = tmp_path / "new dir" / "node-token"
    command = secret_file_command(str(target))
    assert TOKEN not in command
    subprocess.run(["sh", "-c", command], input=TOKEN.encode(), check=True)
    assert target.read_text() == TOKEN
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert stat.S_IMODE(target.parent.stat().st_mode) == 0o700
    target.write_text("old")
    os.chmod(target, 0o644)
    subprocess.run(["sh", "-c", command], input=b"new", check=True)
    assert target.read_text() == "new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert sorted(p.name for p in target.parent.iterdir()) == ["node-token"]


def test_the_secret_file_command_wants_an_absolute_path() -> None:
    """A relative path would land wherever the remote shell starts."""
    with pytest.raises(ValueError, match="absolute path"):
        secret_file_command("node-token")


# -- commands --------------------------------------------------------------------------------


def test_a_command_runs_as_is_without_become() -> None:
    """No become: the command line is the command."""
    assert remote_command(Host("n", "n", "worker"), "cat /etc/os-release") == "cat /etc/os-release"


def test_become_runs_the_command_through_sudo_n_so_it_never_prompts() -> None:
    """become: ``sudo -n -- sh -c '<command>'``, the command one quoted word."""
    command = "echo 'it''s' && test -f /etc/rancher/k3s/k3s.yaml"
    line = remote_command(Host("n", "n", "worker", become=True), command)
    assert line.startswith("sudo -n -- sh -c ")
    assert shlex.split(line) == ["sudo", "-n", "--", "sh", "-c", command]


def test_a_failed_command_is_one_line_with_its_exit_code_and_last_error_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Exit status ≠ 0: SshError naming the host, the command, the status, stderr's end."""
    stderr = "warning: something\n[ERROR]  Failed to find systemd\n"
    fake = _FakeConnection(Result(stderr=stderr, exited=1, command="sh install.sh"))
    conns = _connections_with(monkeypatch, fake)
    with pytest.raises(SshError) as info:
        conns.run(Host("n1", "10.9.0.2", "worker", user="root", port=22), "sh install.sh")
    assert str(info.value) == (
        "host n1 (root@10.9.0.2:22): 'sh install.sh' exited with 1: [ERROR]  Failed to find systemd"
    )
    assert not isinstance(info.value, SudoRefused)


@pytest.mark.parametrize(
    ("stderr", "expected"),
    [
        ("sudo: a password is required\n", "needs a password for sudo"),
        (
            "sudo: a terminal is required to read the password; either use the -S option\n",
            "needs a password for sudo",
        ),
        (
            "alice is not in the sudoers file.  This incident will be reported.\n",
            "may not use sudo",
        ),
        ("Sorry, user alice may not run sudo on node-1.\n", "may not use sudo"),
        ("sh: 1: sudo: not found\n", "sudo is not installed"),
        ("bash: sudo: command not found\n", "sudo is not installed"),
    ],
)
def test_sudo_refusing_is_told_apart_from_the_command_failing(
    monkeypatch: pytest.MonkeyPatch, stderr: str, expected: str
) -> None:
    """With become, sudo's own refusals (the messages of sudo 1.9 and the shells) raise
    SudoRefused saying what to change; the same stderr without become does not."""
    fake = _FakeConnection(Result(stderr=stderr, exited=1))
    conns = _connections_with(monkeypatch, fake)
    host = Host("n1", "10.9.0.2", "worker", user="alice", become=True)
    with pytest.raises(SudoRefused) as info:
        conns.run(host, "true")
    assert expected in str(info.value)
    assert str(info.value).startswith("host n1 (alice@10.9.0.2): ")
    with pytest.raises(SshError) as plain:
        conns.run(Host("n1", "10.9.0.2", "worker", user="alice"), "true")
    assert not isinstance(plain.value, SudoRefused)
    assert sudo_refusal("cp: cannot stat 'k3s': No such file\n", host) is None


# -- connections -----------------------------------------------------------------------------


def test_connections_carry_each_hosts_address_user_port_key_and_timeouts(
    empty_ssh_config: Path, tmp_path: Path
) -> None:
    """Each host's fabric Connection: its address, user, port and key file, and the connect
    timeout on TCP, banner and authentication alike. Nothing is connected."""
    key = tmp_path / "id_test"
    hosts = [
        Host("c1", "10.9.0.1", "control", user="root", port=2222, key=key),
        Host("w1", "10.9.0.2", "worker"),
    ]
    with Connections(Inventory(hosts), connect_timeout=7, ssh_config=empty_ssh_config) as conns:
        c1, w1 = conns.connection(hosts[0]), conns.connection(hosts[1])
        assert (c1.host, c1.user, c1.port) == ("10.9.0.1", "root", 2222)
        assert c1.connect_kwargs["key_filename"] == [str(key)]
        assert c1.connect_timeout == 7
        assert c1.connect_kwargs["banner_timeout"] == c1.connect_kwargs["auth_timeout"] == 7
        assert (w1.host, w1.port) == ("10.9.0.2", 22)
        assert "key_filename" not in w1.connect_kwargs
        assert c1.gateway is None and not c1.is_connected
        assert conns.connection(hosts[0]) is c1


def test_every_host_goes_through_one_shared_gateway_connection(empty_ssh_config: Path) -> None:
    """gateway = "user@host:port": one fabric Connection to the jump host, the gateway of each."""
    hosts = _hosts("control", "worker")
    inventory = Inventory(hosts, gateway=Gateway("access.example.org", "jdoe", 2200))
    with Connections(inventory, ssh_config=empty_ssh_config) as conns:
        first, second = conns.connection(hosts[0]), conns.connection(hosts[1])
        gateway = conns.gateway()
        assert gateway is not None
        assert first.gateway is gateway and second.gateway is gateway
        assert (gateway.host, gateway.user, gateway.port) == ("access.example.org", "jdoe", 2200)


def test_an_ssh_config_file_maps_inventory_names_as_ssh_would(tmp_path: Path) -> None:
    """ssh_config's Host blocks give HostName, User, Port and IdentityFile, as for ssh."""
    config = tmp_path / "ssh_config"
    config.write_text("Host node-*\n  HostName 10.9.0.42\n  User debian\n  Port 2201\n")
    host = Host("node-1", "node-1", "worker")
    with Connections(Inventory([Host("c", "c", "control"), host]), ssh_config=config) as conns:
        conn = conns.connection(host)
        assert (conn.host, conn.user, conn.port) == ("10.9.0.42", "debian", 2201)


def test_an_unreachable_host_is_one_line_naming_it(empty_ssh_config: Path) -> None:
    """A port with no sshd on this machine: SshError naming the host, saying what to check."""
    host = Host("c1", "127.0.0.1", "control", user="root", port=_closed_port())
    conns = Connections(Inventory([host]), ssh_config=empty_ssh_config, connect_timeout=5)
    with conns, pytest.raises(SshError) as info:
        conns.run(host, "true")
    assert str(info.value) == (
        f"host c1 (root@127.0.0.1:{host.port}): connection refused by root@127.0.0.1:"
        f"{host.port}: is sshd running there, on that port?"
    )


def test_an_unreachable_gateway_fails_every_host_naming_the_gateway_once_tried(
    empty_ssh_config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each host's error names the gateway; the gateway is tried once, not once per host."""
    port = _closed_port()
    hosts = _hosts("control", "broker", "worker")
    inventory = Inventory(hosts, gateway=Gateway("127.0.0.1", "jdoe", port))
    opened = []
    import fabric

    real_open = fabric.Connection.open

    def counting_open(self: Any) -> Any:
        opened.append(self.host)
        return real_open(self)

    monkeypatch.setattr(fabric.Connection, "open", counting_open)
    conns = Connections(inventory, ssh_config=empty_ssh_config, connect_timeout=5)
    with conns, pytest.raises(HostsFailed) as info:
        run_all(hosts, conns.open, what="connect")
    lines = str(info.value).splitlines()
    assert lines[0] == "3 of 3 hosts failed to connect:"
    assert all(f"through gateway jdoe@127.0.0.1:{port}: connection refused" in x for x in lines[1:])
    assert opened == ["127.0.0.1"]


# -- the parallel runner -------------------------------------------------------------------


def test_run_all_works_on_every_host_at_once() -> None:
    """Each call waits for all the others to have started: only a parallel run can finish."""
    hosts = _hosts("control", "broker", "broker", "worker", "worker", "worker")
    barrier = threading.Barrier(len(hosts), timeout=10)

    def meet(host: Host) -> str:
        barrier.wait()
        return host.address

    assert run_all(hosts, meet) == {h.name: h.address for h in hosts}


def test_run_all_takes_the_time_of_the_slowest_host_not_the_sum() -> None:
    """Six hosts sleeping 0.3 s take well under 6 × 0.3 s."""
    hosts = _hosts("control", *["worker"] * 5)
    start = time.monotonic()
    run_all(hosts, lambda h: time.sleep(0.3))
    assert time.monotonic() - start < 1.2


def test_run_all_collects_every_failure_into_one_error_naming_each_host() -> None:
    """Failures do not stop the other hosts; one error lists each failed host with its
    one-line cause, and keeps the others' results (for undoing them)."""
    hosts = [
        Host("c1", "10.9.0.1", "control", user="root"),
        Host("b1", "10.9.0.2", "broker", port=2222),
        Host("w1", "10.9.0.3", "worker"),
    ]
    finished = []

    def step(host: Host) -> str:
        if host.name == "b1":
            raise paramiko.AuthenticationException("Authentication failed.")
        if host.name == "w1":
            raise RuntimeError("disk full\nsecond line")
        finished.append(host.name)
        return "done"

    with pytest.raises(HostsFailed) as info:
        run_all(hosts, step, what="install k3s")
    error = info.value
    assert isinstance(error, PlatformError)
    assert str(error).splitlines() == [
        "2 of 3 hosts failed to install k3s:",
        "  b1 (10.9.0.2:2222): authentication failed: 10.9.0.2:2222 refused the SSH user with "
        "the SSH agent's and ~/.ssh/id_* keys; check the key (ansible_ssh_private_key_file / "
        "key) and the user (ansible_user / user)",
        "  w1 (10.9.0.3): RuntimeError: disk full second line",
    ]
    assert error.results == {"c1": "done"}
    assert set(error.failures) == {"b1", "w1"}
    assert finished == ["c1"]


def test_run_all_on_no_host_does_nothing() -> None:
    """No hosts, no threads, no results."""
    assert run_all([], lambda h: 1 / 0) == {}


# -- causes --------------------------------------------------------------------------------


HOST = Host("n1", "10.9.0.7", "worker", user="debian", port=22, key=Path("/keys/id_n1"))


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (
            paramiko.AuthenticationException("Authentication failed."),
            "authentication failed: debian@10.9.0.7:22 refused user 'debian' with key "
            "/keys/id_n1; check the key (ansible_ssh_private_key_file / key) and the user "
            "(ansible_user / user)",
        ),
        (
            paramiko.PasswordRequiredException("Private key file is encrypted"),
            "the private key /keys/id_n1 is encrypted: add it to ssh-agent and leave the key "
            "unset, or use a key without a passphrase",
        ),
        (
            paramiko.ssh_exception.NoValidConnectionsError(
                {("10.9.0.7", 22): ConnectionRefusedError(111, "Connection refused")}
            ),
            "connection refused by debian@10.9.0.7:22: is sshd running there, on that port?",
        ),
        (
            TimeoutError("timed out"),
            "no answer from debian@10.9.0.7:22 within 10s: is the host up and its SSH port "
            "reachable?",
        ),
        (
            socket.gaierror(-2, "Name or service not known"),
            "cannot resolve 10.9.0.7: Name or service not known",
        ),
        (
            paramiko.ChannelException(2, "Connect failed"),
            "the gateway could not open a connection to debian@10.9.0.7:22: Connect failed",
        ),
        (
            paramiko.SSHException("Error reading SSH protocol banner"),
            "SSH error with debian@10.9.0.7:22: Error reading SSH protocol banner",
        ),
        (
            UnexpectedExit(Result(command="k3s --version", stderr="boom\n", exited=2)),
            "'k3s --version' exited with 2: boom",
        ),
        (
            CommandTimedOut(Result(command="sleep 99"), timeout=5),
            "the command did not finish within 5s: sleep 99",
        ),
        (
            OSError(113, "No route to host"),
            "cannot connect to debian@10.9.0.7:22: No route to host",
        ),
    ],
)
def test_each_ssh_failure_has_a_one_line_cause_saying_what_to_check(
    exc: BaseException, expected: str
) -> None:
    """Unreachable host, wrong key, timeouts, a failing command: one line each."""
    assert cause_of(exc, HOST, connect_timeout=10) == expected


def test_a_changed_host_key_says_how_to_forget_the_old_one() -> None:
    """BadHostKeyException: the host was probably reinstalled; ssh-keygen -R fixes it, with
    the [host]:port form known_hosts uses for another port."""
    exc = paramiko.BadHostKeyException("10.9.0.7", got_key=None, expected_key=None)
    assert cause_of(exc, HOST).endswith("remove the old one with: ssh-keygen -R 10.9.0.7")
    other_port = Host("n1", "10.9.0.7", "worker", port=2222)
    assert cause_of(exc, other_port).endswith("ssh-keygen -R '[10.9.0.7]:2222'")


def test_an_unknown_host_key_under_strict_checking_says_how_to_add_it() -> None:
    """StrictHostKeyChecking yes and no known key: one line saying how to add it."""
    exc = paramiko.SSHException("Server '[10.9.0.7]:22' not found in known_hosts")
    assert cause_of(exc, HOST) == (
        "its host key is not in known_hosts and the SSH config says StrictHostKeyChecking "
        "yes; add it (ssh-keyscan) or connect once with ssh"
    )


# -- host keys -------------------------------------------------------------------------------


def test_host_keys_are_read_from_the_known_hosts_files_ssh_would_read(tmp_path: Path) -> None:
    """fabric checks no host key; each connection is given the keys of the SSH config's
    UserKnownHostsFile (else ~/.ssh/known_hosts), so a changed key is refused. Unknown keys
    are accepted and not written back."""
    key = paramiko.ECDSAKey.generate()
    known = tmp_path / "known_hosts"
    known.write_text(f"[10.9.0.1]:2222 {key.get_name()} {key.get_base64()}\n")
    config = tmp_path / "ssh_config"
    config.write_text(f"Host *\n  UserKnownHostsFile {known}\n")
    host = Host("c1", "10.9.0.1", "control", port=2222)
    with Connections(Inventory([host]), ssh_config=config) as conns:
        client = conns.connection(host).client
        assert client.get_host_keys().lookup("[10.9.0.1]:2222")[key.get_name()] == key
        assert isinstance(client._policy, paramiko.AutoAddPolicy)
        assert client._host_keys_filename is None  # nothing is saved into the user's file


def test_strict_host_key_checking_yes_refuses_unknown_hosts(tmp_path: Path) -> None:
    """StrictHostKeyChecking yes in the SSH config: a host not in known_hosts is refused."""
    config = tmp_path / "ssh_config"
    config.write_text(
        f"Host *\n  UserKnownHostsFile {tmp_path}/none\n  StrictHostKeyChecking yes\n"
    )
    host = Host("c1", "10.9.0.1", "control")
    with Connections(Inventory([host]), ssh_config=config) as conns:
        assert isinstance(conns.connection(host).client._policy, paramiko.RejectPolicy)


def test_known_hosts_files_default_as_for_ssh() -> None:
    """No setting: the user's ~/.ssh/known_hosts and the system's file; "none" reads none."""
    assert known_hosts_files({}) == [
        Path("~/.ssh/known_hosts").expanduser(),
        Path("/etc/ssh/ssh_known_hosts"),
    ]
    assert known_hosts_files(
        {"userknownhostsfile": "/a/kh ~/b", "globalknownhostsfile": "none"}
    ) == [Path("/a/kh"), Path("~/b").expanduser()]
