"""Per-run energy figures against numbers computed by hand."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from greenflow.api import Metric, Sample, Window
from greenflow.errors import CollectorError
from greenflow.measure.attribution import compute_run_metrics, idle_power_from_baseline

MEASURE = Window(2.5, 8.5)  # 6 s, between samples on purpose


def _counter(
    metric: str,
    rate: float,
    method: str,
    labels: dict[str, str],
    *,
    host: str = "n1",
    since: float = 0.0,
    unit: str = "joules",
) -> list[Sample]:
    """A counter growing at ``rate`` per second from ``since`` (0 there), sampled each second."""
    return [
        Sample(float(t), metric, rate * (t - since), unit, method, host, labels)
        for t in range(int(since), 11)
    ]


def _rapl(host: str = "n1", package: float = 50.0, dram: float = 10.0) -> list[Sample]:
    return (
        _counter("energy_joules", package, "rapl", {"domain": "package-0"}, host=host)
        + _counter("energy_joules", dram, "rapl", {"domain": "dram-0"}, host=host)
        # core is inside the package: adding it would count it twice
        + _counter("energy_joules", 30.0, "rapl", {"domain": "core-0"}, host=host)
    )


def _cpu(host: str = "n1") -> list[Sample]:
    return (
        _counter("cpu_seconds", 1.5, "procfs", {"group": "host"}, host=host, unit="seconds")
        + _counter(
            "cpu_seconds", 0.75, "procfs", {"group": "service:kafka"}, host=host, unit="seconds"
        )
        + _counter(
            "cpu_seconds", 0.3, "procfs", {"group": "loadgen:ingest"}, host=host, unit="seconds"
        )
    )


def _find(
    metrics: Sequence[Metric], name: str, scope: str, group: str | None = None, host: str = "n1"
) -> Metric:
    found = [
        m
        for m in metrics
        if m.name == name
        and m.labels.get("scope") == scope
        and m.labels.get("group") == group
        and m.labels["host"] == host
    ]
    assert len(found) == 1, (name, scope, group, found)
    return found[0]


def test_host_idle_active_and_shares_match_hand_computation() -> None:
    """60 W over 6 s is 360 J; 40 W idle leaves 120 J active, split 50 % / 20 % / 30 % by CPU."""
    metrics = compute_run_metrics(_rapl() + _cpu(), MEASURE, {"n1": (40.0, "rapl")})
    expected = {
        ("energy_joules", "host", None): (360.0, "rapl", "joules"),
        ("mean_power_watts", "host", None): (60.0, "rapl", "watts"),
        ("idle_power_watts", "idle", None): (40.0, "rapl", "watts"),
        ("idle_energy_joules", "idle", None): (240.0, "rapl", "joules"),
        ("active_energy_joules", "host", None): (120.0, "rapl", "joules"),
        ("cpu_seconds", "host", "host"): (9.0, "procfs", "seconds"),
        ("energy_joules", "service", "service:kafka"): (60.0, "rapl+cpu-share", "joules"),
        ("cpu_seconds", "service", "service:kafka"): (4.5, "procfs", "seconds"),
        ("energy_joules", "loadgen", "loadgen:ingest"): (24.0, "rapl+cpu-share", "joules"),
        ("cpu_seconds", "loadgen", "loadgen:ingest"): (1.8, "procfs", "seconds"),
        ("energy_joules", "other", None): (36.0, "rapl+cpu-share", "joules"),
        ("cpu_seconds", "other", None): (2.7, "procfs", "seconds"),
    }
    assert len(metrics) == len(expected)
    for (name, scope, group), (value, method, unit) in expected.items():
        m = _find(metrics, name, scope, group)
        assert (m.value, m.method, m.unit) == (pytest.approx(value), method, unit), m
        assert "idle" not in m.labels


def test_without_baseline_active_is_total_and_says_so() -> None:
    """No idle power: active energy is the host energy, shares split it, labelled unmeasured."""
    metrics = compute_run_metrics(_rapl() + _cpu(), MEASURE, None)
    assert not [m for m in metrics if m.labels["scope"] == "idle"]
    active = _find(metrics, "active_energy_joules", "host")
    assert (active.value, active.labels["idle"]) == (pytest.approx(360.0), "unmeasured")
    kafka = _find(metrics, "energy_joules", "service", "service:kafka")
    assert (kafka.value, kafka.labels["idle"]) == (pytest.approx(180.0), "unmeasured")
    assert _find(metrics, "energy_joules", "other").labels["idle"] == "unmeasured"
    assert "idle" not in _find(metrics, "energy_joules", "host").labels


def test_idle_measured_with_another_method_is_not_subtracted() -> None:
    """An idle figure from a model is not subtracted from RAPL energy."""
    metrics = compute_run_metrics(_rapl(), MEASURE, {"n1": (40.0, "model:linear")})
    active = _find(metrics, "active_energy_joules", "host")
    assert (active.value, active.labels["idle"]) == (pytest.approx(360.0), "unmeasured")


def test_active_energy_below_idle_is_reported_as_is() -> None:
    """Noise can put a run under its baseline; the negative figure is kept, not clamped."""
    metrics = compute_run_metrics(_rapl(), MEASURE, {"n1": (61.0, "rapl")})
    assert _find(metrics, "active_energy_joules", "host").value == pytest.approx(-6.0)


def test_psys_alone_is_the_host_energy() -> None:
    """With psys present, packages and DRAM are not added to it."""
    samples = _rapl() + _counter("energy_joules", 80.0, "rapl", {"domain": "psys"})
    assert _find(compute_run_metrics(samples, MEASURE), "energy_joules", "host").value == (
        pytest.approx(480.0)
    )


def test_model_energy_carries_the_model_method_through_attribution() -> None:
    """A model's host series is the host energy; shares say model:linear+cpu-share."""
    samples = _counter("energy_joules", 20.0, "model:linear", {"domain": "host"}) + _cpu()
    metrics = compute_run_metrics(samples, MEASURE, {"n1": (5.0, "model:linear")})
    host = _find(metrics, "energy_joules", "host")
    assert (host.value, host.method) == (pytest.approx(120.0), "model:linear")
    kafka = _find(metrics, "energy_joules", "service", "service:kafka")
    assert (kafka.value, kafka.method) == (pytest.approx(45.0), "model:linear+cpu-share")


