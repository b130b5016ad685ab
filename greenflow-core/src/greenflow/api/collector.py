"""The Collector interface: timestamped samples of energy, power, CPU or any series."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import attrs

from greenflow.api.context import Inventory, ProcessGroups, Sample, Window


@attrs.define
class CollectorContext:
    """What a collector sees when it starts.

    ``process_groups`` returns, when called, the current attribution groups
    (``"service:kafka"`` → pids, ``"loadgen:kafka-ingest"`` → pids). ``reach`` turns the
    URL of a source on the platform's hosts (a Prometheus on a NodePort) into one this
    machine reaches: a forwarded local port behind a gateway (the platform's
    :class:`~greenflow.api.platform.Forwarding`), else the URL itself. A collector that
    queries a URL calls it in :meth:`Collector.start`.
    """

    experiment: str
    inventory: Inventory
    process_groups: Callable[[], ProcessGroups] = lambda: {}
    reach: Callable[[str], str] = lambda url: url


class Collector(ABC):
    """Produces samples over windows.

    Sampling collectors (RAPL, model, process) sample in a background thread from
    :meth:`start` to :meth:`stop` and hand out what they have in :meth:`collect`;
    query collectors (Prometheus) query their source over the window in :meth:`collect`.
    Every energy or power sample carries its ``method``.
    """

    Config: ClassVar[type]
    #: True for a collector whose source the plan's own services may provide (a Prometheus
    #: deployed on the cluster, scraping Scaphandre): the runner starts it once the first
    #: deployment is ready, before the idle baseline, instead of before deploying.
    start_after_deploy: ClassVar[bool] = False

    def __init__(self, name: str, config: Any) -> None:
        self.name = name
        self.config = config

    @abstractmethod
    def start(self, ctx: CollectorContext) -> None:
        """**REQUIRED.** Begin sampling; raise ``CollectorError`` at once when the
        source is unreadable (e.g. ``energy_uj`` needs root)."""

    @abstractmethod
    def collect(self, window: Window) -> Sequence[Sample]:
        """**REQUIRED.** Samples covering ``window``, including the last sample at or
        before its start and the first at or after its end when they exist, so that
        counters can be interpolated at the boundaries. May drop what is older."""

    @abstractmethod
    def stop(self) -> None:
        """**REQUIRED.** Stop sampling and release the source. Idempotent."""

    def mark(self) -> None:
        """Called by the runner at every phase boundary (baseline, MEASURE, cool-down...),
        from the thread that crosses it. A collector that samples counters in a background
        thread takes one sample now, so that each window starts and ends on a reading and
        nothing from before or after it is interpolated in (a burst just before MEASURE would
        otherwise be smeared into it). Must be quick (a few milliseconds) and must not
        raise; the default does nothing, which is right for collectors that query a store
        (Prometheus) or sample too slowly for it to matter."""

    def health(self) -> str | None:
        """Why the collector can no longer produce samples (its sampling thread died, its
        source went away), or None. Checked by the runner between runs: an unhealthy
        collector is stopped and started again, and a run it could not measure is failed,
        never stored as finished without energy."""
        return None

    def describe(self) -> Mapping[str, Any]:
        """Facts for provenance (RAPL domains found, model parameters)."""
        return {}
