"""Time-ordered training: warm-up, train window, label delay, test window; three candidates.

Earlier history in the file only warms the feature state up. A training row is fraud if its
fraud label was known when the model is trained (at the start of the test window); test
rows are judged by every label in the file, the eventual truth.
"""

from __future__ import annotations

import dataclasses
import logging
import time

import numpy as np
import pandas as pd

from retraining.candidates import CANDIDATES, estimator_params, make_estimator
from retraining.dataset import replay_features
from retraining.metrics import evaluate
from scoring.features import FEATURE_NAMES
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

    def summary(self) -> dict[str, float]:
        return {
            "train_rows": int(self.train.sum()),
            "test_rows": int(self.test.sum()),
            "train_fraud_share": float(self.train_labels.mean()) if self.train.any() else 0.0,
            "test_fraud_share": float(self.test_labels.mean()) if self.test.any() else 0.0,
        }


@dataclasses.dataclass(frozen=True)
class CandidateResult:
    kind: ModelKind
    model: TrainedModel
    metrics: dict[str, float]
    params: dict[str, object]
    fit_seconds: float


def build_dataset(
    transactions: pd.DataFrame,
    labels: pd.DataFrame,
    window: TrainingWindow,
    label_delay_days: int,
    progress: bool = False,
    store: FeatureStore | None = None,
) -> Dataset:
    """``store``: where the replay keeps its feature state (in memory by default; the online
    store warms it up for the stream that follows the history)."""
    features = replay_features(
        transactions, labels, label_delay_days, store=store, progress=progress
    )
    times = transactions["event_time"]
    train = ((times >= window.train_start) & (times < window.train_end)).to_numpy()
    test = ((times >= window.test_start) & (times < window.test_end)).to_numpy()
    frauds = labels[labels["is_fraud"]]
    known_then = set(frauds.loc[frauds["labelled_at"] <= window.test_start, "transaction_id"])
    ids = transactions["transaction_id"]
    dataset = Dataset(
        transactions=transactions,
        features=features,
        train=train,
        test=test,
        train_labels=ids[train].isin(known_then).to_numpy().astype(int),
        test_labels=ids[test].isin(set(frauds["transaction_id"])).to_numpy().astype(int),
    )
    for name, labels_of in (("train", dataset.train_labels), ("test", dataset.test_labels)):
        if labels_of.size == 0 or labels_of.min() == labels_of.max():
            raise ValueError(f"the {name} window needs both frauds and genuine transactions")
    return dataset


def train_candidates(
    dataset: Dataset, kinds: tuple[ModelKind, ...] = CANDIDATES, seed: int = 7, k: int = 100
) -> list[CandidateResult]:
    rows, labels = dataset.features[dataset.train], dataset.train_labels
    negatives_per_positive = (len(labels) - labels.sum()) / max(labels.sum(), 1)
    test = dataset.transactions[dataset.test]
    days = test["event_time"].dt.floor("D").to_numpy()
    results = []
    for kind in kinds:
        estimator = make_estimator(kind, seed, negatives_per_positive)
        started = time.perf_counter()
        if kind == "lightgbm":
            # codes stay numeric: declaring them categorical scored lower on simulator data
            estimator.fit(rows, labels, feature_name=list(FEATURE_NAMES))
        else:
            estimator.fit(rows, labels)
        fit_seconds = time.perf_counter() - started
        model = TrainedModel.fit_summary(kind, estimator, FEATURE_NAMES, rows)
        scores = model.predict_proba(dataset.features[dataset.test])
        metrics = evaluate(scores, dataset.test_labels, days, test["card_id"].to_numpy(), k)
        logger.info("%s: %s in %.1fs", kind, _fmt(metrics), fit_seconds)
        results.append(
            CandidateResult(kind, model, metrics, estimator_params(kind, estimator), fit_seconds)
        )
    return results


def best_of(results: list[CandidateResult]) -> CandidateResult:
    return max(results, key=lambda r: np.nan_to_num(r.metrics[PRIMARY_METRIC], nan=-1.0))


def _fmt(metrics: dict[str, float]) -> str:
    return ", ".join(f"{name}={value:.4f}" for name, value in metrics.items())
