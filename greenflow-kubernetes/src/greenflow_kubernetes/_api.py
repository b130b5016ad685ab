"""The ``kubernetes`` client, imported lazily: connecting, discovery, errors.

Everything from the client is typed ``Any`` here (it is generated code, partly untyped);
the rest of the package sees plain dicts and GreenFlow errors only.
"""

from __future__ import annotations

import importlib
import os
import tempfile
import uuid
from pathlib import Path
from typing import Any, NamedTuple

from greenflow.errors import GreenFlowError, PlatformError

INSTALL_HINT = "pip install greenflow-kubernetes (it brings the kubernetes client)"
#: Per-request deadline (seconds): connect, then read. Waits poll with short requests.
REQUEST_TIMEOUT = (10.0, 30.0)


class KubeApiError(GreenFlowError):
    """The API server refused a request; the message says which object, the HTTP status
    and the server's own explanation (e.g. the field a validation error is about)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def module(name: str) -> Any:
    """Import ``name`` from the client; a GreenFlow error saying how to install it if absent."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        msg = f"the kubernetes client is not installed ({exc}); {INSTALL_HINT}"
        raise PlatformError(msg) from exc


def api_error_message(exc: BaseException) -> str:
    """The server's message of an API error (its ``Status.message``), else its text."""
    summary = getattr(exc, "summary", None)
    if callable(summary):
        try:
            return str(summary())
        except Exception:  # a body that is not the JSON it claims to be
            pass
    body = getattr(exc, "body", None)
    if body:
        return str(body)
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def status_of(exc: BaseException) -> int | None:
    status = getattr(exc, "status", None)
    return status if isinstance(status, int) else None


def is_api_error(exc: BaseException) -> bool:
    """An HTTP error answered by the API server (as opposed to a bug or a network error)."""
    rest = module("kubernetes.client.exceptions")
    return isinstance(exc, rest.ApiException)


def is_network_error(exc: BaseException) -> bool:
    """The API server did not answer (refused, reset, timed out, TLS failure)."""
    urllib3 = module("urllib3.exceptions")
    return isinstance(exc, urllib3.HTTPError | OSError)


class Connection(NamedTuple):
    """An API client and where it came from. ``kubeconfig`` and ``context`` are what to
    record to reconnect later; neither carries a credential."""

    client: Any
    kubeconfig: str | None
    context: str | None
    server: str


def resolve_kubeconfig(kubeconfig: str | None) -> str | None:
    """The kubeconfig to load: the plan's, else ``$KUBECONFIG`` (possibly a list of
    files), else ``~/.kube/config``; None when none exists (then in-cluster may apply)."""
    if kubeconfig:
        path = Path(kubeconfig).expanduser()
        if not path.is_file():
            msg = f"[platform] kubeconfig {kubeconfig!r} does not exist"
            raise PlatformError(msg)
        return str(path)
    env = os.environ.get("KUBECONFIG", "")
    files = [p for p in env.split(os.pathsep) if p]
    if any(Path(p).expanduser().is_file() for p in files):
        return env
    default = Path("~/.kube/config").expanduser()
    return str(default) if default.is_file() else None


def connect(kubeconfig: str | None, context: str | None) -> Connection:
    """An API client from the usual kubeconfig resolution (see :func:`resolve_kubeconfig`),
    or in-cluster credentials when no kubeconfig exists inside a pod."""
    config = module("kubernetes.config")
    client = module("kubernetes.client")
    path = resolve_kubeconfig(kubeconfig)
    configuration = client.Configuration()
    if path is None:
        if context is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
            config.load_incluster_config(client_configuration=configuration)
            return Connection(client.ApiClient(configuration), None, None, configuration.host)
        msg = (
            "no kubeconfig found: set [platform] kubeconfig, or KUBECONFIG, or create "
            "~/.kube/config (kubectl config view shows what kubectl uses)"
        )
        raise PlatformError(msg)
    try:
        contexts, active = config.list_kube_config_contexts(config_file=path)
        names = [c["name"] for c in contexts or []]
        if context is not None and context not in names:
            msg = (
                f"[platform] context {context!r} is not in kubeconfig {path}; "
                f"it has: {', '.join(names) or 'no context'}"
            )
            raise PlatformError(msg)
        chosen = context or (active or {}).get("name")
        # persist_config=False: never write refreshed credentials back to the user's file.
        config.load_kube_config(
            config_file=path,
            context=chosen,
            client_configuration=configuration,
            persist_config=False,
        )
    except PlatformError:
        raise
    except Exception as exc:  # ConfigException, YAML errors: a broken kubeconfig
        msg = f"cannot load kubeconfig {path} (context {context or 'current'}): {exc}"
        raise PlatformError(msg) from exc
    return Connection(client.ApiClient(configuration), path, chosen, configuration.host)


def dynamic_client(api_client: Any) -> Any:
    """A ``DynamicClient`` whose discovery cache stays in memory (the client's default
    writes one file per server URL into /tmp, which a test's random ports would litter)."""
    dynamic = module("kubernetes.dynamic")

    memory_discoverer = type(
        "MemoryDiscoverer", (dynamic.LazyDiscoverer,), {"_write_cache": lambda _self: None}
    )
    # A path that never exists, so that no stale cache is ever read either.
    never = os.path.join(tempfile.gettempdir(), f"greenflow-discovery-{uuid.uuid4().hex}.json")
    return dynamic.DynamicClient(api_client, cache_file=never, discoverer=memory_discoverer)


def discovery_errors() -> tuple[type[BaseException], ...]:
    """What discovery raises for a kind the server does not serve, or serves in several
    groups (then an apiVersion is needed)."""
    exceptions = module("kubernetes.dynamic.exceptions")
    return (exceptions.ResourceNotFoundError, exceptions.ResourceNotUniqueError)
