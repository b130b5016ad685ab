"""greenflow.api.prometheus.write_targets_file: a file_sd_configs file Prometheus can re-read."""

from __future__ import annotations

import json
from pathlib import Path

from greenflow.api.prometheus import PROMETHEUS_TARGETS_FILE, write_targets_file


def test_write_targets_file_replaces_the_file_whole(tmp_path: Path) -> None:
    """The targets are written as JSON, a rewrite replaces them, and no temporary file stays."""
    path = tmp_path / PROMETHEUS_TARGETS_FILE
    first = [{"targets": ["127.0.0.1:9404"], "labels": {"process": "broker-0"}}]
    write_targets_file(path, first)
    assert json.loads(path.read_text()) == first
    write_targets_file(path, [])
    assert json.loads(path.read_text()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == [PROMETHEUS_TARGETS_FILE]
