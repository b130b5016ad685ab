"""The plan, as frozen attrs classes. Plugin sections keep their raw tables until the
plugin's own Config class structures them (per sweep point)."""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import attrs

from greenflow.plan.durations import Duration
from greenflow.plan.validators import non_negative as _non_negative
from greenflow.plan.validators import positive as _positive


@attrs.frozen
class ExperimentSection:
    """``[experiment]``: what the experiment is called and how runs are repeated and ordered."""

    name: str
    repetitions: int = attrs.field(default=1, validator=_positive)
    #: None: derived from the name, so that the order is reproducible without one.
    seed: int | None = None
    #: Results directory; relative paths are relative to the current directory.
    output: str = "greenflow-output"
    on_error: Literal["continue", "stop"] = "continue"
    #: Idle measurement with services up and no load, before the first run of a deployment.
    baseline: Duration = attrs.field(default=Duration(10), validator=_non_negative)
    #: Pause after each run so the next run's MEASURE doesn't see its tail.
    cooldown: Duration = attrs.field(default=Duration(0), validator=_non_negative)
    #: Deadline for a service to become ready.
    ready_timeout: Duration = attrs.field(default=Duration(180), validator=_positive)
    shuffle: bool = True

    @property
    def effective_seed(self) -> int:
        return self.seed if self.seed is not None else zlib.crc32(self.name.encode())


@attrs.frozen
class PluginSection:
    """A plugin's table: its ``type`` (entry-point name), its plan name, the rest raw."""

    kind: str
    type: str
    name: str
    where: str
    raw: Mapping[str, Any]
    #: The plugin class (a Platform, Service, Workload or Collector subclass).
    cls: Any


@attrs.frozen
class Plan:
    path: Path
    text: str
    experiment: ExperimentSection
    platform: PluginSection
    services: tuple[PluginSection, ...]
    workload: PluginSection
    collectors: tuple[PluginSection, ...]
    #: ``[protocol]``: runs decided adaptively (max-throughput, proportionality, idle).
    protocol: PluginSection | None = None
    #: ``[remote_write]``: samples also go to Prometheus/VictoriaMetrics (a RemoteWriteConfig).
    remote_write: Any = None

    @property
    def output_dir(self) -> Path:
        return Path(self.experiment.output)

    def service(self, name: str) -> PluginSection:
        for s in self.services:
            if s.name == name:
                return s
        raise KeyError(name)
