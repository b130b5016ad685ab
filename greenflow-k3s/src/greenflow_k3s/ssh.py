"""SSH to the hosts of an inventory, with fabric: one connection per host (its user, port
and key, through the gateway when there is one), privileged commands through ``sudo -n``,
a function run on every host at once, and secrets handed over on stdin, never on a command
line. fabric and paramiko are imported when a connection is made."""

from __future__ import annotations

import io
import posixpath
import re
import shlex
import socket
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

import structlog

from greenflow.errors import PlatformError
from greenflow_k3s.inventory import Gateway, Host, Inventory

if TYPE_CHECKING:
    from fabric import Config, Connection
    from invoke.runners import Result

log = structlog.get_logger("greenflow.k3s")

T = TypeVar("T")

#: Deadline of each connection (TCP, the SSH banner, authentication), in seconds.
CONNECT_TIMEOUT_S = 10.0
#: At most this many hosts are worked on at once; enough for any cluster GreenFlow installs,
#: and a bound on threads and open connections.
MAX_PARALLEL = 64

# sudo's own messages when it will not run a command (sudo -n never prompts).
_SUDO_PASSWORD = re.compile(r"^sudo: (a password is required|a terminal is required)", re.M)
_SUDO_DENIED = re.compile(
    r"is not in the sudoers file|^Sorry, user \S+ (may not run sudo|is not allowed to)", re.M
)
_SUDO_MISSING = re.compile(r"\bsudo: (command )?not found")


class Secret:
    """A value that is never shown: ``str()`` and ``repr()`` print ``Secret('***')``.

    Only :meth:`reveal` gives the value, to what sends it to a host on stdin
    (:meth:`Connections.run` with ``stdin``, :meth:`Connections.write_secret`)."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str) or not value:
            raise ValueError("a secret is a non-empty string")
        self._value = value

    def reveal(self) -> str:
        return self._value

    def appears_in(self, text: str) -> bool:
        """Whether ``text`` contains the value (a command line must not)."""
        return self._value in text

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__


class SshError(PlatformError):
    """One host could not be reached or refused a command; names the host and the cause."""

    def __init__(self, host: Host, cause: str) -> None:
        self.host = host
        self.cause = cause
        super().__init__(f"host {host.name} ({host.target}): {cause}")


class SudoRefused(SshError):
    """sudo would not run a command without a password (or at all) for the host's user."""


class HostsFailed(PlatformError):
    """Some hosts failed in :func:`run_all`: ``failures`` maps each one's name to its
    exception, ``results`` the others' to what they returned (so a caller can undo them)."""

    def __init__(
        self,
        hosts: Sequence[Host],
        failures: Mapping[str, BaseException],
        results: Mapping[str, Any],
        what: str = "",
    ) -> None:
        self.failures = dict(failures)
        self.results = dict(results)
        by_name = {h.name: h for h in hosts}
        lines = [
            f"{len(failures)} of {len(hosts)} hosts failed{' to ' + what if what else ''}:",
            *(
                f"  {name} ({by_name[name].target}): {cause_of(exc, by_name[name])}"
                for name, exc in failures.items()
            ),
        ]
        super().__init__("\n".join(lines))


