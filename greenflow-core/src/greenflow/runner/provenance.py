"""Provenance: what this host is and what software ran, stored with every experiment."""

from __future__ import annotations

import os
import platform
import socket
import sys
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

import psutil


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def cpu_model() -> str:
    text = _read("/proc/cpuinfo") or ""
    for line in text.splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def rapl_domains(root: str = "/sys/class/powercap") -> list[str]:
    base = Path(root)
    if not base.is_dir():
        return []
    out = []
    for zone in sorted(base.glob("intel-rapl:*")):
        name = _read(str(zone / "name"))
        out.append(f"{zone.name}={name}")
    return out


def host_facts() -> dict[str, Any]:
    """CPU model, cores, memory, kernel, governor and RAPL domains of this host."""
    mem = psutil.virtual_memory()
    return {
        "hostname": socket.gethostname(),
        "cpu_model": cpu_model(),
        "cpu_logical": psutil.cpu_count(logical=True),
        "cpu_physical": psutil.cpu_count(logical=False),
        "memory_bytes": mem.total,
        "kernel": platform.release(),
        "os": _read("/etc/os-release") and _os_name(),
        "governor": _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor") or "unknown",
        "rapl_domains": rapl_domains(),
        "virtualised": _virtualised(),
    }


def _os_name() -> str:
    for line in (_read("/etc/os-release") or "").splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip('"')
    return "unknown"


def _virtualised() -> bool:
    return "hypervisor" in (_read("/proc/cpuinfo") or "")


def software(extra: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Python and every installed greenflow distribution, by version."""
    dists = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"] or ""
        if name.lower().startswith("greenflow"):
            dists[name] = dist.version
    return {
        "python": sys.version.split()[0],
        "python_executable": sys.executable,
        "distributions": dict(sorted(dists.items())),
        "pid": os.getpid(),
        **(extra or {}),
    }
