"""attrs validators for Config classes whose errors name the key.

The message starts with ``<key>: `` so that a plan error reads
``plan.toml [workload] load: expected a number > 0, got -5``; use these (or raise the same
way) in plugin Config classes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

Validator = Callable[[Any, "attrs.Attribute[Any]", Any], None]


def _fail(attribute: attrs.Attribute[Any], expected: str, value: Any) -> None:
    raise ValueError(f"{attribute.name}: expected {expected}, got {value!r}")


def positive(_inst: Any, attribute: attrs.Attribute[Any], value: float | None) -> None:
    """> 0 (None passes: use it on optional fields)."""
    if value is not None and not value > 0:
        _fail(attribute, "a number > 0", value)


def non_negative(_inst: Any, attribute: attrs.Attribute[Any], value: float | None) -> None:
    """≥ 0 (None passes)."""
    if value is not None and not value >= 0:
        _fail(attribute, "a number ≥ 0", value)


def fraction(_inst: Any, attribute: attrs.Attribute[Any], value: float) -> None:
    """In (0, 1]."""
    if not 0 < value <= 1:
        _fail(attribute, "a fraction in (0, 1]", value)


def at_least(minimum: int) -> Validator:
    """An integer ≥ ``minimum``."""

    def check(_inst: Any, attribute: attrs.Attribute[Any], value: int) -> None:
        if value < minimum:
            _fail(attribute, f"an integer ≥ {minimum}", value)

    return check


def one_of(*choices: Any) -> Validator:
    """Equal to one of ``choices`` (compared as strings, so 1 and "1" both match "1")."""

    def check(_inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if str(value) not in {str(c) for c in choices}:
            _fail(attribute, "one of " + ", ".join(repr(c) for c in choices), value)

    return check
