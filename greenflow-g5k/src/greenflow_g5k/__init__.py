"""Grid'5000 for GreenFlow: reserve nodes through OAR, build a k3s cluster on them, measure
wall power with Kwollect, always release. docs/g5k.md has every setting."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("greenflow-g5k")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0"

__all__ = ["__version__"]