def _one_line(text: str) -> str:
    return " ".join(str(text).split()) or "no message"


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def cause_of(
    exc: BaseException, host: Host | None = None, *, connect_timeout: float | None = None
) -> str:
    """One line saying why an SSH step with ``host`` failed, and what to do about it."""
    import paramiko
    from invoke.exceptions import CommandTimedOut, UnexpectedExit

    target = host.target if host else "the host"
    if isinstance(exc, SshError):
        return exc.cause
    if isinstance(exc, paramiko.PasswordRequiredException):
        return (
            f"the private key {host.key if host else ''} is encrypted: add it to ssh-agent "
            "and leave the key unset, or use a key without a passphrase"
        )
    if isinstance(exc, paramiko.AuthenticationException):
        user = f"user {host.user!r}" if host and host.user else "the SSH user"
        key = f"key {host.key}" if host and host.key else "the SSH agent's and ~/.ssh/id_* keys"
        return (
            f"authentication failed: {target} refused {user} with {key}; check the key "
            "(ansible_ssh_private_key_file / key) and the user (ansible_user / user)"
        )
    if isinstance(exc, paramiko.BadHostKeyException):
        name = exc.hostname
        if host is not None and host.port not in (None, 22):
            name = f"'[{name}]:{host.port}'"  # how known_hosts writes a host on another port
        return (
            f"its host key does not match the one in known_hosts (a reinstalled host?); if "
            f"expected, remove the old one with: ssh-keygen -R {name}"
        )
    if isinstance(exc, paramiko.SSHException) and "not found in known_hosts" in str(exc):
        return (
            "its host key is not in known_hosts and the SSH config says StrictHostKeyChecking "
            "yes; add it (ssh-keyscan) or connect once with ssh"
        )
    if isinstance(exc, paramiko.ChannelException):
        return f"the gateway could not open a connection to {target}: {exc.text}"
    if isinstance(exc, paramiko.ssh_exception.NoValidConnectionsError):
        errors = list(exc.errors.values())
        if errors and all(isinstance(e, ConnectionRefusedError) for e in errors):
            return f"connection refused by {target}: is sshd running there, on that port?"
        return f"cannot connect to {target}: {_one_line(str(exc))}"
    if isinstance(exc, ConnectionRefusedError):
        return f"connection refused by {target}: is sshd running there, on that port?"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve {host.address if host else 'the host'}: {exc.strerror}"
    if isinstance(exc, CommandTimedOut):
        return f"the command did not finish within {exc.timeout}s: {_one_line(exc.result.command)}"
    if isinstance(exc, UnexpectedExit):
        return exit_cause(exc.result.command, exc.result.exited, exc.result.stderr)
    if isinstance(exc, TimeoutError):
        within = f" within {connect_timeout:g}s" if connect_timeout else ""
        return f"no answer from {target}{within}: is the host up and its SSH port reachable?"
    if isinstance(exc, paramiko.SSHException):
        return f"SSH error with {target}: {_one_line(str(exc))}"
    if isinstance(exc, OSError) and exc.strerror:
        return f"cannot connect to {target}: {exc.strerror}"
    return f"{type(exc).__name__}: {_one_line(str(exc))}"


def exit_cause(command: str, exited: int, stderr: str) -> str:
    """One line for a command that exited with ``exited``: its last line of stderr."""
    last = _last_line(stderr)
    return f"{_one_line(command)!r} exited with {exited}" + (f": {last}" if last else "")


def sudo_refusal(stderr: str, host: Host) -> str | None:
    """Why sudo refused to run a command, from its stderr, or None if it did not refuse."""
    user = f"user {host.user!r}" if host.user else "the SSH user"
    if _SUDO_PASSWORD.search(stderr):
        return (
            f"sudo refused: {user} needs a password for sudo (GreenFlow runs sudo -n, never "
            "a prompt); give it passwordless sudo (NOPASSWD) or connect as root"
        )
    if _SUDO_DENIED.search(stderr):
        return f"sudo refused: {user} may not use sudo on this host; allow it or connect as root"
    if _SUDO_MISSING.search(stderr):
        return "sudo is not installed on this host; install it or connect as root"
    return None


def remote_command(host: Host, command: str) -> str:
    """``command`` as it runs on ``host``: in ``sudo -n`` (no password prompt, ever: there is
    no one to answer it) when the host has ``become``."""
    if not host.become:
        return command
    return f"sudo -n -- sh -c {shlex.quote(command)}"


def secret_file_command(path: str) -> str:
    """A shell command writing its stdin to the file ``path``, readable by its owner only
    from the first byte: written to a ``mktemp`` file (mode 0600) beside it, then renamed
    over it; its directory created 0700 when missing. A file uploaded over SFTP would
    instead exist with the server's default mode until a chmod."""
    if not posixpath.isabs(path) or "\n" in path:
        raise ValueError(f"expected an absolute path on the host, got {path!r}")
    target = shlex.quote(path)
    directory = shlex.quote(posixpath.dirname(path))
    return (
        f"umask 077 && mkdir -p {directory} && tmp=$(mktemp {target}.XXXXXX) && "
        f'{{ cat > "$tmp" && mv -f "$tmp" {target} || {{ rm -f "$tmp"; exit 1; }}; }}'
    )


