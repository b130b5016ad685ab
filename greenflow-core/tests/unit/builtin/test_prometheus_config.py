"""The prometheus collector's plan section and the pure parts of turning series into samples."""

from __future__ import annotations

from pathlib import Path

import pytest

from greenflow.builtin.prometheus import (
    PrometheusCollector,
    PrometheusCollectorConfig,
    _host,
    _monotonic,
    _unit,
)
from greenflow.errors import PlanError
from greenflow.plan import load_plan

URL = "http://127.0.0.1:9090"


def test_energy_queries_need_a_method() -> None:
    """Energy or power queries with the default method are refused, naming them and the fix."""
    with pytest.raises(
        ValueError, match=r"host_energy_joules, host_power_watts .*method = \"scaphandre\""
    ):
        PrometheusCollectorConfig(
            url=URL, queries={"host_power_watts": "a", "host_energy_joules": "b"}
        )
    config = PrometheusCollectorConfig(
        url=URL, method="scaphandre", queries={"host_power_watts": "a"}
    )
    assert config.method == "scaphandre"


def test_other_queries_need_no_method() -> None:
    """A collector of non-energy series (throughput, CPU) keeps the default method."""
    config = PrometheusCollectorConfig(url=URL, queries={"in_bytes_per_s": "rate(x[1m])"})
    assert config.method == "prometheus"


@pytest.mark.parametrize(
    "name", ["host_power", "power_watt", "Host_power_watts", "watts", "x_joules_per_hour"]
)
def test_query_names_must_end_with_a_unit(name: str) -> None:
    """A query name without a known unit at its end is refused with examples."""
    with pytest.raises(
        ValueError, match=r"does not end with its unit; name it like host_power_watts"
    ):
        PrometheusCollectorConfig(url=URL, method="m", queries={name: "up"})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"url": "localhost:9090"}, r"url: expected an http\(s\)://host"),
        ({"queries": {}}, r"queries: empty"),
        ({"queries": {"up_ratio": " "}}, r"'up_ratio' has an empty PromQL query"),
        ({"step_s": 0.0}, r"step_s: expected a number > 0"),
        ({"timeout_s": -1.0}, r"timeout_s: expected a number > 0"),
    ],
)
def test_bad_values_are_refused_naming_the_field(kwargs: dict[str, object], message: str) -> None:
    """Each invalid field is refused with its name and what is valid."""
    values: dict[str, object] = {"url": URL, "queries": {"up_ratio": "up"}, **kwargs}
    with pytest.raises(ValueError, match=message):
        PrometheusCollectorConfig(**values)


def test_url_trailing_slash_is_dropped() -> None:
    """``http://h:9090/`` and ``http://h:9090`` are the same server."""
    assert PrometheusCollectorConfig(url=URL + "/", queries={"up_ratio": "up"}).url == URL


@pytest.mark.parametrize(
    ("name", "unit"),
    [
        ("host_power_watts", "watts"),
        ("host_energy_joules", "joules"),
        ("rapl_energy_joules_total", "joules"),
        ("broker_in_bytes_per_s", "bytes/s"),
        ("produced_messages_per_s", "messages/s"),
        ("cpu_seconds_total", "seconds"),
    ],
)
def test_unit_comes_from_the_name(name: str, unit: str) -> None:
    """A sample's unit repeats the unit its metric name ends with."""
    assert _unit(name) == unit


@pytest.mark.parametrize(
    ("labels", "host"),
    [
        ({"instance": "node-1:9100"}, "node-1"),
        ({"instance": "10.0.0.7:8080"}, "10.0.0.7"),
        ({"instance": "[::1]:9090"}, "::1"),
        ({"instance": "node-2"}, "node-2"),
        ({"job": "x"}, "prometheus"),
    ],
)
def test_host_is_the_instance_without_its_port(labels: dict[str, str], host: str) -> None:
    """host comes from the instance label, port dropped; "prometheus" without one."""
    assert _host(labels) == host


def test_counter_resets_are_undone_like_increase() -> None:
    """After a drop the counter continues from where it was, as if it restarted at zero."""
    points = [(0.0, 100.0), (1.0, 150.0), (2.0, 20.0), (3.0, 70.0), (4.0, 5.0)]
    assert _monotonic(points) == [
        (0.0, 100.0),
        (1.0, 150.0),
        (2.0, 170.0),
        (3.0, 220.0),
        (4.0, 225.0),
    ]


def test_describe_hides_the_url_password() -> None:
    """describe() (stored as provenance) never carries the credentials of the URL."""
    config = PrometheusCollectorConfig(
        url="https://reader:s3cret@prom.example:9090", queries={"up_ratio": "up"}
    )
    described = PrometheusCollector("p", config).describe()
    assert "s3cret" not in repr(described)
    assert described["url"] == "https://prom.example:9090"


PLAN = """
[experiment]
name = "p"

[platform]
type = "local"

[workload]
type = "command"
command = "true"

[[collectors]]
type = "prometheus"
url = "http://127.0.0.1:9090"
queries = {{ host_power_watts = "scaph_host_power_microwatts / 1e6" }}
{extra}
"""


def test_plan_error_names_the_collector_table_and_key(tmp_path: Path) -> None:
    """In a plan, a missing method for power queries is an error at [collectors.0] method."""
    plan = tmp_path / "plan.toml"
    plan.write_text(PLAN.format(extra=""))
    with pytest.raises(
        PlanError, match=r"plan.toml \[collectors.0\] method: queries host_power_watts"
    ):
        load_plan(plan)
    plan.write_text(PLAN.format(extra='method = "scaphandre"'))
    (collector,) = load_plan(plan).collectors
    assert collector.cls is PrometheusCollector
