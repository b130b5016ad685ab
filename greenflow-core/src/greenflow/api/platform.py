"""The Platform interface: where services and workloads run."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

from greenflow.api.context import Capability, DeployContext, Inventory


class Platform(ABC):
    """Acquires hosts with roles and releases them.

    Implementations set ``Config`` to a frozen attrs class (the plan's ``[platform]``
    table is structured into it, unknown keys rejected) and ``capabilities`` to what
    the platform can run. The constructor takes the config and must not touch anything
    remote: ``greenflow validate`` builds platforms without acquiring them.
    """

    Config: ClassVar[type]
    capabilities: ClassVar[frozenset[Capability]] = frozenset()

    def __init__(self, config: Any) -> None:
        self.config = config

    @abstractmethod
    def acquire(self, ctx: DeployContext) -> Inventory:
        """**REQUIRED.** Reserve resources and return reachable hosts by role.

        Must be safe to retry, and must call ``ctx.record_state`` with whatever
        :meth:`release_recorded` needs before anything that could leak (a reservation
        id) is returned to the caller.
        """

    @abstractmethod
    def release(self) -> None:
        """**REQUIRED.** Give back everything :meth:`acquire` took.

        Idempotent, and safe after a partial or failed acquire.
        """

    def describe(self) -> Mapping[str, Any]:
        """Facts for the provenance record (hosts, CPU, kernel, job ids). No secrets."""
        return {}

    def check_roles(self, roles: frozenset[str]) -> str | None:
        """Return why ``roles`` cannot be satisfied, or None. Called at validation."""
        return None

    @classmethod
    def release_recorded(cls, config: Any, state: Mapping[str, Any]) -> None:
        """Release from state recorded by a process that is gone (``greenflow down``)."""


@runtime_checkable
class TimeLimited(Protocol):
    """A platform whose hosts are held for a limited time (a Grid'5000 job's walltime).

    The runner calls :meth:`ensure_time` before each run, so that no run is cut by the end
    of the reservation: the run would be lost, and the platform's own release with it."""

    def ensure_time(self, needed_s: float) -> None:
        """Make sure the hosts stay ``needed_s`` more seconds (the next run, as long as the
        longest so far) plus what the platform's own release takes: return when they will,
        extending the reservation where the plan allows it; otherwise raise
        :class:`greenflow.errors.OutOfTime` saying how to resume. The run is not started
        then, finished runs are kept and the teardown runs as after any stop."""
        ...


@runtime_checkable
class Costed(Protocol):
    """A platform that can say what a plan will cost before anything is reserved (the
    node-hours a Grid'5000 job holds): ``greenflow run --dry-run`` prints it."""

    def cost(self) -> str:
        """One line, from the configuration alone (nothing remote is reached)."""
        ...


@runtime_checkable
class Preflight(Protocol):
    """A platform that can check, read-only, that what the plan names is there and usable
    (hosts answer over SSH, sudo works; an API accepts the credentials): ``greenflow
    validate`` calls it unless ``--offline``."""

    def preflight(self, plan_path: Path) -> Sequence[str]:
        """One line per problem found (naming the host or the key), empty when ready.
        Relative names in the plan are relative to ``plan_path``'s directory. Changes
        nothing; errors in the plan itself may be raised as :class:`PlanError`."""
        ...


@runtime_checkable
class Forwarding(Protocol):
    """A platform whose hosts this machine does not reach directly (nodes behind an SSH
    gateway): it forwards a local port to a host's port, so that a collector can still
    query what runs there (Prometheus on a NodePort). The runner hands :meth:`reach` to the
    collectors (``CollectorContext.reach``)."""

    def reach(self, url: str) -> str:
        """The URL by which this machine reaches ``url``: when its host is one of the
        platform's hosts (by name or address) and is behind the gateway, an
        ``http://127.0.0.1:<port>`` forwarded to it (open until the release); otherwise
        ``url`` itself."""
        ...
