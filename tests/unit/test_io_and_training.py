from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from retraining.io import (
    DataFileError,
    InvalidRows,
    check_labels,
    check_transactions,
    read_labels,
    read_transactions,
)
from retraining.training import TrainingOptions, TrainingWindow, build_dataset, train_candidates
from simulator.generator import SimulationConfig, simulate


def write_minimal(tmp_path: Path, rows: list[dict]) -> Path:
    path = tmp_path / "tx.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def row(**changes: object) -> dict:
    base = {"transaction_id": "a", "event_time": "2026-01-01T00:00:00Z", "card_id": "c",
            "terminal_id": "t", "amount": 1}  # fmt: skip
    return {key: value for key, value in {**base, **changes}.items() if value is not None}


def test_minimal_transaction_file_reads_with_optional_columns_empty(tmp_path: Path) -> None:
    path = write_minimal(
        tmp_path,
        [
            row(transaction_id="b", event_time="2026-01-02T10:00:00Z", amount=5),
            row(transaction_id="a", event_time="2026-01-01T10:00:00+02:00", amount=7.5),
        ],
    )
    frame = read_transactions(path)

    assert frame["transaction_id"].tolist() == ["a", "b"]  # event-time order
    assert str(frame["event_time"].iloc[0]) == "2026-01-01 08:00:00+00:00"
    assert frame["country"].isna().all() and frame["channel"].isna().all()


def test_labels_without_labelled_at_are_known_after_the_label_delay(tmp_path: Path) -> None:
    tx = write_minimal(tmp_path, [row()])
    labels = tmp_path / "labels.csv"
    pd.DataFrame({"transaction_id": ["a"], "is_fraud": [1]}).to_csv(labels, index=False)

    frame = read_labels(labels, read_transactions(tx), label_delay_days=7)

    assert frame.to_dict("records") == [
        {
            "transaction_id": "a",
            "is_fraud": True,
            "source": "chargeback",
            "labelled_at": pd.Timestamp("2026-01-08", tz="UTC"),
        }
    ]


def test_a_missing_required_column_is_refused_naming_it(outside_the_scan: Path) -> None:
    with pytest.raises(DataFileError, match=r"missing required column\(s\) transaction_id"):
        read_transactions(write_minimal(outside_the_scan, [row(transaction_id=None)]))


def test_zero_amounts_are_valid_rows(tmp_path: Path) -> None:
    frame = read_transactions(write_minimal(tmp_path, [row(amount=0), row(transaction_id="b")]))

    assert frame["amount"].tolist() == [0.0, 1.0]


def test_invalid_rows_are_named_with_their_row_numbers_and_reasons(outside_the_scan: Path) -> None:
    rows = [
        row(transaction_id="ok-1"),
        row(transaction_id="neg", amount=-1),
        row(transaction_id="pan", card_id="4111111111111111"),
        row(transaction_id="when", event_time="yesterday"),
        row(transaction_id="ok-2", amount=0),
        row(transaction_id="ok-1"),  # the id again
    ]
    path = write_minimal(outside_the_scan, rows)

    with pytest.raises(InvalidRows) as refused:
        read_transactions(path)
    checked = check_transactions(path)

    assert str(refused.value).splitlines()[:5] == [
        f"{path}: 4 of 6 rows are invalid",
        "  row 2: amount is negative",
        "  row 3: card_id looks like a full card number (send a token)",
        "  row 4: event_time is not an ISO 8601 time",
        "  row 6: transaction_id repeats an earlier row",
    ]
    assert checked.valid["transaction_id"].tolist() == ["ok-1", "ok-2"]
    assert checked.rejected["row"].tolist() == [2, 3, 4, 6]
    assert "4111111111111111" not in checked.rejected.to_csv()  # masked in the rejected rows


def test_a_row_dated_in_the_future_is_invalid(tmp_path: Path) -> None:
    now = pd.Timestamp("2026-12-07T09:00:00Z")
    path = write_minimal(
        tmp_path,
        [row(transaction_id="ok", event_time="2026-12-07T09:04:00Z"),
         row(transaction_id="ahead", event_time="9999-12-31T23:59:59Z")],
    )  # fmt: skip

    checked = check_transactions(path, now=now, max_future_skew_s=300)

    assert checked.rejected[["row", "reason"]].to_dict("records") == [
        {"row": 2, "reason": "event_time is in the future (beyond FRAUD_MAX_FUTURE_SKEW)"}
    ]


def test_invalid_label_rows_are_named(tmp_path: Path) -> None:
    tx = read_transactions(write_minimal(tmp_path, [row(), row(transaction_id="b")]))
    labels = tmp_path / "labels.csv"
    pd.DataFrame(
        {"transaction_id": ["a", "b"], "is_fraud": ["maybe", "1"], "labelled_at": ["", "soon"]}
    ).to_csv(labels, index=False)

    checked = check_labels(labels, tx, label_delay_days=7)

    assert checked.rejected[["row", "reason"]].to_dict("records") == [
        {"row": 1, "reason": "is_fraud is not true/false or 1/0"},
        {"row": 2, "reason": "labelled_at is not an ISO 8601 time"},
    ]
    assert checked.valid.empty


def test_lightgbm_beats_logistic_regression_on_a_time_ordered_test() -> None:
    simulation = simulate(SimulationConfig(seed=5, days=45, customers=1_000, terminals=500))
    transactions = simulation.transactions
    window = TrainingWindow.ending_at(transactions["event_time"].max())
    dataset = build_dataset(transactions, simulation.labels, window, label_delay_days=7)

    results = {
        r.kind: r.metrics
        for r in train_candidates(
            dataset,
            kinds=("logistic_regression", "lightgbm"),
            options=TrainingOptions(search_budget_seconds=0),
        )
    }

    assert (
        results["lightgbm"]["average_precision"]
        > results["logistic_regression"]["average_precision"]
    )
    assert np.isfinite(results["lightgbm"]["auc_roc"]) and results["lightgbm"]["auc_roc"] > 0.75
