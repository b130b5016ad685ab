"""attrs validators for Config classes whose errors name the key.

The message starts with ``<key>: `` so that a plan error reads
``plan.toml [workload] load: expected a number > 0, got -5``; use these (or raise the same
way) in plugin Config classes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sized
from typing import Any
from urllib.parse import urlsplit

import attrs

from greenflow.plan.quantities import cpu_cores, memory_bytes

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


def http_url(_inst: Any, attribute: attrs.Attribute[Any], value: str | None) -> None:
    """An ``http://`` or ``https://`` URL with a host (None passes). The message never
    repeats the URL's credentials."""
    if value is None:
        return
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        shown = parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()
        _fail(attribute, "an http(s)://host[:port] URL", shown)


def absolute_path(_inst: Any, attribute: attrs.Attribute[Any], value: str) -> None:
    """An absolute path (``/...``) on one line."""
    if not value.startswith("/") or "\n" in value:
        _fail(attribute, "an absolute path", value)


def non_empty(_inst: Any, attribute: attrs.Attribute[Any], value: Sized) -> None:
    """At least one item (a list, a table) or character."""
    if len(value) == 0:
        _fail(attribute, "at least one value", value)


_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


def label_name(_inst: Any, attribute: attrs.Attribute[Any], value: str) -> None:
    """A Prometheus label name (``[a-zA-Z_][a-zA-Z0-9_]*``)."""
    if not _LABEL_NAME.match(value):
        _fail(attribute, "a Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*)", value)


def cpu_quantity(_inst: Any, attribute: attrs.Attribute[Any], value: str) -> None:
    """A cpu amount in Kubernetes' notation (``"500m"``, ``"2"``), > 0."""
    try:
        cpu_cores(value)
    except ValueError as exc:
        raise ValueError(f"{attribute.name}: {exc}") from None


def memory_quantity(_inst: Any, attribute: attrs.Attribute[Any], value: str) -> None:
    """A memory size in Kubernetes' notation (``"512Mi"``, ``"2Gi"``), at least 1Mi."""
    try:
        memory_bytes(value)
    except ValueError as exc:
        raise ValueError(f"{attribute.name}: {exc}") from None
