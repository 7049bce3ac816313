"""Retraining from the training store: the window, the labels known then, the gate."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from retraining.retrain import RetrainConfig, retrain_window, store_dataset, train_and_gate
from retraining.store_columns import feature_column
from retraining.training import TrainingOptions
from scoring.features.definitions import FEATURE_INDEX, FEATURE_NAMES

NOW = pd.Timestamp("2026-03-31 00:00", tz="UTC")


def store_frames(rows_per_day: int = 200, days: int = 30, seed: int = 3):
    """A store's scored rows (one fraud in 20, with a telling amount) and their labels."""
    rng = np.random.default_rng(seed)
    n = rows_per_day * days
    times = NOW - pd.to_timedelta(np.sort(rng.uniform(0, days, n))[::-1], unit="D")
    fraud = rng.random(n) < 0.05
    features = rng.normal(size=(n, len(FEATURE_NAMES)))
    features[:, FEATURE_INDEX["amount"]] += np.where(fraud, 3.0, 0.0)
    scored = pd.DataFrame({feature_column(n): features[:, i] for i, n in enumerate(FEATURE_NAMES)})
    scored["transaction_id"] = [f"tx-{i}" for i in range(n)]
    scored["event_time"] = times
    scored["card_id"] = [f"card-{i % 97}" for i in range(n)]
    labels = pd.DataFrame(
        {
            "transaction_id": scored.loc[fraud, "transaction_id"].to_numpy(),
            "is_fraud": True,
            "labelled_at": scored.loc[fraud, "event_time"] + pd.Timedelta(days=2),
        }
    )
    return scored, labels, fraud


def test_the_window_tests_on_mature_labels_and_trains_before_them() -> None:
    config = RetrainConfig(train_days=10, test_days=3, label_delay_days=7)
    window = retrain_window(NOW, config)
    day = pd.Timestamp
    assert (window.train_start, window.train_end, window.test_start, window.test_end) == (
        day("2026-03-11", tz="UTC"),
        day("2026-03-21", tz="UTC"),
        day("2026-03-21", tz="UTC"),
        day("2026-03-24", tz="UTC"),
    )


def test_rows_are_labelled_by_what_was_known_then() -> None:
    scored, labels, fraud = store_frames()
    config = RetrainConfig(train_days=10, test_days=3, label_delay_days=7)
    window = retrain_window(NOW, config)
    dataset = store_dataset(scored, labels, window, NOW)
    in_test = (scored.event_time >= window.test_start) & (scored.event_time < window.test_end)
    assert dataset.test.sum() == in_test.sum()
    assert dataset.test_labels.sum() == fraud[in_test.to_numpy()].sum()  # all known by now
    # a day earlier, the labels of the last two days of the test window had not come yet
    earlier = store_dataset(scored, labels, window, window.test_end)
    assert earlier.test_labels.sum() < dataset.test_labels.sum()


def test_an_empty_window_says_what_is_missing() -> None:
    scored, labels, _ = store_frames(days=5)
    window = retrain_window(NOW, RetrainConfig(label_delay_days=7))
    with pytest.raises(ValueError, match=r"the train window .* needs both labelled frauds"):
        store_dataset(scored, labels, window, NOW)


def test_the_gate_promotes_a_model_that_beats_a_useless_champion() -> None:
    scored, labels, _ = store_frames()
    config = RetrainConfig(
        train_days=15, test_days=5, label_delay_days=3,
        options=TrainingOptions(search_budget_seconds=0),  # each kind's default: fast
    )  # fmt: skip
    dataset = store_dataset(scored, labels, retrain_window(NOW, config), NOW)

    class Coin:  # a champion that knows nothing
        def predict_proba(self, rows: np.ndarray) -> np.ndarray:
            return np.random.default_rng(0).random(len(rows))

    result = train_and_gate(dataset, Coin(), config)  # type: ignore[arg-type]
    assert result.gate.promote
    challenger, champion = result.gate.challenger, result.gate.champion
    assert challenger["average_precision"] > 0.5 > champion["average_precision"]
    kept = train_and_gate(dataset, result.best.model, config)  # the same model: no gain
    assert not kept.gate.promote and "does not beat" in kept.gate.reason
    assert result.gate.interval[0] > 0 and kept.gate.interval == (0.0, 0.0)