def known_hosts_files(ssh_config: Mapping[str, Any]) -> list[Path]:
    """The known_hosts files ssh would read for a host, given its SSH config entries:
    ``UserKnownHostsFile`` (default ``~/.ssh/known_hosts``) and ``GlobalKnownHostsFile``
    (default ``/etc/ssh/ssh_known_hosts``)."""
    user = str(ssh_config.get("userknownhostsfile") or "~/.ssh/known_hosts")
    system = str(ssh_config.get("globalknownhostsfile") or "/etc/ssh/ssh_known_hosts")
    return [Path(p).expanduser() for p in (*user.split(), *system.split()) if p != "none"]


def check_host_keys(conn: Connection) -> None:
    """Make ``conn`` check the host's key as ssh would (fabric checks none): a key that
    differs from the one in known_hosts is refused (paramiko's BadHostKeyException); an
    unknown one is accepted for this connection, not saved, unless the SSH config says
    ``StrictHostKeyChecking yes``."""
    import paramiko

    keys = conn.client.get_host_keys()
    for path in known_hosts_files(conn.ssh_config):
        if path.is_file():
            # HostKeys.load, not SSHClient.load_host_keys: the latter would also make
            # paramiko write every new host key into the user's file.
            keys.load(str(path))
    if str(conn.ssh_config.get("stricthostkeychecking", "")).lower() == "yes":
        conn.client.set_missing_host_key_policy(paramiko.RejectPolicy())


def run_all(hosts: Sequence[Host], fn: Callable[[Host], T], *, what: str = "") -> dict[str, T]:
    """``fn(host)`` on every host at once (a thread each), after all have ended: host name
    → what ``fn`` returned. When any raised, raises :class:`HostsFailed` naming each failed
    host with its one-line cause (``what``, e.g. ``"install k3s"``, says what failed)."""
    if not hosts:
        return {}
    results: dict[str, T] = {}
    failures: dict[str, BaseException] = {}
    workers = min(len(hosts), MAX_PARALLEL)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="greenflow-ssh") as pool:
        futures = [(host, pool.submit(fn, host)) for host in hosts]
        for host, future in futures:
            try:
                results[host.name] = future.result()
            except Exception as exc:
                failures[host.name] = exc
    if failures:
        log.debug("ssh.hosts_failed", failed=sorted(failures), of=len(hosts), what=what)
        raise HostsFailed(hosts, failures, results, what)
    return results


