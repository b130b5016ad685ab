"""Apache Kafka for GreenFlow: get the jars, run a local KRaft cluster, drive producer load.

The low-level layer lives in :mod:`greenflow_kafka.distribution`, :mod:`.cluster`,
:mod:`.perf` and :mod:`.admin`; the GreenFlow plugin classes build on them.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("greenflow-kafka")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0"

__all__ = ["__version__"]
