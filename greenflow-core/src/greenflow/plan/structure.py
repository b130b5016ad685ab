"""Plan sections into Config classes, with errors that name the file, section and key."""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import cattrs

from greenflow.errors import PlanError
from greenflow.plan.converter import converter, structure_errors


class PlanErrors(PlanError):
    """Several problems in one plan, reported together so a user fixes them in one go."""

    def __init__(self, path: Path, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        lines = [f"{path}: {len(problems)} problem(s) in the plan:"] if len(problems) > 1 else []
        lines += [f"{p}" for p in problems]
        super().__init__("\n".join(lines))


def where_in_plan(path: Path, section: str, key: str = "") -> str:
    """``plan.toml [section] key``: where a problem is, as every plan error starts."""
    return f"{path.name} [{section}]" + (f" {key}" if key else "")


def structure(
    raw: Mapping[str, Any], cls: type, *, path: Path, section: str, hint: str = ""
) -> Any:
    """Structure ``raw`` into ``cls`` or raise PlanErrors naming each bad key."""
    try:
        return converter.structure(dict(raw), cls)
    except (cattrs.BaseValidationError, ValueError, TypeError) as exc:
        problems = []
        if isinstance(exc, cattrs.BaseValidationError):
            pairs = structure_errors(exc)
        else:
            pairs = [("", str(exc))]
        pairs = [_key_from_message(key, message, cls) for key, message in pairs]
        for key, message in pairs:
            if message.startswith("unknown key(s)"):
                valid = ", ".join(_field_names(_class_at(cls, key)))
                message += f"; valid keys: {valid}"
            problems.append(f"{where_in_plan(path, section, key)}: {message}{hint}")
        raise PlanErrors(path, problems) from exc


def _key_from_message(key: str, message: str, cls: type) -> tuple[str, str]:
    """An attrs validator raising inside ``__init__`` has no path; ours start their
    message with ``<key>: `` (greenflow.plan.validators), which gives it back."""
    head, sep, rest = message.partition(": ")
    if not key and sep and head in _field_names(cls):
        return head, rest
    return key, message


def _field_names(cls: type | None) -> list[str]:
    return [f.name for f in attrs.fields(cls)] if cls is not None and attrs.has(cls) else []


def _class_at(cls: type, key: str) -> type | None:
    """The attrs class a dotted path (``hosts[0]``, ``a.b``) in ``cls`` leads to, through
    lists, tuples, dicts and optionals: the table whose keys an unknown key is among."""
    here: Any = cls
    for part in re.findall(r"[^.\[\]]+|\[[^\]]*\]", key):
        if part.startswith("["):
            here = _element(here)
            continue
        if not (isinstance(here, type) and attrs.has(here)):
            return None
        try:  # annotations are strings under `from __future__ import annotations`
            hints = typing.get_type_hints(here)
        except (NameError, TypeError):
            return None
        if part not in hints:
            return None
        here = _unwrap(hints[part])
    return here if isinstance(here, type) and attrs.has(here) else None


def _unwrap(tp: Any) -> Any:
    """``X | None`` → ``X``; anything else as is."""
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    if typing.get_origin(tp) in (typing.Union, types.UnionType) and len(args) == 1:
        return args[0]
    return tp


def _element(tp: Any) -> Any:
    """The element type of a list, tuple, set or dict annotation (its value for a dict)."""
    args = typing.get_args(_unwrap(tp))
    return _unwrap(args[-1]) if args else None
