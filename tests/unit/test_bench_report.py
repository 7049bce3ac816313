"""The benchmark report replaces only what lies between its markers."""

from __future__ import annotations

from pathlib import Path

from tooling.bench import BenchResult
from tooling.bench_report import BEGIN, END, _table, write_between_markers


def test_the_report_replaces_its_block_and_keeps_the_text_around_it(tmp_path: Path) -> None:
    doc = tmp_path / "BENCHMARKS.md"
    doc.write_text(f"# Benchmarks\n\nintro\n\n{BEGIN}\nold numbers\n{END}\n\nanalysis\n")

    write_between_markers(doc, "new numbers\n")

    assert doc.read_text() == (
        f"# Benchmarks\n\nintro\n\n{BEGIN}\n\nnew numbers\n\n{END}\n\nanalysis\n"
    )


def test_without_markers_the_block_is_appended(tmp_path: Path) -> None:
    doc = tmp_path / "BENCHMARKS.md"
    doc.write_text("# Benchmarks\n\nby hand\n")

    write_between_markers(doc, "numbers\n")
    write_between_markers(doc, "numbers again\n")

    assert doc.read_text() == f"# Benchmarks\n\nby hand\n\n{BEGIN}\n\nnumbers again\n\n{END}\n"


def test_a_table_shows_value_unit_and_note() -> None:
    table = _table("Stream", [BenchResult("worker", 3240.04, "tx/s", "one process")])

    assert table.splitlines() == [
        "### Stream",
        "",
        "| measure | value |",
        "|---|---|",
        "| worker | 3,240.0 tx/s (one process) |",
    ]
