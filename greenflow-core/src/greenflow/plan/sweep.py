"""Sweep axes: a list where a plugin's Config expects one value is an axis.

Runs are the cartesian product of all axes × repetitions. Axis names are the workload's
keys as written (``load``), a service's as ``<service>.<key>`` (``kafka.brokers``), and
keys of a table-valued field as ``<field>.<key>`` (``params.size``).
"""

from __future__ import annotations

import itertools
import types
import typing
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import attrs

_SEQUENCE_ORIGINS = {list, tuple, set, frozenset, Sequence, typing.Sequence}
_MAPPING_ORIGINS = {dict, Mapping, typing.Mapping}


def _field_types(cls: type) -> dict[str, Any]:
    if not attrs.has(cls):
        return {}
    attrs.resolve_types(cls)
    return {f.name: f.type for f in attrs.fields(cls)}


def _is_sequence_type(t: Any) -> bool:
    origin = typing.get_origin(t)
    if origin in (typing.Union, types.UnionType):  # Optional[list[int]]
        return any(_is_sequence_type(a) for a in typing.get_args(t) if a is not type(None))
    return (origin or t) in _SEQUENCE_ORIGINS


def _is_mapping_type(t: Any) -> bool:
    return (typing.get_origin(t) or t) in _MAPPING_ORIGINS


def _mapping_value_type(t: Any) -> Any:
    args = typing.get_args(t)
    return args[1] if len(args) == 2 else Any


@attrs.frozen
class Axis:
    """One sweep axis: where it lives in the raw table and its values."""

    name: str
    path: tuple[str, ...]
    values: tuple[Any, ...]


def find_axes(raw: Mapping[str, Any], cls: type, prefix: str = "") -> list[Axis]:
    """Axes in one plugin table, given its Config class."""
    types = _field_types(cls)
    axes = []
    for key, value in raw.items():
        t = types.get(key)
        if t is None:
            continue  # unknown keys are reported by structuring, not here
        if _is_mapping_type(t) and isinstance(value, Mapping):
            inner = _mapping_value_type(t)
            if _is_sequence_type(inner):
                continue
            for k, v in value.items():
                if isinstance(v, list):
                    axes.append(Axis(f"{prefix}{key}.{k}", (key, k), tuple(v)))
            continue
        if isinstance(value, list):
            if _is_sequence_type(t):
                # A list of lists for a list-typed field is an axis of lists.
                if value and all(isinstance(v, list) for v in value):
                    axes.append(Axis(f"{prefix}{key}", (key,), tuple(value)))
                continue
            axes.append(Axis(f"{prefix}{key}", (key,), tuple(value)))
    return axes


def apply_point(raw: Mapping[str, Any], point: Mapping[tuple[str, ...], Any]) -> dict[str, Any]:
    """A copy of ``raw`` with each axis path set to the point's value."""
    out: dict[str, Any] = {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in raw.items()}
    for path, value in point.items():
        target = out
        for part in path[:-1]:
            target = target[part]
        target[path[-1]] = value
    return out


def product(axes: Sequence[Axis]) -> Iterator[tuple[Any, ...]]:
    return itertools.product(*(a.values for a in axes))
