"""``python -m greenflow``: the same as the ``greenflow`` command."""

from __future__ import annotations

from greenflow.cli import main

if __name__ == "__main__":
    main(prog_name="greenflow")
