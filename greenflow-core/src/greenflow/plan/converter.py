"""The one cattrs converter every plan section and plugin Config goes through.

Strict on purpose: a plan that says ``load = "fast"`` or ``load = 1.5`` for an int, or a
key the Config doesn't have, is an error naming the TOML path, not a silent coercion.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any

import attrs
import cattrs
from cattrs import transform_error
from cattrs.cols import homogenous_tuple_structure_factory, is_sequence, list_structure_factory

from greenflow.plan.durations import Duration, parse_duration


def _describe(value: Any) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    return repr(value)


def _strict_int(value: Any, _t: type) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"expected an integer, got {_describe(value)}")
    return value


def _strict_float(value: Any, _t: type) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"expected a number, got {_describe(value)}")
    return float(value)


def _strict_str(value: Any, _t: type) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {_describe(value)}")
    return value


def _strict_bool(value: Any, _t: type) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {_describe(value)}")
    return value


_PRIMITIVES = (bool, int, float, str)


def _is_primitive_union(t: Any) -> bool:
    args = typing.get_args(t)
    return (
        typing.get_origin(t) in (typing.Union, types.UnionType)
        and bool(args)
        and all(a in _PRIMITIVES for a in args)
    )


def _primitive_union(value: Any, t: Any) -> Any:
    """A value of a union of primitives must be one of them as written (no coercion)."""
    args = typing.get_args(t)
    if isinstance(value, bool):
        if bool in args:
            return value
    elif isinstance(value, int) and int in args:
        return value
    elif isinstance(value, int | float) and float in args:
        return float(value)
    elif isinstance(value, str) and str in args:
        return value
    names = " or ".join(
        {bool: "true/false", int: "an integer", float: "a number", str: "a string"}[a] for a in args
    )
    raise ValueError(f"expected {names}, got {_describe(value)}")


def _is_literal(t: Any) -> bool:
    return typing.get_origin(t) is typing.Literal


def _literal(value: Any, t: Any) -> Any:
    allowed = typing.get_args(t)
    if value in allowed and type(value) in {type(a) for a in allowed}:
        return value
    options = ", ".join(_describe(a) for a in allowed)
    raise ValueError(f"expected one of {options}, got {_describe(value)}")


def _is_list(t: Any) -> bool:
    return is_sequence(t) and typing.get_origin(t) is not tuple


def _is_homogeneous_tuple(t: Any) -> bool:
    args = typing.get_args(t)
    return typing.get_origin(t) is tuple and len(args) == 2 and args[1] is Ellipsis


def _no_text(
    factory: Callable[[Any, cattrs.Converter], Callable[[Any, Any], Any]],
) -> Callable[[Any, cattrs.Converter], Callable[[Any, Any], Any]]:
    """cattrs' own list (or tuple) hook, but a string or a table is an error: iterating
    ``groups = "service:*"`` would make a list of its characters."""

    def make(t: Any, conv: cattrs.Converter) -> Callable[[Any, Any], Any]:
        structure = factory(t, conv)

        def hook(value: Any, type_: Any) -> Any:
            if isinstance(value, str | bytes | Mapping):
                example = f'["{value}"]' if isinstance(value, str) else "[...]"
                raise ValueError(f"expected a list, e.g. {example}, got {_describe(value)}")
            return structure(value, type_)

        return hook

    return make


def make_converter() -> cattrs.Converter:
    conv = cattrs.Converter(forbid_extra_keys=True)
    conv.register_structure_hook(int, _strict_int)
    conv.register_structure_hook(float, _strict_float)
    conv.register_structure_hook(str, _strict_str)
    conv.register_structure_hook(bool, _strict_bool)
    conv.register_structure_hook(Duration, lambda v, _t: parse_duration(v))
    conv.register_structure_hook_func(_is_primitive_union, _primitive_union)
    conv.register_structure_hook_func(_is_literal, _literal)
    conv.register_structure_hook_factory(_is_list, _no_text(list_structure_factory))
    conv.register_structure_hook_factory(
        _is_homogeneous_tuple, _no_text(homogenous_tuple_structure_factory)
    )
    conv.register_unstructure_hook(Duration, float)
    return conv


converter = make_converter()


def _format_exception(exc: BaseException, type_: type | None) -> str:
    if isinstance(exc, KeyError):
        return "required key missing"
    if isinstance(exc, cattrs.ForbiddenExtraKeysError):
        unknown = sorted(exc.extra_fields)
        valid = [f.name for f in attrs.fields(exc.cl)] if attrs.has(exc.cl) else []
        near = [m[0] for k in unknown if (m := difflib.get_close_matches(k, valid, n=1))]
        guess = f" (did you mean {', '.join(near)}?)" if near else ""
        return f"unknown key(s): {', '.join(unknown)}{guess}"
    if isinstance(exc, ValueError | TypeError) and str(exc):
        return str(exc)
    name = getattr(type_, "__name__", str(type_))
    return f"invalid value, expected {name}"


def structure_errors(exc: Exception) -> list[tuple[str, str]]:
    """Turn a cattrs error into (dotted path, message) pairs; path "" is the table itself."""
    out = []
    for line in transform_error(exc, path="$", format_exception=_format_exception):
        message, _, path = line.rpartition(" @ ")
        out.append((path.removeprefix("$").removeprefix("."), message))
    return out
