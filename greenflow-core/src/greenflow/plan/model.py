"""The plan, as frozen attrs classes. Plugin sections keep their raw tables until the
plugin's own Config class structures them (per sweep point)."""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import attrs

from greenflow.plan.durations import Duration
from greenflow.plan.validators import at_least, fraction
from greenflow.plan.validators import non_negative as _non_negative
from greenflow.plan.validators import positive as _positive

#: Deadlines (seconds) of the plugin steps the runner calls, which ``[experiment] timeouts``
#: may change; ``wait_ready``'s is ``ready_timeout`` plus a minute (ExperimentSection.timeout_s).
STEP_TIMEOUTS_S: dict[str, float] = {
    "deploy": 600.0,
    "prepare": 600.0,
    "execute": 3600.0,
    "clean": 600.0,
    "remove": 600.0,
    "collector_start": 300.0,
    "collect": 600.0,
    "collector_stop": 120.0,
}


def _step_timeouts(_inst: Any, attribute: attrs.Attribute[Any], value: Mapping[str, float]) -> None:
    unknown = sorted(set(value) - set(STEP_TIMEOUTS_S) - {"wait_ready"})
    if unknown:
        msg = (
            f"{attribute.name}: unknown step(s) {', '.join(unknown)}; steps with a deadline: "
            f"wait_ready, {', '.join(STEP_TIMEOUTS_S)}"
        )
        raise ValueError(msg)
    bad = {k: v for k, v in value.items() if not v > 0}
    if bad:
        raise ValueError(f"{attribute.name}: expected durations > 0, got {bad}")


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
    #: Idle measurement with services up and no load, before the first run of a deployment
    #: (and, with ``closing_baseline``, again after its last run). 0: none.
    baseline: Duration = attrs.field(default=Duration(10), validator=_non_negative)
    #: Before the baseline, wait at most this long for the hosts' power to settle (services
    #: finishing their start-up); 0: start the baseline at once.
    settle: Duration = attrs.field(default=Duration(60), validator=_non_negative)
    #: Settled: two consecutive ``settle_window`` windows of host power differ by at most
    #: this fraction (or 0.05 W).
    settle_tolerance: float = attrs.field(default=0.05, validator=fraction)
    settle_window: Duration = attrs.field(default=Duration(2), validator=_positive)
    #: Settled also needs each service's processes (where the ``process`` collector sees
    #: them) below this many CPU seconds per second: a steady start-up burst is stable,
    #: not quiet.
    settle_cpu: float = attrs.field(default=0.1, validator=_non_negative)
    #: Measure idle again after each deployment's runs: its drift goes into the
    #: uncertainty of the idle-subtracted (dynamic) figures.
    closing_baseline: bool = True
    #: Also measure idle once with the platform up and no service deployed, so that the
    #: services' own idle cost shows (for comparisons between systems).
    services_down_baseline: bool = False
    #: Unmeasured runs after each deploy, at the first point of the deployment, so that the
    #: first measured run does not meet a cold JVM. Unset: 1 when a deployed service asks
    #: for a warm-up (Kafka does), else 0.
    warmup_runs: int | None = attrs.field(
        default=None, validator=attrs.validators.optional(at_least(0))
    )
    #: Pause after each run so the next run's MEASURE doesn't see its tail.
    cooldown: Duration = attrs.field(default=Duration(0), validator=_non_negative)
    #: Deadline for a service to become ready.
    ready_timeout: Duration = attrs.field(default=Duration(180), validator=_positive)
    #: Deadlines of plugin steps (deploy, prepare, execute, clean, remove, collector_start,
    #: collect, collector_stop), over the defaults of STEP_TIMEOUTS_S.
    timeouts: dict[str, Duration] = attrs.field(factory=dict, validator=_step_timeouts)
    shuffle: bool = True

    def timeout_s(self, step: str) -> float:
        """The deadline of ``step`` in seconds: the plan's, else the default (for
        ``wait_ready``: ``ready_timeout`` plus a minute of grace, since the plugin is asked
        to honour the timeout it is given and the deadline only catches one that does not)."""
        if step == "wait_ready":
            return float(self.timeouts.get(step, self.ready_timeout + 60.0))
        return float(self.timeouts.get(step, STEP_TIMEOUTS_S[step]))

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
