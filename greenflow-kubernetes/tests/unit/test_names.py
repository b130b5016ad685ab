"""Kubernetes naming rules."""

from __future__ import annotations

from greenflow_kubernetes import dns_label, label_value


def test_names_become_dns_labels_without_collisions() -> None:
    """Plan names that are not DNS labels are rewritten, with a hash when changed."""
    assert dns_label("kafka") == "kafka"
    rewritten = dns_label("Kafka_A")
    assert rewritten.startswith("kafka-a-") and len(rewritten) == len("kafka-a-") + 6
    assert dns_label("kafka_a") != dns_label("kafka-a")
    assert dns_label("1st")[0].isalpha()
    assert len(dns_label("k" * 100, 40)) <= 40
    assert len(dns_label("k" * 100)) <= 63


def test_label_values_keep_only_what_kubernetes_accepts() -> None:
    """A label value keeps [A-Za-z0-9._-], alphanumeric at both ends, at most 63 characters."""
    assert label_value("run #1/a") == "run-1-a"
    assert label_value("-x-") == "x"
    assert len(label_value("v" * 100)) == 63
    assert label_value("---") == "x"
