"""Time-ordered training: warm-up, validation folds, train window, label delay, test window.

Earlier history in the file warms the feature state up and holds the validation folds
(``retraining.protocol``). A training row is fraud if its fraud label was known when the
model is trained (at the start of the test window); test rows are judged by every label in
the file, the eventual truth. Kinds, hyper-parameters, calibration and thresholds are
chosen on the folds; the test window is scored once, for the figures reported.
"""

from __future__ import annotations

import dataclasses
import logging
import time

import numpy as np
import pandas as pd

from retraining.budget import BudgetThresholds, ReviewBudget, thresholds_for_budget
from retraining.calibration import fit_platt
from retraining.candidates import CANDIDATES, estimator_params
from retraining.dataset import replay_features
from retraining.metrics import evaluate
from retraining.protocol import Fold, Period, Protocol, known_compromised
from retraining.search import SEARCHED, Split, Trial, downsample_genuine, fit, search
from scoring.features import FEATURE_INDEX, FEATURE_NAMES
from scoring.features.store import FeatureStore
from scoring.model import ModelKind, TrainedModel

logger = logging.getLogger(__name__)

PRIMARY_METRIC = "average_precision"


@dataclasses.dataclass(frozen=True)
class TrainingWindow:
    train_start: pd.Timestamp
    train_end: pd.Timestamp
    test_start: pd.Timestamp
    test_end: pd.Timestamp

    def __post_init__(self) -> None:
        if not self.train_start < self.train_end <= self.test_start < self.test_end:
            raise ValueError(
                "windows must be ordered: train_start < train_end <= test_start < test_end"
            )

    @classmethod
    def ending_at(
        cls, last_event: pd.Timestamp, train_days: int = 21, delay_days: int = 7, test_days: int = 7
    ) -> TrainingWindow:
        """The default protocol: the last ``test_days`` test, ``delay_days`` before them wait
        for labels, the ``train_days`` before that train.

        >>> w = TrainingWindow.ending_at(pd.Timestamp("2026-03-01 13:00", tz="UTC"))
        >>> [str(t.date()) for t in (w.train_start, w.train_end, w.test_start, w.test_end)]
        ['2026-01-26', '2026-02-16', '2026-02-23', '2026-03-02']
        """
        test_start = last_event.normalize() - pd.Timedelta(days=test_days - 1)
        train_end = test_start - pd.Timedelta(days=delay_days)
        return cls(
            train_end - pd.Timedelta(days=train_days),
            train_end,
            test_start,
            test_start + pd.Timedelta(days=test_days),
        )

    def as_params(self) -> dict[str, str]:
        return {
            f"window_{f.name}": getattr(self, f.name).isoformat() for f in dataclasses.fields(self)
        }


@dataclasses.dataclass(frozen=True)
class Dataset:
    transactions: pd.DataFrame
    features: np.ndarray
    train: np.ndarray  # boolean masks over transactions
    test: np.ndarray
    train_labels: np.ndarray  # 0/1 as known at test_start
    test_labels: np.ndarray  # 0/1 from every label
    # the validation folds (``retraining.protocol``), newest first; every choice is made there
    folds: tuple[Fold, ...] = ()
    fold_labels: tuple[tuple[np.ndarray, np.ndarray], ...] = ()  # (train, validation) 0/1
    compromised_since: dict[str, pd.Timestamp] = dataclasses.field(default_factory=dict)

    def summary(self) -> dict[str, float]:
        return {
            "train_rows": int(self.train.sum()),
            "test_rows": int(self.test.sum()),
            "train_fraud_share": float(self.train_labels.mean()) if self.train.any() else 0.0,
            "test_fraud_share": float(self.test_labels.mean()) if self.test.any() else 0.0,
            "validation_folds": len(self.folds),
        }

    def fold_params(self) -> dict[str, str]:
        """Each fold's windows, for MLflow params."""
        return {key: value for fold in self.folds for key, value in fold.as_params().items()}

    def splits(self, columns: list[int], genuine_per_fraud: float | None, seed: int) -> list[Split]:
        """The folds' rows (``columns`` of the features), genuine training rows
        down-sampled to ``genuine_per_fraud`` a fraud (None: all kept)."""
        times = self.transactions["event_time"]
        found = []
        for fold, (train_labels, labels) in zip(self.folds, self.fold_labels, strict=True):
            train_rows = self.features[fold.train.mask(times)][:, columns]
            kept = downsample_genuine(train_labels, genuine_per_fraud, seed)
            evaluated = fold.evaluate.mask(times)
            found.append(
                Split(
                    fold.name,
                    train_rows[kept],
                    train_labels[kept],
                    self.features[evaluated][:, columns],
                    labels,
                    times[evaluated].dt.floor("D").to_numpy(),
                    self.transactions["card_id"][evaluated].to_numpy(),
                )
            )
        return found

    def test_split(self) -> Split:
        test = self.transactions[self.test]
        return Split(
            "test",
            self.features[self.train],
            self.train_labels,
            self.features[self.test],
            self.test_labels,
            test["event_time"].dt.floor("D").to_numpy(),
            test["card_id"].to_numpy(),
        )


