"""greenflow.api.processes: the last lines of a log, for the end of an error message."""

from __future__ import annotations

from pathlib import Path

from greenflow.api.processes import tail, tail_block, tail_text


def test_tail_reads_the_last_lines(tmp_path: Path) -> None:
    """tail() returns the last lines of a log, and nothing for a missing file."""
    log = tmp_path / "x.log"
    log.write_text("".join(f"line {i}\n" for i in range(100)))
    assert tail(log, 3) == ["line 97", "line 98", "line 99"]
    assert tail(tmp_path / "missing.log") == []


def test_tail_reads_only_the_end_of_a_large_log(tmp_path: Path) -> None:
    """A log larger than 64 KiB still gives its last lines (only its end is read)."""
    log = tmp_path / "big.log"
    log.write_text("x" * 200_000 + "\nlast\n")
    assert tail(log, 1) == ["last"]


def test_tail_text_skips_blank_lines() -> None:
    """tail_text() keeps the last non-blank lines of output already in memory."""
    assert tail_text("a\n\nb\n  \nc\n\n", 2) == ["b", "c"]
    assert tail_text("") == []


def test_tail_block_names_the_log_and_indents_its_lines(tmp_path: Path) -> None:
    """tail_block() says how many lines of which log follow, and says so when there is none."""
    log = tmp_path / "x.log"
    log.write_text("one\ntwo\n")
    assert tail_block(log) == f"last 2 lines of {log}:\n  one\n  two"
    assert tail_block(tmp_path / "none.log") == f"(log {tmp_path / 'none.log'} is empty or missing)"
