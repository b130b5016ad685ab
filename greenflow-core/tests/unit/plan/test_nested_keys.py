"""An unknown key inside a nested table (a list of tables, an optional table) lists the keys
valid *there*, not the section's top-level ones."""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest

from greenflow.plan.structure import PlanErrors, structure


@attrs.frozen
class Host:
    name: str
    port: int = 22


@attrs.frozen
class Gateway:
    address: str
    user: str = "root"


@attrs.frozen
class Section:
    hosts: list[Host] = attrs.field(factory=list)
    gateway: Gateway | None = None
    keep: bool = False


@pytest.mark.parametrize(
    ("raw", "where", "valid"),
    [
        ({"hosts": [{"name": "a"}, {"name": "b", "prot": 3}]}, "hosts[1]", "name, port"),
        ({"gateway": {"address": "g", "usr": "x"}}, "gateway", "address, user"),
        ({"kep": True}, "", "hosts, gateway, keep"),
    ],
)
def test_unknown_key_lists_the_keys_of_its_own_table(
    raw: dict[str, object], where: str, valid: str
) -> None:
    with pytest.raises(PlanErrors) as info:
        structure(raw, Section, path=Path("plan.toml"), section="platform")
    message = str(info.value)
    assert message.startswith(f"plan.toml [platform]{' ' + where if where else ''}: unknown key")
    assert message.endswith(f"valid keys: {valid}")


def test_a_misspelt_key_gets_the_nearest_valid_one() -> None:
    """Typos are the usual unknown key: the error names the key meant; a key near none
    gets no guess."""
    with pytest.raises(PlanErrors) as info:
        structure({"kep": True, "colour": 1}, Section, path=Path("plan.toml"), section="platform")
    assert "unknown key(s): colour, kep (did you mean keep?); valid keys:" in str(info.value)
