"""Settings of the Kubernetes ``scaphandre`` and ``prometheus`` services."""

from __future__ import annotations

import pytest

from greenflow_kubernetes.services.prometheus import _prometheus_2
from greenflow_kubernetes.services.scaphandre import ScaphandreServiceConfig


def test_the_node_own_powercap_tree_is_measured_by_default() -> None:
    assert ScaphandreServiceConfig().powercap_path == "/sys/class/powercap"


@pytest.mark.parametrize("path", ["sys/class/powercap", "", "./powercap"])
def test_powercap_path_must_be_absolute_on_the_nodes(path: str) -> None:
    with pytest.raises(ValueError, match=r"powercap_path: expected an absolute path, got"):
        ScaphandreServiceConfig(powercap_path=path)


@pytest.mark.parametrize(
    ("image", "two"),
    [
        ("prom/prometheus:v3.13.5", False),
        ("prom/prometheus:v2.53.3", True),
        ("registry.example:5000/prom/prometheus:v2.45.0", True),
        ("quay.io/prometheus/prometheus:3.0.0", False),
        ("prom/prometheus", False),
    ],
)
def test_the_scrape_fallback_for_scaphandre_is_left_out_for_prometheus_2(
    image: str, two: bool
) -> None:
    """Prometheus 3 refuses Scaphandre's scrape (no Content-Type) without
    fallback_scrape_protocol, and Prometheus 2 refuses that key: it goes by the tag."""
    assert _prometheus_2(image) is two