@dataclasses.dataclass(frozen=True)
class CandidateResult:
    kind: ModelKind
    model: TrainedModel
    metrics: dict[str, float]  # on the test window, once
    params: dict[str, object]
    fit_seconds: float
    validation: dict[str, float] = dataclasses.field(default_factory=dict)  # mean of folds
    fold_metrics: dict[str, dict[str, float]] = dataclasses.field(default_factory=dict)
    trials: tuple[Trial, ...] = ()
    budget: BudgetThresholds | None = None
    validation_scores: np.ndarray | None = None  # calibrated, pooled over folds
    validation_labels: np.ndarray | None = None


@dataclasses.dataclass(frozen=True)
class TrainingOptions:
    """How candidates are chosen and fitted (``Settings`` gives the defaults)."""

    search_budget_seconds: float = 30.0
    genuine_per_fraud: float | None = 20.0  # None: keep every genuine training row
    review: ReviewBudget = dataclasses.field(default_factory=ReviewBudget)
    feature_names: tuple[str, ...] = FEATURE_NAMES
    seed: int = 7
    k: int = 100
    calibrate: bool = True
    threads: int = 1  # cores a fit may use (scoring always uses one)

    def as_params(self) -> dict[str, object]:
        """What a training run records of these (MLflow params)."""
        return {
            "k": self.k,
            "search_budget_seconds": self.search_budget_seconds,
            "review_budget_per_day": self.review.cards_per_day,
            "decline_precision_target": self.review.decline_precision,
            "train_genuine_per_fraud": self.genuine_per_fraud or 0,
        }


def fold_labels(
    transactions: pd.DataFrame, labels: pd.DataFrame, fold: Fold
) -> tuple[np.ndarray, np.ndarray]:
    """0/1 for a fold's training rows (labels known when its validation began) and its
    validation rows (labels known when the final model is trained)."""
    times, ids = transactions["event_time"], transactions["transaction_id"]
    train = ids[fold.train.mask(times)].isin(frauds_known(labels, fold.train_labels_known_at))
    evaluated = ids[fold.evaluate.mask(times)].isin(frauds_known(labels, fold.labels_known_at))
    return train.to_numpy().astype(int), evaluated.to_numpy().astype(int)


def frauds_known(labels: pd.DataFrame, moment: pd.Timestamp | None = None) -> set[str]:
    """Ids of the transactions with a fraud label known at ``moment`` (None: ever).

    >>> at = pd.to_datetime(["2026-01-02", "2026-01-05", "2026-01-03"], utc=True)
    >>> labels = pd.DataFrame({"transaction_id": ["a", "b", "c"],
    ...                        "is_fraud": [True, True, False], "labelled_at": at})
    >>> sorted(frauds_known(labels)), sorted(frauds_known(labels, at[2]))
    (['a', 'b'], ['a'])
    """
    if labels.empty:
        return set()
    frauds = labels[labels["is_fraud"].astype(bool)]
    if moment is not None:
        frauds = frauds[frauds["labelled_at"] <= moment]
    return set(frauds["transaction_id"])


def plan_folds(
    transactions: pd.DataFrame, window: TrainingWindow, protocol: Protocol
) -> list[Fold]:
    """The protocol's folds before ``window``; when the history is too short for one, a
    hold-out of the training window's last ``validation_days`` (said in the log)."""
    train = Period(window.train_start, window.train_end)
    first = transactions["event_time"].min()
    try:
        return protocol.folds_before(train, window.test_start, first)
    except ValueError as error:
        logger.warning("%s: validating on the training window's last days instead", error)
        return [protocol.holdout(train, window.test_start)]


def build_dataset(
    transactions: pd.DataFrame,
    labels: pd.DataFrame,
    window: TrainingWindow,
    label_delay_days: int,
    progress: bool = False,
    store: FeatureStore | None = None,
    protocol: Protocol | None = None,
) -> Dataset:
    """``store``: where the replay keeps its feature state (in memory by default; the online
    store warms it up for the stream that follows the history)."""
    features = replay_features(
        transactions, labels, label_delay_days, store=store, progress=progress
    )
    return labelled_dataset(transactions, features, labels, window, protocol or Protocol())


