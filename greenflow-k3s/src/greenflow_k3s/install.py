"""Installing k3s on an inventory's hosts over SSH, and removing it, through k3s' own install
script and its contract (docs.k3s.io, "Installation"; docs/k3s.md, "How k3s is installed").

The server goes on the control host first; its join token is read into a :class:`Secret`
and written to each agent host as a 0600 file the install script reads
(``K3S_TOKEN_FILE``), so it is never on a command line, in a log or in the store; then the
agents install on every other host at once. Labels and taints are given at registration
(``--node-label``, ``--node-taint``: k3s applies them only then). A host whose recorded
install (version and flags) matches is not reinstalled. The kubeconfig is fetched from the
server, its address rewritten to the control host's, and kept 0600.

What runs on a host is rendered by pure functions (:func:`server_flags`,
:func:`install_env`, :func:`install_command`), tested without a host; :class:`Installer`
runs them over :class:`~greenflow_k3s.ssh.Connections`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import structlog

from greenflow.api import wait_until
from greenflow.errors import PlatformError, ReadinessTimeout
from greenflow_k3s.config import K3sConfig
from greenflow_k3s.inventory import Host, Inventory, node_taints, registration_labels
from greenflow_k3s.ssh import Connections, Secret, SshError, run_all

log = structlog.get_logger("greenflow.k3s")

# -- k3s' contract: where its install script and binary put things ---------------------------

#: ``INSTALL_K3S_BIN_DIR``'s default: the binary and the uninstall scripts.
BIN_DIR = "/usr/local/bin"
#: The token agents join with, written by the server.
TOKEN_PATH = "/var/lib/rancher/k3s/server/node-token"
#: The admin kubeconfig the server writes (``server: https://127.0.0.1:6443``).
KUBECONFIG_PATH = "/etc/rancher/k3s/k3s.yaml"
#: Where the air-gap images archive goes: k3s imports what it finds there at start.
AIRGAP_IMAGES_DIR = "/var/lib/rancher/k3s/agent/images"
#: The API server's port.
API_PORT = 6443
SERVER_UNINSTALL = f"{BIN_DIR}/k3s-uninstall.sh"
AGENT_UNINSTALL = f"{BIN_DIR}/k3s-agent-uninstall.sh"

#: GreenFlow's own files on a host: the install script, the join token, what was installed.
STATE_DIR = "/var/lib/rancher/greenflow-k3s"
SCRIPT_PATH = f"{STATE_DIR}/install.sh"
AGENT_TOKEN_PATH = f"{STATE_DIR}/token"
#: The fingerprint of the install on this host (version, flags, role): the idempotence key.
INSTALLED_PATH = f"{STATE_DIR}/installed"

#: Deadline of one host's install (the script downloads the release on a host with internet).
INSTALL_TIMEOUT_S = 600.0
#: Deadline of one uninstall script.
UNINSTALL_TIMEOUT_S = 300.0

_LOCAL_SERVER = re.compile(r"(server:\s*https://)(127\.0\.0\.1|localhost|\[::1\])(:\d+)")


# -- what runs on a host ---------------------------------------------------------------------


def _flag_values(flag: str, values: Mapping[str, str] | Sequence[str]) -> list[str]:
    if isinstance(values, Mapping):
        return [f"--{flag}={k}={v}" for k, v in values.items()]
    return [f"--{flag}={v}" for v in values]


def server_flags(host: Host, config: K3sConfig) -> list[str]:
    """``INSTALL_K3S_EXEC`` of the control host: ``server``, its node name and IP, its
    labels and taints, the disabled components, the address the API certificate must name
    (the kubeconfig is rewritten to it), then the plan's ``server_args``."""
    flags = ["server", f"--node-name={host.name}"]
    if host.node_ip:
        flags.append(f"--node-ip={host.node_ip}")
    flags += _flag_values("node-label", registration_labels(host))
    flags += _flag_values("node-taint", node_taints(host, config.taints))
    flags += _flag_values("disable", config.disable)
    flags += _flag_values("tls-san", list(dict.fromkeys(api_addresses(host))))
    return [*flags, *config.server_args]


