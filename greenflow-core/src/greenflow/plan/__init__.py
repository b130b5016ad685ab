"""Plans: TOML files describing an experiment, read into frozen attrs classes."""

from __future__ import annotations

from greenflow.plan.durations import Duration, format_duration, parse_duration
from greenflow.plan.load import load_plan
from greenflow.plan.model import ExperimentSection, Plan, PluginSection
from greenflow.plan.runs import Expansion, RunSpec, expand

__all__ = [
    "Duration",
    "Expansion",
    "ExperimentSection",
    "Plan",
    "PluginSection",
    "RunSpec",
    "expand",
    "format_duration",
    "load_plan",
    "parse_duration",
]
