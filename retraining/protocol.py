"""The evaluation protocol: which days train, wait for labels, validate, and test.

The final model trains on ``window.train`` and is tested once, on ``window.test``, for the
figures a version reports. Every choice before that (model kind, hyper-parameters,
calibration, thresholds) is made on validation folds that end before the final training
window does, prequentially: each fold is the final layout moved back in time, trains on
the days before its validation week (the same label delay between them), and later folds
move ``fold_shift_days`` further back. With 21 days to train, 7 of delay, 7 to test and
three folds a week apart::

    fold 3   [train 21 ][delay 7][val 7]
    fold 2          [train 21 ][delay 7][val 7]
    fold 1                 [train 21 ][delay 7][val 7]
    final                  [train 21             ][delay 7][test 7]

A fold's training rows are fraud if their label was known when its validation began; its
validation rows, if their label was known when the final model is trained (the test's
start: what a trainer can know). The test is judged by every label (the eventual truth).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd


@dataclasses.dataclass(frozen=True)
class Period:
    start: pd.Timestamp
    end: pd.Timestamp  # excluded

    def mask(self, times: pd.Series) -> np.ndarray:
        return ((times >= self.start) & (times < self.end)).to_numpy()

    def __str__(self) -> str:
        return f"{self.start:%Y-%m-%d %H:%M}..{self.end:%Y-%m-%d %H:%M}"


@dataclasses.dataclass(frozen=True)
class Fold:
    name: str
    train: Period
    evaluate: Period  # validation, or the test for the final fold
    labels_known_at: pd.Timestamp  # what the evaluation rows are judged by (None: all)
    train_labels_known_at: pd.Timestamp

    def as_params(self) -> dict[str, str]:
        return {
            f"{self.name}_train": str(self.train),
            f"{self.name}_evaluate": str(self.evaluate),
        }


@dataclasses.dataclass(frozen=True)
class Protocol:
    validation_days: int = 7
    folds: int = 3
    fold_shift_days: int = 7

    def __post_init__(self) -> None:
        if self.validation_days < 1 or self.folds < 1 or self.fold_shift_days < 1:
            raise ValueError("validation days, folds and the shift between folds must be >= 1")

    def folds_before(
        self,
        train: Period,
        test_start: pd.Timestamp,
        first_event: pd.Timestamp,
    ) -> list[Fold]:
        """The validation folds for a final model that trains on ``train`` and is tested
        from ``test_start``, newest first; folds whose training would begin before
        ``first_event`` are left out, and at least one must remain.

        >>> day = lambda d: pd.Timestamp("2026-01-01", tz="UTC") + pd.Timedelta(days=d)
        >>> folds = Protocol().folds_before(Period(day(20), day(41)), day(48), day(-14))
        >>> [(f.name, str(f.train.start.date()), str(f.evaluate.start.date())) for f in folds]
        ... # doctest: +NORMALIZE_WHITESPACE
        [('fold1', '2026-01-07', '2026-02-04'), ('fold2', '2025-12-31', '2026-01-28'),
         ('fold3', '2025-12-24', '2026-01-21')]
        >>> len(Protocol().folds_before(Period(day(20), day(41)), day(48), day(0)))
        1
        """
        train_span = train.end - train.start
        delay = test_start - train.end
        validation = pd.Timedelta(days=self.validation_days)
        folds = []
        for index in range(self.folds):
            validate_end = train.end - pd.Timedelta(days=index * self.fold_shift_days)
            validate = Period(validate_end - validation, validate_end)
            fold_train_end = validate.start - delay
            fold_train = Period(fold_train_end - train_span, fold_train_end)
            if fold_train.start < first_event.normalize():
                break
            folds.append(Fold(f"fold{index + 1}", fold_train, validate, test_start, validate.start))
        if not folds:
            needed = (train_span + delay + validation).days
            raise ValueError(
                f"validation needs the history to begin {needed} days before the test "
                f"window's training ends ({first_event.date()} is too late); train on fewer "
                "days or give a longer history"
            )
        return folds

    def holdout(self, train: Period, test_start: pd.Timestamp) -> Fold:
        """For a history too short for a fold: validate on the training window's last
        ``validation_days`` and train on the days before them (no label delay between).

        >>> day = lambda d: pd.Timestamp("2026-01-01", tz="UTC") + pd.Timedelta(days=d)
        >>> fold = Protocol().holdout(Period(day(0), day(21)), day(28))
        >>> fold.name, str(fold.train), str(fold.evaluate)
        ('holdout', '2026-01-01 00:00..2026-01-15 00:00', '2026-01-15 00:00..2026-01-22 00:00')
        """
        split = train.end - pd.Timedelta(days=self.validation_days)
        if split <= train.start:
            raise ValueError(
                f"the training window needs more than {self.validation_days} days to validate"
            )
        return Fold(
            "holdout", Period(train.start, split), Period(split, train.end), test_start, split
        )


def known_compromised(transactions: pd.DataFrame, labels: pd.DataFrame) -> dict[str, pd.Timestamp]:
    """When each card was first known to be compromised: its earliest fraud label's time.

    >>> tx = pd.DataFrame({"transaction_id": ["a", "b", "c"], "card_id": ["c1", "c1", "c2"]})
    >>> at = pd.to_datetime(["2026-01-05", "2026-01-03", "2026-01-04"], utc=True)
    >>> lb = pd.DataFrame({"transaction_id": ["a", "b", "c"], "is_fraud": [True, True, False],
    ...                    "labelled_at": at})
    >>> {card: str(t.date()) for card, t in known_compromised(tx, lb).items()}
    {'c1': '2026-01-03'}
    """
    if labels.empty:
        return {}
    frauds = labels.loc[labels["is_fraud"].astype(bool), ["transaction_id", "labelled_at"]]
    joined = frauds.merge(transactions[["transaction_id", "card_id"]], on="transaction_id")
    first = joined.groupby("card_id")["labelled_at"].min()
    return dict(first.items())