def agent_flags(host: Host, config: K3sConfig) -> list[str]:
    """``INSTALL_K3S_EXEC`` of a broker or worker host: ``agent``, its node name and IP, the
    labels and taints of its role, then the plan's ``agent_args``."""
    flags = ["agent", f"--node-name={host.name}"]
    if host.node_ip:
        flags.append(f"--node-ip={host.node_ip}")
    flags += _flag_values("node-label", registration_labels(host))
    flags += _flag_values("node-taint", node_taints(host, config.taints))
    return [*flags, *config.agent_args]


def api_addresses(host: Host) -> list[str]:
    """Where the control host's API answers others: its node IP, then its SSH address."""
    return [a for a in (host.node_ip, host.address) if a]


def server_url(control: Host) -> str:
    """``K3S_URL`` for the agents: the control host's API."""
    address = api_addresses(control)[0]
    return f"https://{f'[{address}]' if ':' in address else address}:{API_PORT}"


def install_env(
    config: K3sConfig, flags: Sequence[str], *, join: str | None = None
) -> dict[str, str]:
    """The install script's environment: the pinned version, the flags, the air-gapped
    route when a binary is uploaded, and for an agent (``join`` = the server's URL) where
    its token file is. Never the token itself."""
    for flag in flags:
        if any(c.isspace() for c in flag):
            # The script splits INSTALL_K3S_EXEC on white space.
            msg = f"k3s flag {flag!r} contains white space, which k3s' install script splits on"
            raise PlatformError(msg)
    env = {"INSTALL_K3S_VERSION": config.k3s_version, "INSTALL_K3S_EXEC": " ".join(flags)}
    if config.k3s_binary is not None:
        env["INSTALL_K3S_SKIP_DOWNLOAD"] = "true"
    if join is not None:
        env["K3S_URL"] = join
        env["K3S_TOKEN_FILE"] = AGENT_TOKEN_PATH
    return env


def install_command(env: Mapping[str, str]) -> str:
    """Run the uploaded (or fetched) install script with ``env``, then record its
    fingerprint on the host (:func:`fingerprint`)."""
    assignments = " ".join(f"{k}={shlex.quote(v)}" for k, v in sorted(env.items()))
    return (
        f"env {assignments} sh {SCRIPT_PATH} && "
        f"printf '%s\\n' {shlex.quote(fingerprint(env))} > {INSTALLED_PATH}"
    )


