"""The k3s stand-in's artefacts, built once per session for every stand-in test."""

from __future__ import annotations

from greenflow_k3s.testing.standin import standin_artefacts as artefacts  # noqa: F401
