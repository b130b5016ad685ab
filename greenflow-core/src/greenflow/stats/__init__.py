"""Statistics across repetitions: per parameter point, mean, sd, 95 % t-interval and n.

``summarize(store, experiment)`` groups an experiment's finished runs by their
parameters and describes every numeric figure (energy static and dynamic, power, J per
unit, J/MiB, throughput, latency), per method. docs/results.md, *Statistics*, explains
the grouping, the interval and what n counts.
"""

from __future__ import annotations

from greenflow.stats.describe import CONFIDENCE, Stat, describe
from greenflow.stats.summary import PointSummary, find, summarize, to_dicts, to_json, to_rows
from greenflow.stats.tdist import betainc, t_cdf, t_quantile

__all__ = [
    "CONFIDENCE",
    "PointSummary",
    "Stat",
    "betainc",
    "describe",
    "find",
    "summarize",
    "t_cdf",
    "t_quantile",
    "to_dicts",
    "to_json",
    "to_rows",
]
