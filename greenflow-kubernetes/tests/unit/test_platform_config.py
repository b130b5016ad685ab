"""Settings of the ``kubernetes`` platform, checked before any cluster is reached."""

from __future__ import annotations

import pytest

from greenflow_kubernetes import KubernetesConfig


@pytest.mark.parametrize("namespace", [None, "greenflow-demo", "team-a", "0ops", "a" * 63])
def test_a_valid_namespace_or_none_is_accepted(namespace: str | None) -> None:
    """A namespace name Kubernetes accepts, or None for the default, passes."""
    assert KubernetesConfig(namespace=namespace).namespace == namespace


@pytest.mark.parametrize("namespace", ["Team_A", "", "-a", "a-", "a.b", "a" * 64])
def test_a_namespace_kubernetes_would_refuse_is_refused_naming_the_key(namespace: str) -> None:
    """A namespace that is not an RFC 1123 label is refused with the key and the rule."""
    with pytest.raises(ValueError, match=r"^namespace: expected a namespace name \(lower-case"):
        KubernetesConfig(namespace=namespace)
