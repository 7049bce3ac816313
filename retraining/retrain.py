"""Retraining from the training store: which window, which rows, and the gate's verdict.

The store holds what the stream scored (with the features it computed online, so training
sees exactly what serving saw) and the labels that arrived. A retrain at ``now`` (the
latest event time in the store) tests on the most recent window whose labels have had
``label_delay_days`` to arrive, and trains on the ``train_days`` before it, with every label
known at ``now``. After drift, it waits until ``after_drift_days`` of the shifted period lie
in the training rows: a model retrained before any labelled post-drift data exists cannot
have learnt the change.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from retraining.gate import GateDecision, promotion_gate
from retraining.metrics import evaluate
from retraining.protocol import Protocol
from retraining.store_columns import FEATURE_COLUMNS
from retraining.training import (
    CandidateResult,
    Dataset,
    TrainingOptions,
    TrainingWindow,
    best_of,
    labelled_dataset,
    train_candidates,
)
from scoring.model import TrainedModel


@dataclasses.dataclass(frozen=True)
class RetrainConfig:
    train_days: int = 30
    test_days: int = 3
    label_delay_days: int = 7
    after_drift_days: int = 3
    margin: float = 0.01  # the challenger's average precision must beat the champion's by this
    k: int = 100
    seed: int = 7
    options: TrainingOptions = dataclasses.field(default_factory=TrainingOptions)
    protocol: Protocol = dataclasses.field(default_factory=Protocol)


def retrain_window(now: pd.Timestamp, config: RetrainConfig) -> TrainingWindow:
    """Test on the latest window with mature labels, train on the days before it.

    >>> w = retrain_window(pd.Timestamp("2026-03-20 12:00", tz="UTC"), RetrainConfig())
    >>> [str(t) for t in (w.train_start, w.test_start, w.test_end)]
    ['2026-02-08 12:00:00+00:00', '2026-03-10 12:00:00+00:00', '2026-03-13 12:00:00+00:00']
    """
    test_end = now - pd.Timedelta(days=config.label_delay_days)
    test_start = test_end - pd.Timedelta(days=config.test_days)
    return TrainingWindow(
        test_start - pd.Timedelta(days=config.train_days), test_start, test_start, test_end
    )


def due(now: pd.Timestamp, drift_start: pd.Timestamp | None, config: RetrainConfig) -> bool:
    """Whether a retrain at ``now`` would train on ``after_drift_days`` of the shifted period.

    >>> config = RetrainConfig()  # 7 days for labels + 3 to test + 3 after the drift
    >>> drift = pd.Timestamp("2026-03-01", tz="UTC")
    >>> [due(drift + pd.Timedelta(days=d), drift, config) for d in (12, 13)]
    [False, True]
    """
    if drift_start is None:
        return True
    test_start = retrain_window(now, config).test_start
    return test_start >= drift_start + pd.Timedelta(days=config.after_drift_days)


def store_dataset(
    scored: pd.DataFrame,
    labels: pd.DataFrame,
    window: TrainingWindow,
    known_at: pd.Timestamp,
    protocol: Protocol | None = None,
) -> Dataset:
    """Rows of the training store in ``window``, labelled by what was known at ``known_at``,
    with the protocol's validation folds before the training window (or a hold-out of its
    last days when the store's history is too short for a fold).

    ``scored`` is ``TrainingStore.read_scored()``; its ``FEATURE_COLUMNS`` are the features the
    stream computed. A transaction is fraud if a fraud label for it arrived by ``known_at``.
    """
    features = scored[list(FEATURE_COLUMNS)].to_numpy(dtype=np.float64)
    return labelled_dataset(
        scored, features, labels, window, protocol or Protocol(), known_at=known_at,
        source=" in the training store",
    )  # fmt: skip


@dataclasses.dataclass(frozen=True)
class RetrainResult:
    dataset: Dataset
    candidates: list[CandidateResult]
    best: CandidateResult
    gate: GateDecision


def train_and_gate(
    dataset: Dataset, champion: TrainedModel | None, config: RetrainConfig
) -> RetrainResult:
    """Train the candidates (chosen on the validation folds); the best is promoted if it
    beats ``champion`` on the test rows by ``config.margin`` and by a gain whose bootstrap
    interval lies above zero (always, when there is no champion)."""
    candidates = train_candidates(dataset, options=config.options)
    best = best_of(candidates)
    return RetrainResult(dataset, candidates, best, gate_against(dataset, best, champion, config))


def candidate_and_gate(
    dataset: Dataset,
    model: TrainedModel,
    params: dict[str, object],
    champion: TrainedModel | None,
    config: RetrainConfig,
) -> RetrainResult:
    """A model trained elsewhere (the online challenger) through the same gate."""
    test = dataset.transactions[dataset.test]
    metrics = evaluate(
        model.predict_proba(dataset.features[dataset.test]),
        dataset.test_labels,
        test["event_time"].dt.floor("D").to_numpy(),
        test["card_id"].to_numpy(),
        config.k,
    )
    candidate = CandidateResult(model.kind, model, metrics, params, 0.0)
    return RetrainResult(
        dataset, [candidate], candidate, gate_against(dataset, candidate, champion, config)
    )


def gate_against(
    dataset: Dataset, best: CandidateResult, champion: TrainedModel | None, config: RetrainConfig
) -> GateDecision:
    if champion is None:
        return GateDecision(True, "there is no champion yet", best.metrics, {})
    test = dataset.transactions[dataset.test]
    rows = dataset.features[dataset.test]
    return promotion_gate(
        best.model.predict_proba(rows),
        champion.predict_proba(rows),
        dataset.test_labels,
        test["event_time"].dt.floor("D").to_numpy(),
        test["card_id"].to_numpy(),
        config.margin,
        config.k,
    )