class Connections:
    """fabric connections to an inventory's hosts, made when first used (in the thread
    that uses them) and closed together; thread-safe, so :func:`run_all` may share it.

    ``ssh_config`` is an OpenSSH client config read instead of ``~/.ssh/config`` and
    ``/etc/ssh/ssh_config`` (host aliases, ``ProxyJump``, ``IdentityFile`` apply as with
    ``ssh``)."""

    def __init__(
        self,
        inventory: Inventory,
        *,
        connect_timeout: float = CONNECT_TIMEOUT_S,
        ssh_config: Path | None = None,
    ) -> None:
        self.inventory = inventory
        self.connect_timeout = connect_timeout
        self.ssh_config = ssh_config
        self._lock = threading.Lock()
        self._config: Config | None = None
        self._gateway: Connection | None = None
        #: Why the gateway could not be opened: every host is told at once, not after one
        #: more connect timeout each.
        self._gateway_failure: str | None = None
        self._connections: dict[str, Connection] = {}

    def __enter__(self) -> Connections:
        return self

    def __exit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.close()

    def _fabric_config(self) -> Config:
        if self._config is None:
            from fabric import Config

            if self.ssh_config is not None:
                self._config = Config(runtime_ssh_path=str(self.ssh_config))
            else:
                self._config = Config()
        return self._config

    def _connect_kwargs(self, key: Path | None) -> dict[str, Any]:
        # The banner and authentication waits have deadlines too: a host that accepts TCP
        # and then says nothing must not hang an install.
        kwargs: dict[str, Any] = {
            "banner_timeout": self.connect_timeout,
            "auth_timeout": self.connect_timeout,
        }
        if key is not None:
            kwargs["key_filename"] = [str(key)]
        return kwargs

    def gateway(self) -> Connection | None:
        """The jump host's connection (not opened), or None without a gateway."""
        gateway = self.inventory.gateway
        if gateway is None:
            return None
        with self._lock:
            if self._gateway is None:
                self._gateway = self._new_gateway(gateway)
            return self._gateway

    def _new_gateway(self, gateway: Gateway) -> Connection:
        from fabric import Connection

        conn = Connection(
            gateway.host,
            user=gateway.user,
            port=gateway.port,
            config=self._fabric_config(),
            connect_timeout=self.connect_timeout,
            connect_kwargs=self._connect_kwargs(None),
        )
        check_host_keys(conn)
        return conn

    def connection(self, host: Host) -> Connection:
        """``host``'s connection (not opened): its address, user, port and key, the
        gateway, the connect timeout."""
        gateway = self.gateway()
        with self._lock:
            conn = self._connections.get(host.name)
            if conn is None:
                from fabric import Connection

                conn = Connection(
                    host.address,
                    user=host.user,
                    port=host.port,
                    config=self._fabric_config(),
                    gateway=gateway,
                    connect_timeout=self.connect_timeout,
                    connect_kwargs=self._connect_kwargs(host.key),
                )
                check_host_keys(conn)
                self._connections[host.name] = conn
            return conn

    def open(self, host: Host) -> Connection:
        """``host``'s connection, opened; raises :class:`SshError` saying why it cannot be."""
        conn = self.connection(host)
        if conn.is_connected:
            return conn
        gateway = self.inventory.gateway
        if gateway is not None:
            # Opened once, under the lock: every host's connection is a channel through it,
            # and fabric would otherwise open it from several threads at once.
            with self._lock:
                gw = self._gateway
                if self._gateway_failure is None and gw is not None and not gw.is_connected:
                    try:
                        gw.open()
                    except Exception as exc:
                        gw_host = Host(
                            "gateway", gateway.host, "worker", gateway.user, gateway.port
                        )
                        cause = cause_of(exc, gw_host, connect_timeout=self.connect_timeout)
                        self._gateway_failure = f"through gateway {gateway}: {cause}"
                if self._gateway_failure is not None:
                    raise SshError(host, self._gateway_failure)
        try:
            conn.open()
        except Exception as exc:
            raise SshError(host, cause_of(exc, host, connect_timeout=self.connect_timeout)) from exc
        log.debug("ssh.connected", host=host.name, target=host.target)
        return conn

    def run(
        self, host: Host, command: str, *, stdin: Secret | None = None, timeout: float | None = None
    ) -> Result:
        """Run ``command`` on ``host`` (through ``sudo -n`` with ``become``), its output
        captured, not shown; ``stdin`` is sent to the command's standard input (a
        :class:`Secret` is sent there and nowhere else: a command line carrying it is
        refused, since process lists and logs show command lines).

        Raises :class:`SudoRefused` when sudo will not run it, else :class:`SshError` when
        the host cannot be reached or the command fails or outlasts ``timeout`` seconds."""
        line = remote_command(host, command)
        if stdin is not None and stdin.appears_in(line):
            raise ValueError("refusing to run a command line that contains a secret")
        conn = self.open(host)
        log.debug("ssh.run", host=host.name, command=line)
        try:
            result: Result = conn.run(
                line,
                hide=True,
                echo=False,
                warn=True,
                pty=False,
                # Without stdin, none is read from this process: CI has none, and nothing
                # may wait for an answer from a user.
                in_stream=io.StringIO(stdin.reveal()) if stdin is not None else False,
                timeout=timeout,
            )
        except Exception as exc:
            raise SshError(host, cause_of(exc, host, connect_timeout=self.connect_timeout)) from exc
        if result.exited != 0:
            refusal = sudo_refusal(result.stderr, host) if host.become else None
            if refusal is not None:
                raise SudoRefused(host, refusal)
            raise SshError(host, exit_cause(command, result.exited, result.stderr))
        return result

    def write_secret(self, host: Host, path: str, secret: Secret) -> None:
        """Write ``secret`` to the file ``path`` on ``host``, mode 0600 from its first byte,
        through the command's stdin (:func:`secret_file_command`)."""
        self.run(host, secret_file_command(path), stdin=secret)
        log.debug("ssh.secret_written", host=host.name, path=path)

    def close(self) -> None:
        """Close every connection, then the gateway's."""
        with self._lock:
            connections, self._connections = list(self._connections.values()), {}
            gateway, self._gateway = self._gateway, None
            self._gateway_failure = None
        for conn in connections:
            conn.close()
        if gateway is not None:
            gateway.close()
