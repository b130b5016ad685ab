"""Quantities as plans write them (Kubernetes' notation), parsed to numbers."""

from __future__ import annotations

import pytest

from greenflow.plan.quantities import cpu_cores, memory_bytes, parse_quantity


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("2Gi", 2 * 2**30),
        ("512Mi", 512 * 2**20),
        ("1G", 1e9),
        ("500m", 0.5),
        ("1.5", 1.5),
        (3, 3.0),
        ("2k", 2000.0),
    ],
)
def test_quantities_parse_like_kubernetes(text: str | int, value: float) -> None:
    """Kubernetes quantities with binary, decimal and milli suffixes parse to numbers."""
    assert parse_quantity(text) == value


@pytest.mark.parametrize("text", ["2GB", "lots", "", "1e3", "-1"])
def test_bad_quantities_say_what_is_valid(text: str) -> None:
    """A malformed quantity is refused with examples of valid ones."""
    with pytest.raises(ValueError, match="Kubernetes quantity"):
        parse_quantity(text)


def test_memory_and_cpu_reject_nonsense() -> None:
    """Memory in millibytes or under 1Mi and zero cpu are refused."""
    with pytest.raises(ValueError, match="memory size"):
        memory_bytes("500m")
    with pytest.raises(ValueError, match="memory size"):
        memory_bytes("512")
    with pytest.raises(ValueError, match="cpu amount"):
        cpu_cores("0")
    assert memory_bytes("1Mi") == 2**20
    assert cpu_cores("250m") == 0.25
