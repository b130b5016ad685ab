"""Test support for the ``g5k`` platform (extra: ``greenflow-g5k[testing]``).

- :mod:`.emulator`: an emulator of the Grid'5000 REST API (reference API, OAR jobs,
  Kadeploy deployments, Kwollect metrics) to drive python-grid5000 against, with scripted
  job lives, failures on demand and a request log. Its docstring says what is emulated,
  what is not, and which API shapes are confirmed or assumed.
"""

from __future__ import annotations

from greenflow_g5k.testing.emulator import (
    API_VERSION,
    DEFAULT_WALLTIME_S,
    FINAL_STATES,
    OAR_STATES,
    PARIS,
    Cluster,
    G5kEmulator,
    JobScript,
    JsonObject,
    PowerSource,
    RecordedRequest,
    Site,
    Step,
)

__all__ = [
    "API_VERSION",
    "DEFAULT_WALLTIME_S",
    "FINAL_STATES",
    "OAR_STATES",
    "PARIS",
    "Cluster",
    "G5kEmulator",
    "JobScript",
    "JsonObject",
    "PowerSource",
    "RecordedRequest",
    "Site",
    "Step",
]
