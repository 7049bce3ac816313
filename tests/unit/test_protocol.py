"""The evaluation protocol, its metrics, the budget thresholds and the gate, on hand-made
examples with exact expected values."""

from __future__ import annotations

import numpy as np
import pandas as pd

from retraining.gate import promotion_gate
from retraining.metrics import card_precision_at_k
from retraining.protocol import Period, Protocol
from retraining.search import DEFAULTS, search
from retraining.training import TrainingWindow, fold_labels, plan_folds

DAY0 = pd.Timestamp("2026-01-01", tz="UTC")


def day(n: float) -> pd.Timestamp:
    return DAY0 + pd.Timedelta(days=n)


def test_folds_move_the_final_layout_back_a_week_at_a_time() -> None:
    protocol = Protocol(validation_days=7, folds=3, fold_shift_days=7)
    # final: train days 30..51, wait 7, test 58..65
    folds = protocol.folds_before(Period(day(30), day(51)), day(58), first_event=day(0))

    assert [(f.name, f.train.start, f.train.end, f.evaluate.start, f.evaluate.end)
            for f in folds] == [
        ("fold1", day(16), day(37), day(44), day(51)),
        ("fold2", day(9), day(30), day(37), day(44)),
        ("fold3", day(2), day(23), day(30), day(37)),
    ]  # fmt: skip
    # each fold's training labels as known when its validation begins; validation labels
    # as known when the final model trains
    assert [f.train_labels_known_at for f in folds] == [day(44), day(37), day(30)]
    assert {f.labels_known_at for f in folds} == {day(58)}


def test_a_fold_that_would_train_before_the_history_is_left_out() -> None:
    folds = Protocol(folds=3).folds_before(Period(day(30), day(51)), day(58), day(5))

    assert [f.name for f in folds] == ["fold1", "fold2"]  # fold3 would train from day 2


def test_a_history_too_short_for_any_fold_validates_on_a_hold_out() -> None:
    transactions = pd.DataFrame({"event_time": [day(10), day(40)]})
    window = TrainingWindow(day(20), day(34), day(41), day(48))

    (fold,) = plan_folds(transactions, window, Protocol(validation_days=7))

    assert (fold.name, fold.train, fold.evaluate) == (
        "holdout", Period(day(20), day(27)), Period(day(27), day(34)),
    )  # fmt: skip


def test_fold_labels_count_only_what_was_known_at_each_moment() -> None:
    transactions = pd.DataFrame(
        {
            "transaction_id": ["a", "b", "c"],
            "event_time": [day(2), day(3), day(31)],
            "card_id": ["c1", "c2", "c3"],
        }
    )
    labels = pd.DataFrame(
        {
            "transaction_id": ["a", "b", "c"],
            "is_fraud": [True, True, True],
            # a's label came before validation began, b's after; c's after the training
            "labelled_at": [day(20), day(40), day(70)],
        }
    )
    (fold, *_) = Protocol(folds=1).folds_before(Period(day(30), day(51)), day(58), day(0))
    fold = fold.__class__(  # train on days 0..21, validate on 30..37 (known at day 58)
        "fold1", Period(day(0), day(21)), Period(day(30), day(37)), day(58), day(28)
    )

    train_labels, validation_labels = fold_labels(transactions, labels, fold)

    assert train_labels.tolist() == [1, 0]  # b was not known yet on day 28
    assert validation_labels.tolist() == [0]  # c was labelled on day 70, after training


def test_card_precision_leaves_out_cards_known_compromised_before_the_day() -> None:
    days = np.array(["2026-01-02"] * 4 + ["2026-01-03"] * 4, dtype="datetime64[ns]")
    cards = np.array(["a", "b", "c", "d"] * 2)
    scores = np.array([0.9, 0.8, 0.2, 0.1, 0.9, 0.8, 0.7, 0.1])
    fraud = np.array([1, 1, 0, 0, 1, 1, 1, 0])
    # a was known compromised before day 2 started; b only during day 2
    known = {"a": pd.Timestamp("2026-01-01 12:00", tz="UTC"),
             "b": pd.Timestamp("2026-01-02 15:00", tz="UTC")}  # fmt: skip

    without = card_precision_at_k(days, cards, scores, fraud, k=2)
    with_known = card_precision_at_k(days, cards, scores, fraud, k=2, compromised_since=known)

    # without: day 2 checks a, b (2 frauds); day 3 checks c, d (a, b caught on day 2): 1/2
    assert without == (2 / 2 + 1 / 2) / 2
    # with: day 2 checks b, c (a known): 1/2; day 3 checks c, d (b known, a known): 1/2
    assert with_known == (1 / 2 + 1 / 2) / 2


def test_the_gate_wants_a_gain_on_more_than_one_lucky_day() -> None:
    rng = np.random.default_rng(3)
    days = np.repeat(np.arange(10), 50)
    y = (rng.random(500) < 0.1).astype(int)
    champion = rng.random(500)
    lucky = champion.copy()
    on_day_0 = days == 0
    lucky[on_day_0] = y[on_day_0] * 0.5 + 0.5 * rng.random(on_day_0.sum())  # perfect there
    cards = np.arange(500).astype(str)

    gate = promotion_gate(lucky, champion, y, days, cards, margin=0.005)

    gain = gate.challenger["average_precision"] - gate.champion["average_precision"]
    assert gain >= 0.005 and gate.interval[0] <= 0 < gate.interval[1]
    assert not gate.promote and "not above 0" in gate.reason


def test_a_search_starts_from_the_default_and_stops_at_its_budget() -> None:
    from retraining.search import Split

    rng = np.random.default_rng(0)
    rows = rng.normal(size=(600, 3))
    labels = (rows[:, 0] + rng.normal(scale=0.5, size=600) > 1.5).astype(int)
    split = Split("fold1", rows[:400], labels[:400], rows[400:], labels[400:],
                  np.zeros(200), np.arange(200).astype(str))  # fmt: skip
    ticks = iter(range(0, 10_000, 10))  # each clock reading 10 s later

    found = search("random_forest", [split], budget_seconds=45, seed=1,
                   feature_names=("a", "b", "c"), clock=lambda: next(ticks))  # fmt: skip

    assert found.trials[0].params == DEFAULTS["random_forest"]
    # start 0; trial 1 runs 10..20, the check at 30 expects the next to end by 40 <= 45;
    # trial 2 runs 40..50, the check at 60 sees no room for a third
    assert len(found.trials) == 2
    assert found.best.average_precision == max(t.average_precision for t in found.trials)