def test_rapl_is_preferred_to_a_model_on_the_same_host() -> None:
    """With RAPL and a model on one host, figures come from RAPL."""
    samples = _rapl() + _counter("energy_joules", 20.0, "model:linear", {"domain": "host"})
    host = _find(compute_run_metrics(samples, MEASURE), "energy_joules", "host")
    assert (host.value, host.method) == (pytest.approx(360.0), "rapl")


def test_group_that_appears_during_measure_counts_from_zero() -> None:
    """A load generator first seen at 4 s has used 0.3 s/s × 4.5 s by the end of MEASURE."""
    samples = (
        _rapl()
        + _counter("cpu_seconds", 1.5, "procfs", {"group": "host"}, unit="seconds")
        + _counter(
            "cpu_seconds", 0.3, "procfs", {"group": "loadgen:ingest"}, since=4, unit="seconds"
        )
    )
    metrics = compute_run_metrics(samples, MEASURE, None)
    assert _find(metrics, "cpu_seconds", "loadgen", "loadgen:ingest").value == (pytest.approx(1.35))
    assert _find(metrics, "energy_joules", "loadgen", "loadgen:ingest").value == (
        pytest.approx(360.0 * 1.35 / 9.0)
    )


def test_each_host_gets_its_own_figures() -> None:
    """Two hosts: energy and attribution stay per host."""
    samples = _rapl("n1") + _cpu("n1") + _rapl("n2", package=20.0, dram=5.0)
    metrics = compute_run_metrics(samples, MEASURE, None)
    assert _find(metrics, "energy_joules", "host", host="n2").value == pytest.approx(150.0)
    assert not [m for m in metrics if m.labels["host"] == "n2" and m.labels["scope"] == "other"]