def fingerprint(env: Mapping[str, str]) -> str:
    """What identifies an install: its environment (version, flags, server URL). A host
    with the same fingerprint and a running k3s of that version is not reinstalled."""
    text = json.dumps(dict(sorted(env.items())), separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def installed_check_command(env: Mapping[str, str]) -> str:
    """Exits 0 when this exact install is already on the host: its fingerprint recorded and
    ``k3s --version`` reporting the version."""
    version = shlex.quote(env["INSTALL_K3S_VERSION"])
    return (
        f'test "$(cat {INSTALLED_PATH} 2>/dev/null)" = {shlex.quote(fingerprint(env))} && '
        f"{BIN_DIR}/k3s --version 2>/dev/null | grep -qF -- {version}"
    )


def rewrite_kubeconfig(text: str, control: Host) -> str:
    """k3s' kubeconfig with its loopback server address replaced by the control host's."""
    address = api_addresses(control)[0]
    host = f"[{address}]" if ":" in address else address
    out, n = _LOCAL_SERVER.subn(lambda m: f"{m.group(1)}{host}{m.group(3)}", text)
    if n == 0:
        msg = (
            f"the kubeconfig {KUBECONFIG_PATH} on {control.name} names no loopback server to "
            "rewrite (expected server: https://127.0.0.1:6443)"
        )
        raise PlatformError(msg)
    return out


# -- running it ------------------------------------------------------------------------------


@attrs.frozen
class Installed:
    """What an install left: the kubeconfig on this machine and, per host, whether it was
    installed now (False: already there, untouched)."""

    kubeconfig: Path
    fresh: Mapping[str, bool]


class Installer:
    """k3s on ``inventory``'s hosts as ``config`` says, through ``connections``."""

    def __init__(
        self,
        inventory: Inventory,
        config: K3sConfig,
        connections: Connections,
        *,
        plan_dir: Path,
        cancel: threading.Event | None = None,
    ) -> None:
        self.inventory = inventory
        self.config = config
        self.connections = connections
        self.plan_dir = plan_dir
        self.cancel = cancel or threading.Event()

    # ---------------------------------------------------------------- install

    def install(
        self, kubeconfig: Path, on_host: Callable[[str], None] = lambda _h: None
    ) -> Installed:
        """Install (or keep) k3s everywhere; the admin kubeconfig written to ``kubeconfig``
        (0600). ``on_host(name)`` is called before anything is changed on a host, so that
        a caller records it for a release after a crash. Raises PlatformError (or
        :class:`~greenflow_k3s.ssh.HostsFailed` naming each failed host)."""
        inv = self.inventory
        run_all(inv.hosts, lambda h: self._prepare(h, on_host), what="prepare the k3s install")
        control = inv.control
        fresh = {control.name: self._install_host(control, self._server_env(control))}
        token = self._read_token(control)
        join = server_url(control)

        def agent(host: Host) -> bool:
            self.connections.write_secret(host, AGENT_TOKEN_PATH, token)
            return self._install_host(
                host, install_env(self.config, agent_flags(host, self.config), join=join)
            )

        fresh.update(run_all(inv.agents, agent, what="install the k3s agent"))
        self._write_kubeconfig(control, kubeconfig)
        return Installed(kubeconfig, fresh)

    def _server_env(self, control: Host) -> dict[str, str]:
        return install_env(self.config, server_flags(control, self.config))

    def _local(self, value: str) -> Path:
        path = Path(value).expanduser()
        return path if path.is_absolute() else self.plan_dir / path

    def _prepare(self, host: Host, on_host: Callable[[str], None]) -> None:
        """GreenFlow's directory, the install script and, air-gapped, the binary and the
        images archive, on ``host``."""
        self._check_cancel()
        on_host(host.name)
        self.connections.run(host, f"mkdir -p {STATE_DIR} && chmod 700 {STATE_DIR}")
        script = self.config.install_script
        if "://" in script:
            self.connections.run(
                host,
                f"curl -sfL {shlex.quote(script)} -o {SCRIPT_PATH} || "
                f"wget -qO {SCRIPT_PATH} {shlex.quote(script)}",
                timeout=INSTALL_TIMEOUT_S,
            )
        else:
            self.upload(host, self._local(script), SCRIPT_PATH, mode="0700")
        if self.config.k3s_binary is not None:
            self.upload(host, self._local(self.config.k3s_binary), f"{BIN_DIR}/k3s", mode="0755")
        for archive in self.config.airgap_images:
            images = self._local(archive)
            self.upload(host, images, f"{AIRGAP_IMAGES_DIR}/{images.name}", mode="0644")

    def upload(self, host: Host, local: Path, remote: str, *, mode: str) -> None:
        """``local`` to ``remote`` on ``host`` with ``mode``: over SFTP to a private file in
        the user's /tmp, then moved into place (with sudo for a ``become`` host)."""
        if not local.is_file():
            msg = f"cannot upload {local} to {host.name}: no such file on this machine"
            raise PlatformError(msg)
        conn = self.connections.open(host)
        staging = f"/tmp/greenflow-k3s-{os.getpid()}-{threading.get_ident()}-{local.name}"
        try:
            conn.put(str(local), staging)
        except Exception as exc:
            raise SshError(host, f"uploading {local.name} failed: {exc}") from exc
        self.connections.run(
            host,
            f"install -D -m {mode} {shlex.quote(staging)} {shlex.quote(remote)}; "
            f"status=$?; rm -f {shlex.quote(staging)}; exit $status",
        )

    def _install_host(self, host: Host, env: Mapping[str, str]) -> bool:
        """Run the install script on ``host`` unless the same install is there: True when
        it ran."""
        self._check_cancel()
        check = self.connections.run(host, f"{installed_check_command(env)}; echo $?")
        if check.stdout.strip().splitlines()[-1:] == ["0"]:
            log.info("k3s.kept", host=host.name, version=env["INSTALL_K3S_VERSION"])
            return False
        log.info(
            "k3s.installing", host=host.name, role=host.role, version=env["INSTALL_K3S_VERSION"]
        )
        self.connections.run(host, install_command(env), timeout=INSTALL_TIMEOUT_S)
        return True

    def _read_token(self, control: Host) -> Secret:
        def token_written() -> tuple[bool, str]:
            self._check_cancel()
            done = self.connections.run(control, f"test -s {TOKEN_PATH} && echo yes || echo no")
            return done.stdout.strip() == "yes", f"{TOKEN_PATH} not written yet"

        wait_until(
            token_written,
            what=f"the k3s server on {control.name} to write its join token",
            timeout_s=float(self.config.ready_timeout),
            interval_s=1.0,
            cancel=self.cancel,
        )
        text = self.connections.run(control, f"cat {TOKEN_PATH}").stdout.strip()
        if not text:
            msg = f"the k3s server on {control.name} wrote an empty join token ({TOKEN_PATH})"
            raise PlatformError(msg)
        return Secret(text)

    def _write_kubeconfig(self, control: Host, path: Path) -> None:
        text = self.connections.run(control, f"cat {KUBECONFIG_PATH}").stdout
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(rewrite_kubeconfig(text, control))
        os.chmod(path, 0o600)

    def _check_cancel(self) -> None:
        if self.cancel.is_set():
            raise KeyboardInterrupt

    # ---------------------------------------------------------------- readiness

    def wait_ready(self, kubeconfig: Path) -> None:
        """Until every host is a Ready node, up to ``ready_timeout``; the error names each
        node that is not, and the condition that holds it back."""
        from kubernetes import client, config

        api = client.CoreV1Api(
            config.new_client_from_config(config_file=str(kubeconfig))  # type: ignore[no-untyped-call]
        )
        wanted = [h.name for h in self.inventory.hosts]

        def ready() -> tuple[bool, str]:
            items = api.list_node(_request_timeout=10).items
            nodes = {n.metadata.name: n for n in items if n.metadata is not None}
            why = {name: node_blocker(nodes.get(name)) for name in wanted}
            blocking = [f"{name}: {reason}" for name, reason in why.items() if reason]
            return not blocking, "; ".join(blocking)

        try:
            wait_until(
                ready,
                what=f"every node of the k3s cluster Ready ({', '.join(wanted)})",
                timeout_s=float(self.config.ready_timeout),
                interval_s=2.0,
                cancel=self.cancel,
            )
        except ReadinessTimeout as exc:
            raise PlatformError(str(exc)) from None

    # ---------------------------------------------------------------- uninstall

    def uninstall(self, names: Sequence[str] | None = None) -> None:
        """k3s' uninstall scripts, agents first then the server, on ``names`` (default every
        host); a host without k3s is left as it is. GreenFlow's directory goes too."""
        hosts = [h for h in self.inventory.hosts if names is None or h.name in names]
        agents = [h for h in hosts if h.role != "control"]
        servers = [h for h in hosts if h.role == "control"]
        try:
            run_all(
                agents,
                lambda h: self._uninstall_host(h, AGENT_UNINSTALL),
                what="uninstall the k3s agent",
            )
        finally:
            # An agent that cannot be reached must not leave the server installed.
            run_all(
                servers,
                lambda h: self._uninstall_host(h, SERVER_UNINSTALL),
                what="uninstall the k3s server",
            )

    def _uninstall_host(self, host: Host, script: str) -> None:
        """k3s' uninstall script where the install ran; where it never did (the server
        failed before the agents' turn), what GreenFlow uploaded for it."""
        log.info("k3s.uninstalling", host=host.name)
        self.connections.run(
            host,
            f"if [ -x {script} ]; then {script}; else {self._remove_uploads()}; fi "
            f"&& rm -rf {STATE_DIR}",
            timeout=UNINSTALL_TIMEOUT_S,
        )

    def _remove_uploads(self) -> str:
        """A shell command removing the air-gap uploads (binary, images) and the
        directories they alone filled; ``true`` without them."""
        parts = ["true"]
        if self.config.k3s_binary is not None:
            parts.append(f"rm -f {BIN_DIR}/k3s")
        if self.config.airgap_images:
            names = " ".join(shlex.quote(Path(a).name) for a in self.config.airgap_images)
            parts += [
                f"(cd {AIRGAP_IMAGES_DIR} 2>/dev/null && rm -f {names} || true)",
                f"(rmdir -p {AIRGAP_IMAGES_DIR} 2>/dev/null || true)",
            ]
        return " && ".join(parts)


def node_blocker(node: Any) -> str | None:
    """Why ``node`` (a V1Node, or None when not registered) is not Ready, or None if it is."""
    if node is None:
        return "not registered (its agent has not joined the server)"
    for cond in node.status.conditions or ():
        if cond.type == "Ready":
            if cond.status == "True":
                return None
            detail = ": ".join(t for t in (cond.reason, cond.message) if t)
            return f"Ready={cond.status}" + (f" ({detail})" if detail else "")
    return "no Ready condition reported yet"
