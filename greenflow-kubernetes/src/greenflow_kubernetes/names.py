"""Kubernetes naming rules: object names, label values, role label specs."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping


def dns_label(name: str, max_len: int = 63) -> str:
    """``name`` as an RFC 1035 label, valid for any object name (a Service's too): lower case,
    ``[a-z0-9-]``, starting with a letter, alphanumeric at the end, at most ``max_len``
    characters.

    A name kept as it is stays readable (``kafka`` → ``kafka``); a name that had to change
    gets a short hash of the original, so that two plan names (``kafka_a``, ``kafka-a``)
    never map to one object.
    """
    label = re.sub(r"[^a-z0-9-]+", "-", name.lower())
    label = re.sub(r"-{2,}", "-", label).strip("-")
    if not label or not label[0].isalpha():
        label = f"gf-{label}".rstrip("-")
    if label == name and len(label) <= max_len:
        return label
    digest = hashlib.sha256(name.encode()).hexdigest()[:6]
    return f"{label[: max_len - 7].rstrip('-')}-{digest}"


def label_value(text: str) -> str:
    """``text`` as a label value: ``[A-Za-z0-9._-]``, alphanumeric at both ends, ≤ 63."""
    out = re.sub(r"[^A-Za-z0-9._-]+", "-", text)
    out = out.strip("-._")[:63].rstrip("-._")
    return out or "x"


def split_role_label(spec: str) -> tuple[str, str | None]:
    """``"key=value"`` → (key, value); ``"key"`` → (key, None): any value but "false"."""
    key, sep, value = spec.partition("=")
    return key.strip(), (value.strip() if sep else None)


def carries(labels: Mapping[str, str], spec: str) -> bool:
    """Whether a node with ``labels`` carries the role whose label is ``spec``."""
    key, value = split_role_label(spec)
    if key not in labels:
        return False
    return labels[key] == value if value is not None else labels[key].lower() != "false"
