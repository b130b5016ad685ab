"""Durations as plans write them: "30s", "2m", "1h", "500ms", "1m30s", or a number of seconds."""

from __future__ import annotations

import re

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")


class Duration(float):
    """Seconds, as a float; a plan may write it as ``"30s"``, ``"2m"`` or ``"1m30s"``."""

    def __repr__(self) -> str:
        return f"Duration({float(self)!r})"


def parse_duration(value: object) -> Duration:
    """Parse a duration; raise ValueError saying what is accepted."""
    if isinstance(value, bool):
        raise ValueError(f'expected a duration like "30s" or "2m", got {value!r}')
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"expected a duration ≥ 0, got {value!r}")
        return Duration(value)
    if isinstance(value, str):
        text = value.strip().replace(" ", "")
        pos, total = 0, 0.0
        for match in _PART.finditer(text):
            if match.start() != pos:
                break
            total += float(match.group(1)) * _UNITS[match.group(2)]
            pos = match.end()
        if text and pos == len(text):
            return Duration(total)
    raise ValueError(f'expected a duration like "30s", "2m", "1m30s" or "500ms", got {value!r}')


def format_duration(seconds: float) -> str:
    if seconds >= 60 and seconds % 60 == 0:
        return f"{int(seconds // 60)}m"
    return f"{seconds:g}s"
