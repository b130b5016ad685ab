"""attrs validators for Config classes whose errors name the key.

The message starts with ``<key>: `` so that a plan error reads
``plan.toml [workload] load: expected a number > 0, got -5``; use these (or raise the same
way) in plugin Config classes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping, Sized
from typing import Any
from urllib.parse import urlsplit

import attrs

from greenflow.plan.quantities import cpu_cores, memory_bytes
from greenflow.store.redact import strip_userinfo

Validator = Callable[[Any, "attrs.Attribute[Any]", Any], None]


def _fail(attribute: attrs.Attribute[Any], expected: str, value: Any) -> None:
    raise ValueError(f"{attribute.name}: expected {expected}, got {value!r}")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def positive(_inst: Any, attribute: attrs.Attribute[Any], value: float | None) -> None:
    """A number > 0 (None passes: use it on optional fields)."""
    if value is not None and not (_is_number(value) and value > 0):
        _fail(attribute, "a number > 0", value)


def non_negative(_inst: Any, attribute: attrs.Attribute[Any], value: float | None) -> None:
    """A number ≥ 0 (None passes)."""
    if value is not None and not (_is_number(value) and value >= 0):
        _fail(attribute, "a number ≥ 0", value)


def fraction(_inst: Any, attribute: attrs.Attribute[Any], value: float) -> None:
    """In (0, 1]."""
    if not 0 < value <= 1:
        _fail(attribute, "a fraction in (0, 1]", value)


def at_least(minimum: int) -> Validator:
    """An integer ≥ ``minimum`` (not a float, not a bool)."""

    def check(_inst: Any, attribute: attrs.Attribute[Any], value: int) -> None:
        if not (_is_integer(value) and value >= minimum):
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
    try:
        parts = urlsplit(value)
        # Raises for a port that is no number: a raw "/" in a password makes
        # "http://user:pa/ss@host" read as host "user", port "pa".
        _port = parts.port
        ok = parts.scheme in ("http", "https") and bool(parts.hostname)
    except (TypeError, ValueError, AttributeError):  # not a string, or "http://[::1"
        ok = False
    if not ok:
        shown = strip_userinfo(value) if isinstance(value, str) else value
        _fail(attribute, "an http(s)://host[:port] URL", shown)


def absolute_path(_inst: Any, attribute: attrs.Attribute[Any], value: str) -> None:
    """An absolute path (``/...``) on one line."""
    if not value.startswith("/") or "\n" in value:
        _fail(attribute, "an absolute path", value)


def non_empty(_inst: Any, attribute: attrs.Attribute[Any], value: Sized) -> None:
    """At least one item (a list, a table) or character."""
    if len(value) == 0:
        _fail(attribute, "at least one value", value)


def regex(*, groups: int = 0, example: str | None = None) -> Validator:
    """A regular expression Python's :mod:`re` compiles, with at least ``groups`` capturing
    groups (None passes). ``example``, shown in the message, is a valid one."""
    expected = "a regular expression"
    if groups:
        expected += (
            " with a capturing group"
            if groups == 1
            else f" with at least {groups} capturing groups"
        )
    if example is not None:
        expected += f", e.g. '{example}'"  # as TOML writes it: a literal string, no escapes

    def check(_inst: Any, attribute: attrs.Attribute[Any], value: str | None) -> None:
        if value is None:
            return
        try:
            pattern = re.compile(value)
        except (re.error, TypeError) as exc:
            raise ValueError(
                f"{attribute.name}: expected {expected}, got {value!r} ({exc})"
            ) from None
        if pattern.groups < groups:
            _fail(attribute, expected, value)

    return check


def matches(pattern: str, what: str) -> Validator:
    """A string that ``pattern`` matches whole (None passes); ``what`` is what the message
    says is expected, e.g. ``"a namespace name (lower-case letters, digits and '-')"``."""
    compiled = re.compile(pattern)

    def check(_inst: Any, attribute: attrs.Attribute[Any], value: str | None) -> None:
        if value is not None and not (isinstance(value, str) and compiled.fullmatch(value)):
            _fail(attribute, what, value)

    return check


_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


def label_name(_inst: Any, attribute: attrs.Attribute[Any], value: str) -> None:
    """A Prometheus label name (``[a-zA-Z_][a-zA-Z0-9_]*``)."""
    if not (isinstance(value, str) and _LABEL_NAME.match(value)):
        _fail(attribute, "a Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*)", value)


def label_map(*, reserved: Collection[str] = (), why: str = "reserved") -> Validator:
    """A table of Prometheus label name → string value, e.g. ``{ lab = "rack-3" }``; the
    names in ``reserved`` are refused, ``why`` saying why (``"set on every series"``)."""

    def check(_inst: Any, attribute: attrs.Attribute[Any], value: Mapping[str, str]) -> None:
        for name, text in value.items():
            if not (isinstance(name, str) and _LABEL_NAME.match(name)):
                _fail(attribute, "Prometheus label names ([a-zA-Z_][a-zA-Z0-9_]*) as keys", name)
            if name in reserved:
                expected = f"label names other than {', '.join(reserved)} ({why})"
                _fail(attribute, expected, name)
            if not isinstance(text, str):
                raise ValueError(f"{attribute.name}.{name}: expected a string, got {text!r}")

    return check


# PromQL strings are double- or single-quoted with backslash escapes, or raw in backticks;
# a label name is an identifier or (Prometheus 3) a double-quoted UTF-8 string.
_QUOTED = r""""(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|`[^`]*`"""
_MATCHER = (
    rf"""\s*(?:[a-zA-Z_][a-zA-Z0-9_]*|"(?:[^"\\\n]|\\.)*")\s*(?:=~|!~|!=|=)\s*(?:{_QUOTED})\s*"""
)
_MATCHERS = re.compile(rf"\s*(?:{_MATCHER}(?:,{_MATCHER})*,?\s*)?")


def label_matchers(_inst: Any, attribute: attrs.Attribute[Any], value: str) -> None:
    """PromQL label matchers without the braces, e.g. ``job="scaphandre", node=~"n.*"``
    (``=``, ``!=``, ``=~``, ``!~``; empty passes). Only the syntax is checked: a regular
    expression is Prometheus' (RE2) to judge."""
    if not (isinstance(value, str) and _MATCHERS.fullmatch(value)):
        expected = 'PromQL label matchers without braces, e.g. \'job="scaphandre", node=~"n.*"\''
        _fail(attribute, expected, value)


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


def ratio(_inst: Any, attribute: attrs.Attribute[Any], value: float) -> None:
    """A number in [0, 1] (0 included: a threshold that 0 turns off)."""
    if not (_is_number(value) and 0 <= value <= 1):
        _fail(attribute, "a fraction in [0, 1]", value)
