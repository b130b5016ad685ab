"""Theodolite's stream-processing benchmarks UC1–UC4 for GreenFlow, with energy per record
(docs/theodolite.md)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("greenflow-theodolite")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0"

__all__ = ["__version__"]
