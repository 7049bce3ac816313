from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from retraining.io import DataFileError, read_labels, read_transactions
from retraining.training import TrainingWindow, build_dataset, train_candidates
from streams.simulator.generator import SimulationConfig, simulate


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


@pytest.mark.parametrize(
    ("bad_row", "message"),
    [
        (row(transaction_id=None), r"missing required column\(s\) transaction_id"),
        (row(amount=-1), "amount must be a positive number"),
        (row(card_id="4111111111111111"), "look like full card numbers"),
        (row(event_time="yesterday"), "event_time must be ISO 8601"),
    ],
)
def test_bad_transaction_files_are_refused_with_the_reason(
    outside_the_scan: Path, bad_row: dict, message: str
) -> None:
    with pytest.raises(DataFileError, match=message):
        read_transactions(write_minimal(outside_the_scan, [bad_row]))


def test_lightgbm_beats_logistic_regression_on_a_time_ordered_test() -> None:
    simulation = simulate(SimulationConfig(seed=5, days=45, customers=1_000, terminals=500))
    transactions = simulation.transactions
    window = TrainingWindow.ending_at(transactions["event_time"].max())
    dataset = build_dataset(transactions, simulation.labels, window, label_delay_days=7)

    results = {
        r.kind: r.metrics
        for r in train_candidates(dataset, kinds=("logistic_regression", "lightgbm"))
    }

    assert (
        results["lightgbm"]["average_precision"]
        > results["logistic_regression"]["average_precision"]
    )
    assert np.isfinite(results["lightgbm"]["auc_roc"]) and results["lightgbm"]["auc_roc"] > 0.75
