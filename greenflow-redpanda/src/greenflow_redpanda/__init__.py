"""Redpanda for GreenFlow: the ``redpanda`` service (:mod:`greenflow_redpanda.service`), its
Kubernetes manifests (:mod:`greenflow_redpanda.kube`) and its local processes
(:mod:`greenflow_redpanda.local`)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("greenflow-redpanda")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0"

__all__ = ["__version__"]
