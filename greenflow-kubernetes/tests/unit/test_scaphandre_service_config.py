"""Settings of the Kubernetes ``scaphandre`` and ``prometheus`` services."""

from __future__ import annotations

import json

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


@pytest.mark.parametrize(
    ("url", "secret", "auth"),
    [
        (
            "https://writer:s3cret@vm.example/api/v1/write",
            {"username": "writer", "password": "s3cret"},
            {
                "username_file": "/etc/prometheus/secret/username",
                "password_file": "/etc/prometheus/secret/password",
            },
        ),
        (
            # A token given as the URL's user part: a secret too, and no password file.
            "https://T0KEN@vm.example/api/v1/write",
            {"username": "T0KEN"},
            {"username_file": "/etc/prometheus/secret/username"},
        ),
    ],
)
def test_remote_write_credentials_live_in_a_secret_only(
    url: str, secret: dict[str, str], auth: dict[str, str]
) -> None:
    """Neither the user part nor the password reaches the ConfigMap; Prometheus reads each
    from the mounted Secret, and no password file is named that the Secret lacks."""
    from greenflow_kubernetes import DEFAULT_ROLE_LABELS
    from greenflow_kubernetes.services.prometheus import PrometheusService, PrometheusServiceConfig
    from greenflow_kubernetes.session import KubeSession

    kube = KubeSession(None, namespace="gf-exp", experiment="exp", role_labels=DEFAULT_ROLE_LABELS)
    service = PrometheusService("prometheus", PrometheusServiceConfig(remote_write_url=url))
    objects = {o["kind"]: o for o in service.manifests(kube)}
    config_text = objects["ConfigMap"]["data"]["prometheus.yml"]
    for value in secret.values():
        assert value not in config_text
    assert objects["Secret"]["stringData"] == secret
    assert json.loads(config_text)["remote_write"] == [
        {"url": "https://vm.example/api/v1/write", "basic_auth": auth}
    ]
