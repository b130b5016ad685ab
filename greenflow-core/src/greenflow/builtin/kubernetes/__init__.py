"""The ``kubernetes`` platform and the services that run on it (``prometheus``, ``scaphandre``).

The ``kubernetes`` client is imported only when a platform connects (extra:
``pip install "greenflow-core[kubernetes]"``); loading these plugins, or validating a plan
that names them, needs neither the client nor a cluster.
"""

from __future__ import annotations

from greenflow.builtin.kubernetes._api import KubeApiError
from greenflow.builtin.kubernetes.session import KubeSession, pod_blocking_reason, session_of

__all__ = ["KubeApiError", "KubeSession", "pod_blocking_reason", "session_of"]
