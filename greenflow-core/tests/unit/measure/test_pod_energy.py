"""Per-pod energy over MEASURE from the scaphandre collector's cumulative pod series."""

from __future__ import annotations

from greenflow.api import Sample, Window
from greenflow.measure.attribution import compute_run_metrics


def _series(metric: str, labels: dict[str, str], watts: float) -> list[Sample]:
    return [
        Sample(float(t), metric, watts * t, "joules", "scaphandre", "node-a", labels)
        for t in range(0, 11)
    ]


def test_pod_energy_is_the_counter_difference_over_measure() -> None:
    """A pod at 5 W over a 4 s MEASURE gets 20 J, scope pod, method scaphandre."""
    samples = [
        *_series("energy_joules", {"domain": "host"}, 50.0),
        *_series("pod_energy_joules", {"pod": "kafka-0", "namespace": "gf"}, 5.0),
    ]
    metrics = compute_run_metrics(samples, Window(3.0, 7.0), None)
    pods = [m for m in metrics if m.labels.get("scope") == "pod"]
    assert len(pods) == 1
    (pod,) = pods
    assert pod.name == "energy_joules" and pod.method == "scaphandre"
    assert abs(pod.value - 20.0) < 1e-9
    assert pod.labels["pod"] == "kafka-0" and pod.labels["namespace"] == "gf"


def test_a_pod_not_covering_measure_gets_no_figure() -> None:
    """A pod series that starts after MEASURE began gives no (dishonest) partial figure."""
    late = [s for s in _series("pod_energy_joules", {"pod": "p"}, 5.0) if s.timestamp >= 5]
    samples = [*_series("energy_joules", {"domain": "host"}, 50.0), *late]
    metrics = compute_run_metrics(samples, Window(3.0, 7.0), None)
    assert not [m for m in metrics if m.labels.get("scope") == "pod"]