def labelled_dataset(
    transactions: pd.DataFrame,
    features: np.ndarray,
    labels: pd.DataFrame,
    window: TrainingWindow,
    protocol: Protocol,
    known_at: pd.Timestamp | None = None,
    source: str = "",
) -> Dataset:
    """Masks and labels over rows whose features are known: training rows (and validation
    rows) by the labels known at ``known_at`` (default: the test's start), test rows by
    every label (or those known at ``known_at`` when it is given: a retrain's gate).
    ``source`` ends the message when a window lacks frauds or genuine rows."""
    times, ids = transactions["event_time"], transactions["transaction_id"]
    periods = {
        "train": Period(window.train_start, window.train_end),
        "test": Period(window.test_start, window.test_end),
    }
    train, test = periods["train"].mask(times), periods["test"].mask(times)
    known_then = frauds_known(labels, known_at if known_at is not None else window.test_start)
    train_labels = ids[train].isin(known_then).to_numpy().astype(int)
    test_labels = ids[test].isin(frauds_known(labels, known_at)).to_numpy().astype(int)
    for name, labels_of in (("train", train_labels), ("test", test_labels)):
        if labels_of.size == 0 or labels_of.min() == labels_of.max():
            raise ValueError(
                f"the {name} window ({periods[name]}) needs both labelled frauds and genuine "
                f"transactions{source}; it has {labels_of.size} rows, {labels_of.sum()} frauds"
            )
    folds = plan_folds(transactions, window, protocol)
    if known_at is not None:
        folds = [dataclasses.replace(f, labels_known_at=known_at) for f in folds]
    return Dataset(
        transactions=transactions,
        features=features,
        train=train,
        test=test,
        train_labels=train_labels,
        test_labels=test_labels,
        folds=tuple(folds),
        fold_labels=tuple(fold_labels(transactions, labels, f) for f in folds),
        compromised_since=known_compromised(transactions, labels),
    )


def train_candidates(
    dataset: Dataset,
    kinds: tuple[ModelKind, ...] = CANDIDATES,
    options: TrainingOptions | None = None,
) -> list[CandidateResult]:
    """Each kind searched on the validation folds within its share of the budget, fitted
    on the training window with the best configuration, calibrated and given thresholds
    on the validation folds, and tested once on the test window."""
    options = options or TrainingOptions()
    columns = [FEATURE_INDEX[name] for name in options.feature_names]
    splits = [
        s for s in dataset.splits(columns, options.genuine_per_fraud, options.seed)
        if 0 < s.labels.sum() < len(s.labels) and 0 < s.train_labels.sum() < len(s.train_labels)
    ]  # fmt: skip
    if not splits:
        raise ValueError("no validation fold has both frauds and genuine transactions")
    searched = [kind for kind in kinds if kind in SEARCHED]
    share = options.search_budget_seconds / max(len(searched), 1)
    return [_candidate(dataset, kind, splits, columns, share, options) for kind in kinds]


def _candidate(
    dataset: Dataset,
    kind: ModelKind,
    splits: list[Split],
    columns: list[int],
    budget_seconds: float,
    options: TrainingOptions,
) -> CandidateResult:
    found = search(
        kind, splits, budget_seconds, options.seed, options.feature_names,
        threads=options.threads,
    )  # fmt: skip
    raw = np.concatenate(found.fold_scores)
    validation_labels = np.concatenate([s.labels for s in splits])
    calibration = fit_platt(raw, validation_labels) if options.calibrate else None
    fold_scores = [calibration.apply(s) if calibration else s for s in found.fold_scores]
    fold_metrics = {
        split.name: evaluate(
            scores, split.labels, split.days, split.cards, options.k, dataset.compromised_since
        )
        for split, scores in zip(splits, fold_scores, strict=True)
    }
    validation = {
        name: float(np.mean([m[name] for m in fold_metrics.values()]))
        for name in next(iter(fold_metrics.values()))
    }
    pooled = np.concatenate(fold_scores)
    budget = thresholds_for_budget(
        pooled,
        validation_labels,
        np.concatenate([s.days for s in splits]),
        np.concatenate([s.cards for s in splits]),
        options.review,
    )
    rows = dataset.features[dataset.train][:, columns]
    kept = downsample_genuine(dataset.train_labels, options.genuine_per_fraud, options.seed)
    started = time.perf_counter()
    estimator = fit(
        kind, found.params, rows[kept], dataset.train_labels[kept], options.seed,
        feature_names=options.feature_names, threads=options.threads,
    )  # fmt: skip
    fit_seconds = time.perf_counter() - started
    model = dataclasses.replace(
        TrainedModel.fit_summary(kind, estimator, options.feature_names, rows),
        calibration=calibration,
        thresholds=budget.thresholds,
    )
    test = dataset.test_split()
    metrics = evaluate(
        model.predict_proba(test.rows[:, columns]), test.labels, test.days, test.cards,
        options.k, dataset.compromised_since,
    )  # fmt: skip
    logger.info(
        "%s: validation %s; test %s; fit in %.1fs",
        kind, _fmt(validation), _fmt(metrics), fit_seconds,
    )  # fmt: skip
    params = {**estimator_params(kind, estimator), **found.params}
    return CandidateResult(
        kind, model, metrics, params, fit_seconds, validation, fold_metrics, found.trials,
        budget, pooled, validation_labels,
    )  # fmt: skip


def best_of(results: list[CandidateResult]) -> CandidateResult:
    """The candidate with the best validation score (never the test's: it is seen once)."""
    return max(
        results,
        key=lambda r: np.nan_to_num((r.validation or r.metrics)[PRIMARY_METRIC], nan=-1.0),
    )


def _fmt(metrics: dict[str, float]) -> str:
    return ", ".join(f"{name}={value:.4f}" for name, value in metrics.items())
