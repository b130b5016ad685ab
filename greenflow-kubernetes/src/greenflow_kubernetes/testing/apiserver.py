"""A real kube-apiserver with its own etcd for tests, on loopback.

The binaries are built from their Go modules by ``bash scripts/kube-apiserver`` (once per
machine, cached by version)::

    try:
        binaries = find_kube_binaries()
    except KubeBinariesMissing as exc:
        pytest.skip(str(exc))
    with KubeAPIServer(binaries=binaries) as kube:
        client = kubernetes.config.new_client_from_config(config_file=str(kube.kubeconfig_path))

Only the API server and etcd run: objects are validated and stored, but nothing acts on them
(:mod:`greenflow_kubernetes.testing.controllers` plays the controllers a test needs). The
admin token is never logged. docs/kubernetes-testing.md says how the server is configured and
built, and what tests against it can and cannot prove.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import NamedTuple, Self

from greenflow.api import wait_until
from greenflow.api.net import free_ports
from greenflow.api.processes import tail
from greenflow.errors import ServiceError

#: The Kubernetes version ``scripts/kube-apiserver`` builds (keep both in step).
KUBE_VERSION = "v1.37.2"
#: The etcd version it builds next to it.
ETCD_VERSION = "v3.7.3"
#: The command that builds both binaries into the cache (a no-op when they are there).
BUILD_HINT = "bash scripts/kube-apiserver"
#: Set to a directory holding ``kube-apiserver`` and ``etcd`` to use those instead.
BIN_DIR_ENV = "GREENFLOW_KUBE_BIN_DIR"

#: The user and group of the static admin token.
ADMIN_USER = "greenflow-admin"
ADMIN_GROUP = "system:masters"


class KubeBinariesMissing(ServiceError):
    """kube-apiserver or etcd is not built; the message says which and how to build it.

    Tests skip on it: ``pytest.skip(str(exc))``.
    """


class KubeBinaries(NamedTuple):
    apiserver: Path
    etcd: Path


def kube_bin_dir() -> Path:
    """Where ``scripts/kube-apiserver`` puts the binaries (the same resolution as it):
    ``$GREENFLOW_KUBE_BIN_DIR``, else
    ``${GREENFLOW_KUBE_CACHE:-${XDG_CACHE_HOME:-~/.cache}/greenflow/kube}/<version>``,
    the version being ``$GREENFLOW_KUBE_VERSION`` or :data:`KUBE_VERSION`."""
    configured = os.environ.get(BIN_DIR_ENV)
    if configured:
        return Path(configured)
    root = os.environ.get("GREENFLOW_KUBE_CACHE") or ""
    if not root:
        xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        root = str(Path(xdg) / "greenflow" / "kube")
    return Path(root) / (os.environ.get("GREENFLOW_KUBE_VERSION") or KUBE_VERSION)


def find_kube_binaries() -> KubeBinaries:
    """The cached ``kube-apiserver`` and ``etcd``; :class:`KubeBinariesMissing` (with the
    command that builds them) when either is not there."""
    directory = kube_bin_dir()
    binaries = KubeBinaries(directory / "kube-apiserver", directory / "etcd")
    missing = [p.name for p in binaries if not os.access(p, os.X_OK)]
    if missing:
        msg = (
            f"{' and '.join(missing)} not built in {directory}; build them "
            f"(once: 10-20 min cold on 2 cores, then cached) with: {BUILD_HINT}"
        )
        raise KubeBinariesMissing(msg)
    return binaries


def _log_tail(path: Path) -> str:
    return "\n".join(tail(path, 25)) or "(no log)"


def _stop(proc: subprocess.Popen[bytes] | None, timeout_s: float) -> None:
    if proc is None:
        return
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _make_service_account_keys(directory: Path) -> tuple[Path, Path]:
    """An RSA key pair for signing service-account tokens: (private, public) PEM files,
    made with the ``openssl`` command (no Python dependency of GreenFlow has a crypto
    library; ``scripts/setup-system`` installs openssl where it is missing)."""
    private, public = directory / "sa.key", directory / "sa.pub"
    openssl = shutil.which("openssl")
    if openssl is None:
        msg = "the openssl command is needed to make a service-account key pair (apt-get install openssl)"
        raise ServiceError(msg)
    for cmd in (
        [openssl, "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
        [openssl, "pkey", "-in", str(private), "-pubout"],
    ):
        out = private if cmd[1] == "genpkey" else public
        done = subprocess.run([*cmd, "-out", str(out)], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            msg = f"openssl {cmd[1]} failed: {done.stderr.strip()}"
            raise ServiceError(msg)
    return private, public


class KubeAPIServer:
    """etcd + kube-apiserver on loopback; a context manager (start on enter, stop on exit).

    Attributes once started: :attr:`url` (``https://127.0.0.1:<port>``), :attr:`token`
    (the admin bearer token, group ``system:masters``), :attr:`kubeconfig_path` (server,
    CA and token, context ``greenflow-test``), :attr:`ca_path`, :attr:`etcd_url`,
    :attr:`ready_after_s` (start to ``/readyz`` 200). Logs: ``work_dir/etcd.log`` and
    ``work_dir/kube-apiserver.log``.
    """

    def __init__(
        self,
        work_dir: Path | None = None,
        *,
        binaries: KubeBinaries | None = None,
        host: str = "127.0.0.1",
        service_cluster_ip_range: str = "10.0.0.0/24",
        extra_args: Sequence[str] = (),
        timeout_s: float = 120.0,
    ) -> None:
        """``work_dir``: where data, certificates and logs go (a temporary directory,
        removed on stop, when None). ``binaries``: default :func:`find_kube_binaries`.
        ``extra_args`` are appended to kube-apiserver's command line. ``timeout_s`` bounds
        each of etcd's and the API server's start."""
        self._own_dir = work_dir is None
        self.work_dir = Path(work_dir) if work_dir is not None else Path()
        self._binaries = binaries
        self.host = host
        self.service_cluster_ip_range = service_cluster_ip_range
        self.extra_args = list(extra_args)
        self.timeout_s = timeout_s
        self.port = 0
        self.etcd_client_port = 0
        self.etcd_peer_port = 0
        self.token = secrets.token_urlsafe(32)
        self.ready_after_s: float | None = None
        self._etcd: subprocess.Popen[bytes] | None = None
        self._apiserver: subprocess.Popen[bytes] | None = None

    def __repr__(self) -> str:  # never the token
        return f"KubeAPIServer(url={self.url!r}, work_dir={str(self.work_dir)!r})"

    @property
    def url(self) -> str:
        """``https://127.0.0.1:<port>``."""
        return f"https://{self.host}:{self.port}"

    @property
    def etcd_url(self) -> str:
        return f"http://{self.host}:{self.etcd_client_port}"

    @property
    def kubeconfig_path(self) -> Path:
        return self.work_dir / "kubeconfig"

    @property
    def cert_dir(self) -> Path:
        return self.work_dir / "certs"

    @property
    def ca_path(self) -> Path:
        """The self-signed serving certificate and its CA (written by kube-apiserver)."""
        return self.cert_dir / "apiserver.crt"

    @property
    def etcd_log_path(self) -> Path:
        return self.work_dir / "etcd.log"

    @property
    def apiserver_log_path(self) -> Path:
        return self.work_dir / "kube-apiserver.log"

    # -- start -------------------------------------------------------------------------

    def start(self) -> None:
        """Start etcd, then kube-apiserver; return once ``/readyz`` answers 200.

        Raises :class:`KubeBinariesMissing` when the binaries are not built, and
        ``ServiceError`` / ``ReadinessTimeout`` with the log's tail when a process exits
        or is not ready in time (everything started is stopped again first)."""
        binaries = self._binaries or find_kube_binaries()
        if self._own_dir:
            self.work_dir = Path(tempfile.mkdtemp(prefix="greenflow-kube-"))
        self.work_dir.mkdir(parents=True, exist_ok=True)
        try:
            # A port found free may be taken before the process binds it: retried.
            for attempt in range(3):
                try:
                    self._start_etcd(binaries.etcd)
                    break
                except ServiceError:
                    in_use = "address already in use" in _log_tail(self.etcd_log_path)
                    _stop(self._etcd, 10)
                    self._etcd = None
                    if attempt == 2 or not in_use:
                        raise
                    shutil.rmtree(self.work_dir / "etcd-data", ignore_errors=True)
            self._prepare_apiserver()
            for attempt in range(3):
                try:
                    self._start_apiserver(binaries.apiserver)
                    break
                except ServiceError:
                    in_use = "address already in use" in _log_tail(self.apiserver_log_path)
                    _stop(self._apiserver, 10)
                    self._apiserver = None
                    if attempt == 2 or not in_use:
                        raise
            self._write_kubeconfig()
        except BaseException:
            self.stop()
            raise

    def _popen(self, command: list[str], log_path: Path) -> subprocess.Popen[bytes]:
        with log_path.open("ab") as log:
            return subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def _start_etcd(self, binary: Path) -> None:
        self.etcd_client_port, self.etcd_peer_port = free_ports(self.host, 2)
        peer = f"http://{self.host}:{self.etcd_peer_port}"
        command = [
            str(binary),
            "--name=greenflow-test",
            f"--data-dir={self.work_dir / 'etcd-data'}",
            f"--listen-client-urls={self.etcd_url}",
            f"--advertise-client-urls={self.etcd_url}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=greenflow-test={peer}",
            "--initial-cluster-state=new",
            # A test store: nothing to keep across a crash, and fsync is most of etcd's
            # latency on a shared disk.
            "--unsafe-no-fsync",
            "--log-level=warn",
        ]
        self._etcd = self._popen(command, self.etcd_log_path)
        proc = self._etcd

        def healthy() -> tuple[bool, str]:
            if proc.poll() is not None:
                return True, "exited"
            with urllib.request.urlopen(f"{self.etcd_url}/health", timeout=2) as resp:
                body = resp.read().decode("utf-8", "replace")
            return json.loads(body).get("health") == "true", body

        wait_until(
            healthy,
            what=f"etcd at {self.etcd_url}/health",
            timeout_s=self.timeout_s,
            interval_s=0.1,
        )
        if proc.poll() is not None:
            msg = (
                f"etcd exited with code {proc.returncode} before it was healthy; "
                f"log {self.etcd_log_path}:\n{_log_tail(self.etcd_log_path)}"
            )
            raise ServiceError(msg)

    def _prepare_apiserver(self) -> None:
        self.cert_dir.mkdir(parents=True, exist_ok=True)
        self._sa_private, self._sa_public = _make_service_account_keys(self.work_dir)
        tokens = self.work_dir / "tokens.csv"
        # token,user,uid,"group1,group2"
        fd = os.open(tokens, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(f'{self.token},{ADMIN_USER},{ADMIN_USER},"{ADMIN_GROUP}"\n')
        self._tokens_path = tokens

    def _apiserver_command(self, binary: Path) -> list[str]:
        return [
            str(binary),
            f"--etcd-servers={self.etcd_url}",
            f"--bind-address={self.host}",
            f"--advertise-address={self.host}",
            f"--secure-port={self.port}",
            f"--cert-dir={self.cert_dir}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={self._sa_public}",
            f"--service-account-signing-key-file={self._sa_private}",
            f"--service-cluster-ip-range={self.service_cluster_ip_range}",
            "--authorization-mode=RBAC",
            f"--token-auth-file={self._tokens_path}",
            # Manifests GreenFlow applies include privileged pods (Scaphandre's DaemonSet).
            "--allow-privileged=true",
            # No kubelet answers on the advertised address: the `kubernetes` Service gets
            # no Endpoints instead of loopback ones that validation would refuse.
            "--endpoint-reconciler-type=none",
            "--profiling=false",
            *self.extra_args,
        ]

    def _start_apiserver(self, binary: Path) -> None:
        (self.port,) = free_ports(self.host, 1)
        started = time.monotonic()
        self._apiserver = self._popen(self._apiserver_command(binary), self.apiserver_log_path)
        proc = self._apiserver

        def ready() -> tuple[bool, str]:
            if proc.poll() is not None:
                return True, "exited"
            if not self.ca_path.exists():
                return False, f"no serving certificate yet in {self.cert_dir}"
            status, body = self._get("/readyz")
            # A failing /readyz lists the checks that fail: say which.
            failing = [ln for ln in body.splitlines() if ln.startswith("[-]")]
            return status == 200, f"HTTP {status} {'; '.join(failing) or body[:200]}"

        wait_until(
            ready,
            what=f"kube-apiserver at {self.url}/readyz",
            timeout_s=self.timeout_s,
            interval_s=0.2,
        )
        if proc.poll() is not None:
            msg = (
                f"kube-apiserver exited with code {proc.returncode} before it was ready; "
                f"log {self.apiserver_log_path}:\n{_log_tail(self.apiserver_log_path)}"
            )
            raise ServiceError(msg)
        self.ready_after_s = time.monotonic() - started

    def _get(self, path: str) -> tuple[int, str]:
        """GET ``path`` as the admin, trusting the server's own CA: (status, body)."""
        context = ssl.create_default_context(cafile=str(self.ca_path))
        request = urllib.request.Request(
            f"{self.url}{path}", headers={"Authorization": f"Bearer {self.token}"}
        )
        try:
            with urllib.request.urlopen(request, timeout=5, context=context) as resp:
                return resp.status, resp.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode("utf-8", "replace")

    def _write_kubeconfig(self) -> None:
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "greenflow-test",
                    "cluster": {"server": self.url, "certificate-authority": str(self.ca_path)},
                }
            ],
            "users": [{"name": ADMIN_USER, "user": {"token": self.token}}],
            "contexts": [
                {
                    "name": "greenflow-test",
                    "context": {"cluster": "greenflow-test", "user": ADMIN_USER},
                }
            ],
            "current-context": "greenflow-test",
        }
        # JSON is YAML; 0600 as it holds the token.
        fd = os.open(self.kubeconfig_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(config, f, indent=2)

    # -- stop --------------------------------------------------------------------------

    def pids(self) -> list[int]:
        """Process ids of the running etcd and kube-apiserver (for leak checks)."""
        return [p.pid for p in (self._apiserver, self._etcd) if p is not None and p.poll() is None]

    def stop(self, timeout_s: float = 15.0) -> None:
        """Stop kube-apiserver, then etcd (SIGTERM, SIGKILL after ``timeout_s``), and
        remove the temporary directory if this object made it. Idempotent."""
        apiserver, self._apiserver = self._apiserver, None
        etcd, self._etcd = self._etcd, None
        _stop(apiserver, timeout_s)
        _stop(etcd, timeout_s)
        if self._own_dir and self.work_dir != Path():
            shutil.rmtree(self.work_dir, ignore_errors=True)
            self.work_dir = Path()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
