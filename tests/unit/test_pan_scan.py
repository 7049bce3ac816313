"""The card-number scan finds a number in a log or a Parquet column, reports it masked, and
does not mistake timestamps or model decimals for one."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from streams.pan_scan import Finding, input_topic, scan_files


def test_a_card_number_in_a_log_or_a_parquet_file_is_found_and_reported_masked(
    outside_the_scan: Path,
) -> None:
    root = outside_the_scan
    (root / "logs").mkdir()
    (root / "logs" / "worker.log").write_text("dead letter: card 5500-0000-0000-0004\n")
    pd.DataFrame({"card_id": ["card-1", "4111111111111111"], "amount": [1.0, 2.0]}).to_parquet(
        root / "store.parquet"
    )
    (root / "model.txt").write_text("leaf_value=0.4111111111111111 1795724516696 card-42\n")
    (root / "skipped.log").write_text("4111111111111111")

    report = scan_files([root], skip=lambda path: path.name == "skipped.log")

    assert report.files == 3
    assert sorted(report.findings, key=lambda f: f.where) == [
        Finding(str(root / "logs" / "worker.log"), "************0004"),
        Finding(str(root / "store.parquet"), "************1111"),
    ]
    assert "4111111111111111" not in repr(report)


def test_input_topics_are_where_producers_write_with_any_prefix() -> None:
    assert input_topic("transactions") and input_topic("it1234.labels")
    assert not input_topic("transactions.scored") and not input_topic("it1234.transactions.dlq")
    assert not input_topic("drift.reports")
