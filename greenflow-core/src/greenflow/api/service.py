"""The Service interface: something deployed once and measured under load (a broker)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar

from greenflow.api.context import Capability, DeployContext, Inventory, ProcessGroups
from greenflow.api.platform import Platform


class Service(ABC):
    """Deploys onto a platform, becomes ready, exposes endpoints, names its processes.

    ``Config`` is a frozen attrs class for the plan's ``[[services]]`` entry (minus
    ``type`` and ``name``). A list value for a scalar field is a sweep axis: the runner
    builds one instance per distinct value and redeploys between them.
    ``requires`` lists capabilities the platform must have (any one of them).
    """

    Config: ClassVar[type]
    requires: ClassVar[frozenset[Capability]] = frozenset()
    #: A measurement service (Prometheus, Scaphandre) is deployed for every run, whatever
    #: services the workload targets; a system under test only for the runs targeting it.
    measurement: ClassVar[bool] = False
    #: Unmeasured runs the runner makes after deploying this service, before the idle
    #: baseline, when the plan leaves ``[experiment] warmup_runs`` unset: a JVM compiles
    #: its hot paths under its first load, and a cold one would make the first measured
    #: run an outlier (Kafka's first runs used ~2.4× the CPU of later ones). 0: none.
    warmup_runs: ClassVar[int] = 0

    def __init__(self, name: str, config: Any) -> None:
        self.name = name
        self.config = config

    @classmethod
    def required_roles(cls, config: Any) -> frozenset[str]:
        """Roles this service needs hosts for (e.g. ``{"broker"}``); checked against the
        platform at validation and after acquire, so a missing role fails early."""
        return frozenset()

    @classmethod
    def check_platform(cls, config: Any, platform: Platform) -> str | None:
        """Why this service cannot run on ``platform`` as configured (e.g. a binary missing
        on a local host), or None. Read-only and quick: ``greenflow validate`` calls it for
        every service of the plan before anything is acquired."""
        return None

    @abstractmethod
    def deploy(self, platform: Platform, inventory: Inventory, ctx: DeployContext) -> None:
        """**REQUIRED.** Start the service; return without waiting for readiness.

        Call ``ctx.record_state`` with what :meth:`remove_recorded` needs (pids, names)
        as soon as something exists that could leak.
        """

    @abstractmethod
    def wait_ready(self, timeout_s: float) -> None:
        """**REQUIRED.** Poll until the service answers; never a fixed sleep.

        On timeout raise ``ReadinessTimeout`` saying what was awaited and what was last
        seen (e.g. the last lines of a log). If the service died, raise ``ServiceError``.
        """

    @abstractmethod
    def endpoints(self) -> Mapping[str, str]:
        """**REQUIRED.** Addresses clients use, e.g. ``{"bootstrap": "127.0.0.1:9092"}``."""

    @abstractmethod
    def processes(self) -> ProcessGroups:
        """**REQUIRED.** Local pids that belong to this service, by process name.

        Used for energy attribution; return ``{}`` on platforms without local processes.
        """

    @abstractmethod
    def remove(self) -> None:
        """**REQUIRED.** Stop everything the service started. Idempotent; never raises
        for something already gone. No process may outlive it."""

    def health(self) -> str | None:
        """Return why the service is unhealthy (e.g. a broker died), or None."""
        return None

    def describe(self) -> Mapping[str, Any]:
        """Facts for the provenance record (versions, sizes)."""
        return {}

    def detach(self) -> None:
        """Called when the deployment is left up (``greenflow up``): drop any guard that
        would stop it when this process exits. ``attach`` picks it up later."""

    @classmethod
    def attach(cls, name: str, config: Any, state: Mapping[str, Any]) -> Service | None:
        """Return a handle on a deployment left up by ``greenflow up``, or None.

        Return None when what ``state`` describes is gone or cannot be reused; the
        runner then removes it with :meth:`remove_recorded` and deploys afresh.
        """
        return None

    @classmethod
    def remove_recorded(cls, config: Any, state: Mapping[str, Any]) -> None:
        """Remove from state recorded by a process that is gone (``greenflow down``)."""
