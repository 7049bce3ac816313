"""The card-number scan finds a number in a log or a Parquet column, reports it masked, and
does not mistake timestamps or model decimals for one."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pandas as pd

from schemas.pan import _PAN_IN_DATA
from tooling.pan_scan import Finding, input_topic, scan_files


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


# the definition as first written: assertions first, the digits after (slow: tried at every byte)
_READABLE = re.compile(
    rb"(?<![\w.])(?<!\d[ -])(?:[2-6]\d{12,18}"
    rb"|[2-6]\d{3}([ -])\d{4}\1\d{4}\1\d{1,4}(?:\1\d{1,3})?"
    rb"|3\d{3}([ -])\d{6}\2\d{5})(?![\w.])(?![ -]\d)"
)


def test_the_fast_card_number_pattern_matches_exactly_what_the_readable_one_does() -> None:
    rng = random.Random(7)
    alphabet = b'0123456789    --..abx"{}:,'
    samples = [
        bytes(rng.choice(alphabet) for _ in range(rng.randint(1, 60))) for _ in range(20_000)
    ]
    for pan in (b"4111111111111111", b"4111 1111 1111 1111", b"4111-1111-1111-1111-123",
                b"3782 822463 10005", b"3782-822463-10005", b"2223000048400011"):  # fmt: skip
        for before in (b"", b" ", b".", b"a", b"1 ", b"x-", b'"', b"9"):
            samples += [before + pan + after for after in (b"", b" ", b".", b"a", b" 1", b'"')]

    def spans(pattern: re.Pattern[bytes], raw: bytes) -> list[tuple[int, int]]:
        return [match.span() for match in pattern.finditer(raw)]

    differ = [raw for raw in samples if spans(_PAN_IN_DATA, raw) != spans(_READABLE, raw)]
    assert differ == []
    assert sum(bool(spans(_PAN_IN_DATA, raw)) for raw in samples) == 77  # seeded: not vacuous
    assert all(spans(_PAN_IN_DATA, pan) == [(0, len(pan))] for pan in samples[20_000::48])
