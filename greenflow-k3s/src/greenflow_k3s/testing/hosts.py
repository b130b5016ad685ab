"""SSH test hosts: N "machines" on this one, each a network namespace running a real sshd,
from a GreenFlow checkout's ``scripts/ssh-hosts`` (root, Linux; about a second).

Host ``gfhN`` has its own address (``10.77.0.N+1``, reached from here on the bridge
``gfhbr0``), hostname, and private mounts over the paths k3s installs into
(:data:`PRIVATE_DIRS`), so each has its own install state. Every host accepts the test key
for ``root``, for :data:`SUDO_USER` (passwordless sudo) and for :data:`NOSUDO_USER` (whom
sudo refuses). The hosts share this machine's kernel, processes and every other path:
``scripts/ssh-hosts/up`` says exactly what is and is not simulated, and
docs/k3s-testing.md ("Test hosts") what tests on them prove.

- :func:`ssh_hosts`: a context manager that brings up ``n`` hosts and removes them after.
- :func:`ssh_host_pool`: a session fixture (:class:`HostPool`) for a test suite; bring it
  in from a ``conftest.py``:
  ``from greenflow_k3s.testing.hosts import ssh_host_pool  # noqa: F401``.

One set of hosts exists per machine (the names are fixed): a session holds a machine-wide
lock while its hosts are up, and another session waits for it. A machine that cannot have
the hosts (not root, no network namespaces, sshd not installed) skips the test with the
reason; any other failure of ``up`` fails it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path, PurePosixPath

import attrs
import pytest  # a helper for pytest fixtures only

#: The users of every host, each logging in with the test key only.
ROOT_USER = "root"
#: May run anything as root through sudo, without a password (``become``).
SUDO_USER = "gfuser"
#: Has no sudo rights: ``sudo -n`` answers "a password is required".
NOSUDO_USER = "gfnosudo"
#: The paths each host has for its own (as ``PRIVATE_DIRS`` in ``scripts/ssh-hosts/lib.sh``).
PRIVATE_DIRS = (
    "/etc/ssh",
    "/etc/rancher",
    "/var/lib/rancher",
    "/var/lib/kubelet",
    "/usr/local/bin",
    "/var/log",
    "/home",
    "/tmp",
)

#: ``up`` exits with this (automake's "skipped") when the machine cannot have the hosts.
_CANNOT_RUN_HERE = 77
_LOCK = Path("/run/greenflow-ssh-hosts/lock")
_LOCK_WAIT_S = 600.0
_UP_TIMEOUT_S = 120.0
_DOWN_TIMEOUT_S = 60.0


@attrs.frozen
class SshHost:
    """One test host: where to connect, as whom, with which key, and where its files are."""

    name: str
    address: str
    port: int
    user: str
    key: Path
    #: This machine's directory behind the host's private mounts (see :meth:`private`).
    fs: Path

    def as_user(self, user: str) -> SshHost:
        """The same host, logged into as ``user`` (:data:`SUDO_USER`, :data:`NOSUDO_USER`)."""
        return attrs.evolve(self, user=user)

    def private(self, path: str) -> Path:
        """This machine's path of what the host sees at ``path`` (absolute, under one of
        :data:`PRIVATE_DIRS`): ``host.private("/usr/local/bin/k3s")``."""
        inside = PurePosixPath(path)
        if not any(inside.is_relative_to(d) for d in PRIVATE_DIRS):
            msg = f"{path!r} is not under a private path of the test hosts {PRIVATE_DIRS}"
            raise ValueError(msg)
        return self.fs / inside.relative_to("/")


@attrs.frozen
class SshHosts:
    """The hosts that are up, in order ``gfh0``, ``gfh1``, ...

    ``ssh_config`` is an OpenSSH client config mapping the names to the addresses (user
    root, the key, ``known_hosts`` with each host's own host key):
    ``ssh -F {ssh_config} gfh1 hostname``.
    """

    hosts: tuple[SshHost, ...]
    ssh_config: Path
    known_hosts: Path
    key: Path
    state: Path

    def __iter__(self) -> Iterator[SshHost]:
        return iter(self.hosts)

    def __len__(self) -> int:
        return len(self.hosts)

    def __getitem__(self, index: int) -> SshHost:
        return self.hosts[index]

    def pids(self) -> dict[str, int]:
        """Each host's sshd process id, by host name."""
        return {h.name: int((self.state / h.name / "pid").read_text()) for h in self.hosts}


def find_scripts() -> Path | None:
    """The ``scripts/ssh-hosts`` of the checkout this module is imported from, if any."""
    for parent in Path(__file__).resolve().parents:
        candidate = parent / "scripts" / "ssh-hosts"
        if (candidate / "up").is_file():
            return candidate
    return None


def _skip_reason(scripts: Path | None) -> str | None:
    if scripts is None:
        return "no scripts/ssh-hosts: the SSH test hosts need a GreenFlow checkout"
    if not sys.platform.startswith("linux"):
        return "the SSH test hosts need Linux (network and mount namespaces)"
    if os.geteuid() != 0:
        return "the SSH test hosts need root (network namespaces, a bridge, mounts)"
    if shutil.which("ip") is None:
        return "no `ip` command (iproute2) for the SSH test hosts: bash scripts/setup-system"
    probe = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        return f"`ip netns` does not work here: {probe.stderr.strip()}"
    return None


_held = False  # whether this process has the hosts up (a second set would wait for itself)


@contextlib.contextmanager
def _machine_lock() -> Iterator[None]:
    global _held
    if _held:
        pytest.fail("this process already has the SSH test hosts up: one set at a time")
    _LOCK.parent.mkdir(parents=True, exist_ok=True)
    with _LOCK.open("a+") as f:
        deadline = time.monotonic() + _LOCK_WAIT_S
        while True:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    f.seek(0)
                    holder = f.read().strip() or "unknown"
                    pytest.fail(
                        f"the SSH test hosts stayed in use for {_LOCK_WAIT_S:.0f} s "
                        f"({_LOCK} is held by {holder})"
                    )
                time.sleep(0.2)
        f.truncate(0)
        f.write(f"pid {os.getpid()} (pytest, greenflow_k3s.testing.hosts)\n")
        f.flush()
        _held = True
        try:
            yield
        finally:
            _held = False
            fcntl.flock(f, fcntl.LOCK_UN)


def _script(
    scripts: Path, name: str, args: list[str], env: Mapping[str, str], timeout_s: float
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(scripts / name), *args],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


def _read_hosts(ssh_config: Path) -> SshHosts:
    state = ssh_config.parent
    key = state / "id_ed25519"
    lines = (state / "hosts.tsv").read_text().splitlines()[1:]
    hosts = tuple(
        SshHost(name, address, int(port), ROOT_USER, key, state / name / "fs")
        for name, address, port in (line.split("\t") for line in lines)
    )
    return SshHosts(hosts, ssh_config, state / "known_hosts", key, state)


@contextlib.contextmanager
def ssh_hosts(
    n: int, state: Path | None = None, *, scripts: Path | None = None
) -> Iterator[SshHosts]:
    """Bring up ``n`` fresh test hosts (``scripts/ssh-hosts/up n``), yield them, and remove
    them (``down``: processes, namespaces, bridge, state) on exit, even after a failure.

    ``state`` is the directory for keys, configs and the hosts' private files (default
    ``~/.cache/greenflow/ssh-hosts/state``); ``scripts`` defaults to :func:`find_scripts`.
    Holds the machine-wide lock meanwhile, waiting up to 10 min for another session's.
    """
    scripts = scripts or find_scripts()
    reason = _skip_reason(scripts)
    if reason is not None:
        pytest.skip(reason)
    assert scripts is not None  # _skip_reason said so
    env = {**os.environ, "SSH_HOSTS_LOCK_HELD": "1"}
    if state is not None:
        env["SSH_HOSTS_STATE"] = str(state)
    with _machine_lock():
        try:
            up = _script(scripts, "up", [str(n)], env, _UP_TIMEOUT_S)
            tail = "\n".join(up.stderr.splitlines()[-25:])
            if up.returncode == _CANNOT_RUN_HERE:
                pytest.skip(f"scripts/ssh-hosts/up: {tail}")
            if up.returncode != 0:
                pytest.fail(f"scripts/ssh-hosts/up {n} failed (exit {up.returncode}):\n{tail}")
            yield _read_hosts(Path(up.stdout.strip().splitlines()[-1]))
        finally:
            down = _script(scripts, "down", [], env, _DOWN_TIMEOUT_S)
            if down.returncode != 0:
                print(f"scripts/ssh-hosts/down: exit {down.returncode}\n{down.stderr[-2000:]}")


class HostPool:
    """The test hosts of one test session.

    :meth:`get` returns at least ``n`` hosts: the set that is up when it is large enough
    (with whatever earlier tests left on it), else, or with ``fresh=True``, a new set of
    ``n`` (0.3 s for 3; the previous set is removed first, so a test must not keep hosts
    from an earlier :meth:`get`). :meth:`down` removes them now; the fixture removes them
    at the end of the session.
    """

    def __init__(self, state: Path, scripts: Path | None = None) -> None:
        self._state = state
        self._scripts = scripts
        self._stack = contextlib.ExitStack()
        self._hosts: SshHosts | None = None

    def get(self, n: int, *, fresh: bool = False) -> SshHosts:
        if not fresh and self._hosts is not None and len(self._hosts) >= n:
            return self._hosts
        self.down()
        self._hosts = self._stack.enter_context(ssh_hosts(n, self._state, scripts=self._scripts))
        return self._hosts

    def down(self) -> None:
        self._hosts = None
        self._stack.close()


@pytest.fixture(scope="session")
def ssh_host_pool(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostPool]:
    """The session's SSH test hosts: ``hosts = ssh_host_pool.get(3)``."""
    pool = HostPool(tmp_path_factory.mktemp("ssh-hosts") / "state")
    try:
        yield pool
    finally:
        pool.down()
