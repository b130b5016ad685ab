"""greenflow-theodolite's tests. tests/real_node starts a whole Kubernetes node (root,
containerd, minutes): only ``nox -s tests_kube_node`` collects it."""

from __future__ import annotations

import os

collect_ignore = [] if os.environ.get("GREENFLOW_KUBE_NODE_TESTS") == "1" else ["real_node"]
