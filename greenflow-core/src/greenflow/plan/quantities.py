"""Sizes and amounts as plans write them, in Kubernetes' quantity notation (``"2Gi"``,
``"500m"``, ``"1.5"``), as numbers. ``plan.validators.cpu_quantity`` and
``memory_quantity`` check Config fields with them."""

from __future__ import annotations

import re

_QUANTITY_RE = re.compile(r"^([0-9]+(?:\.[0-9]+)?|\.[0-9]+)(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E|m)?$")
_FACTORS: dict[str, float] = {
    "": 1.0,
    "m": 1e-3,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "P": 1e15,
    "E": 1e18,
    "Ki": 2.0**10,
    "Mi": 2.0**20,
    "Gi": 2.0**30,
    "Ti": 2.0**40,
    "Pi": 2.0**50,
    "Ei": 2.0**60,
}
MIB = 2**20


def parse_quantity(text: str | int | float) -> float:
    """A Kubernetes quantity (``"2Gi"``, ``"500m"``, ``"1.5"``, ``2``) as a number; ValueError
    with what is valid otherwise. Exponent forms (``1e3``) are not accepted."""
    m = _QUANTITY_RE.match(str(text).strip())
    if m is None:
        msg = (
            f"{text!r} is not a Kubernetes quantity (a number with an optional suffix "
            'Ki, Mi, Gi, Ti, k, M, G, T or m, e.g. "2Gi", "500m")'
        )
        raise ValueError(msg)
    return float(m.group(1)) * _FACTORS[m.group(2) or ""]


def memory_bytes(text: str | int) -> int:
    """A memory quantity in bytes (at least 1 MiB: anything smaller is a typo)."""
    value = parse_quantity(text)
    if str(text).strip().endswith("m") or value < MIB:
        msg = f'{text!r} is not a memory size of at least 1Mi (write e.g. "2Gi" or "512Mi")'
        raise ValueError(msg)
    return int(value)


def cpu_cores(text: str | int | float) -> float:
    """A cpu quantity in cores (``"500m"`` → 0.5), > 0."""
    value = parse_quantity(text)
    if value <= 0:
        msg = f'{text!r} is not a cpu amount > 0 (write e.g. "2" or "500m")'
        raise ValueError(msg)
    return value
