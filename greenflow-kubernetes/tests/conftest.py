"""greenflow-kubernetes' tests: unit tests, integration tests against a real kube-apiserver
and Prometheus, and (``nox -s tests_kube_node`` only) tests on a real single-node cluster."""

from __future__ import annotations

import os

# tests/real_node starts a whole Kubernetes node (root, containerd, minutes): only its own
# session, `nox -s tests_kube_node`, collects it (docs/kubernetes-testing.md).
collect_ignore = [] if os.environ.get("GREENFLOW_KUBE_NODE_TESTS") == "1" else ["real_node"]