def test_idle_power_from_baseline_is_mean_power_per_host() -> None:
    """Baseline energy over its duration gives each host's idle watts and method."""
    samples = _rapl("n1") + _counter(
        "energy_joules", 7.0, "model:linear", {"domain": "host"}, host="n2"
    )
    assert idle_power_from_baseline(samples, Window(1.0, 3.0)) == {
        "n1": (pytest.approx(60.0), "rapl"),
        "n2": (pytest.approx(7.0), "model:linear"),
    }


def test_missing_or_uncovering_energy_is_a_collector_error() -> None:
    """No energy samples, or samples that miss the window, raise CollectorError."""
    with pytest.raises(CollectorError, match="no energy samples"):
        compute_run_metrics(_cpu(), MEASURE)
    with pytest.raises(CollectorError, match="do not cover"):
        compute_run_metrics(_rapl(), Window(5.0, 12.0))


def test_groups_using_more_cpu_than_the_host_never_make_other_negative() -> None:
    """Groups read at 1.9 s/s of CPU on a host busy 1.5 s/s (reads a few ms apart): shares
    are scaled to add up to the host's, other is 0 J and 0 s, the excess is stored."""
    samples = (
        _rapl()
        + _counter("cpu_seconds", 1.5, "procfs", {"group": "host"}, unit="seconds")
        + _counter("cpu_seconds", 1.2, "procfs", {"group": "service:kafka"}, unit="seconds")
        + _counter("cpu_seconds", 0.7, "procfs", {"group": "loadgen:ingest"}, unit="seconds")
    )
    metrics = compute_run_metrics(samples, MEASURE, {"n1": (40.0, "rapl")})
    active = 360.0 - 40.0 * 6
    kafka = _find(metrics, "energy_joules", "service", "service:kafka")
    loadgen = _find(metrics, "energy_joules", "loadgen", "loadgen:ingest")
    assert kafka.value == pytest.approx(active * 1.2 / 1.9)
    assert loadgen.value == pytest.approx(active * 0.7 / 1.9)
    assert _find(metrics, "energy_joules", "other").value == pytest.approx(0.0, abs=1e-9)
    assert _find(metrics, "cpu_seconds", "other").value == pytest.approx(0.0, abs=1e-9)
    # The measured group seconds are kept as read; the discrepancy is a figure of its own.
    assert _find(metrics, "cpu_seconds", "service", "service:kafka").value == pytest.approx(7.2)
    assert _find(metrics, "cpu_excess_seconds", "other").value == pytest.approx(0.4 * 6)


def _wall(host: str = "n1", watts: float = 100.0) -> list[Sample]:
    return _counter(
        "energy_joules",
        watts,
        "kwollect:wattmeter",
        {"domain": "host", "source": "wall"},
        host=host,
    )


def test_wall_power_is_the_hosts_energy_and_rapl_is_cross_checked_against_it() -> None:
    """Measured at the plug (100 W) and by RAPL (package 50 W + dram 10 W): the host's
    energy is the wall's; energy_to_wall_ratio is RAPL's energy ÷ the wall's, 0.6."""
    metrics = compute_run_metrics(_rapl() + _wall(), MEASURE)
    assert _find(metrics, "energy_joules", "host").value == pytest.approx(600.0)
    assert _find(metrics, "energy_joules", "host").method == "kwollect:wattmeter"
    ratio = _find(metrics, "energy_to_wall_ratio", "host")
    assert ratio.value == pytest.approx(0.6)
    assert ratio.method == "rapl/kwollect:wattmeter" and ratio.labels["host"] == "n1"


def test_no_cross_check_against_a_model_or_without_a_wall() -> None:
    """A model is no instrument to check a wattmeter with; RAPL alone has nothing to be
    checked against."""
    model = _counter("energy_joules", 80.0, "model:linear", {"domain": "host"})
    assert not [m for m in compute_run_metrics(model + _wall(), MEASURE) if "wall" in m.name]
    assert not [m for m in compute_run_metrics(_rapl(), MEASURE) if "wall" in m.name]
