"""Hyper-parameter search on the validation folds, within a time budget (Optuna's TPE).

A trial fits one configuration on every fold's training rows (genuine rows down-sampled,
never the evaluation rows) and scores it by its average precision on the fold's
validation rows, averaged over folds; LightGBM stops adding trees when its validation
score stops improving, and the final model gets the mean of the folds' best iteration
counts. The first trial of each kind is the project's former default, so a search can only
end at a configuration that validated at least as well.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import optuna
from sklearn.metrics import average_precision_score

from retraining.candidates import make_estimator
from scoring.features import FEATURE_NAMES
from scoring.model import ModelKind

logger = logging.getLogger(__name__)

SEARCHED: tuple[ModelKind, ...] = ("lightgbm", "random_forest")
EARLY_STOPPING_ROUNDS = 40
MAX_TREES = 1_000


@dataclasses.dataclass(frozen=True)
class Split:
    """One fold's rows: fit on ``train``, judge on ``evaluate``."""

    name: str
    train_rows: np.ndarray
    train_labels: np.ndarray
    rows: np.ndarray
    labels: np.ndarray
    days: np.ndarray
    cards: np.ndarray


@dataclasses.dataclass(frozen=True)
class Trial:
    kind: ModelKind
    number: int
    params: dict[str, Any]
    fold_average_precision: tuple[float, ...]
    seconds: float

    @property
    def average_precision(self) -> float:
        return float(np.mean(self.fold_average_precision))


@dataclasses.dataclass(frozen=True)
class SearchResult:
    kind: ModelKind
    params: dict[str, Any]  # of the best trial, with n_estimators fixed for LightGBM
    trials: tuple[Trial, ...]
    fold_scores: tuple[np.ndarray, ...]  # the best trial's raw scores on each validation fold

    @property
    def best(self) -> Trial:
        return max(self.trials, key=lambda t: t.average_precision)


def downsample_genuine(
    labels: np.ndarray, genuine_per_fraud: float | None, seed: int
) -> np.ndarray:
    """Indices of the training rows kept: every fraud, and at most ``genuine_per_fraud``
    genuine rows per fraud, drawn at random (time order kept); None keeps every row.

    >>> downsample_genuine(np.array([0, 0, 0, 0, 1, 0, 0, 0]), 2, seed=1).tolist()
    [2, 3, 4]
    >>> downsample_genuine(np.array([0, 1, 0]), None, seed=1).tolist()
    [0, 1, 2]
    """
    if genuine_per_fraud is None:
        return np.arange(len(labels))
    frauds = np.flatnonzero(labels == 1)
    genuine = np.flatnonzero(labels == 0)
    keep = int(min(len(genuine), max(genuine_per_fraud * len(frauds), 1)))
    if keep >= len(genuine):
        return np.arange(len(labels))
    chosen = np.random.default_rng(seed).choice(genuine, size=keep, replace=False)
    return np.sort(np.concatenate([frauds, chosen]))


def suggest(kind: ModelKind, trial: optuna.Trial) -> dict[str, Any]:
    """The search space of ``kind``."""
    if kind == "lightgbm":
        return {
            "learning_rate": trial.suggest_float("learning_rate", 0.02, 0.2, log=True),
            "num_leaves": trial.suggest_int("num_leaves", 7, 63, log=True),
            "min_child_samples": trial.suggest_int("min_child_samples", 10, 300, log=True),
            "subsample": trial.suggest_float("subsample", 0.5, 1.0),
            "colsample_bytree": trial.suggest_float("colsample_bytree", 0.3, 1.0),
            "reg_lambda": trial.suggest_float("reg_lambda", 1e-3, 20.0, log=True),
        }
    if kind == "random_forest":
        return {
            "n_estimators": trial.suggest_int("n_estimators", 50, 200, step=25),
            "max_depth": trial.suggest_int("max_depth", 6, 24),
            "min_samples_leaf": trial.suggest_int("min_samples_leaf", 1, 50, log=True),
            "max_features": trial.suggest_float("max_features", 0.1, 0.6),
            "max_samples": trial.suggest_float("max_samples", 0.3, 1.0),
        }
    raise ValueError(f"no search space for {kind!r}")


DEFAULTS: dict[ModelKind, dict[str, Any]] = {
    "lightgbm": {
        "learning_rate": 0.03,
        "num_leaves": 15,
        "min_child_samples": 100,
        "subsample": 0.8,
        "colsample_bytree": 0.7,
        "reg_lambda": 5.0,
    },
    "random_forest": {
        "n_estimators": 100,
        "max_depth": 12,
        "min_samples_leaf": 10,
        "max_features": 0.15,  # about sklearn's sqrt(features) of ours
        "max_samples": 0.5,
    },
}


def fit(
    kind: ModelKind,
    params: dict[str, Any],
    rows: np.ndarray,
    labels: np.ndarray,
    seed: int,
    validation: tuple[np.ndarray, np.ndarray] | None = None,
    feature_names: tuple[str, ...] = FEATURE_NAMES,
    threads: int = 1,
) -> Any:
    """A fitted estimator; LightGBM with early stopping when ``validation`` is given."""
    negatives_per_positive = (len(labels) - labels.sum()) / max(labels.sum(), 1)
    estimator = make_estimator(kind, seed, negatives_per_positive, threads)
    if kind == "lightgbm":
        import lightgbm

        extra = {"n_estimators": MAX_TREES} if validation is not None else {}
        estimator.set_params(**params, **extra, metric="average_precision")
        callbacks = (
            [lightgbm.early_stopping(EARLY_STOPPING_ROUNDS, verbose=False)] if validation else []
        )
        evaluation = {"eval_X": (validation[0],), "eval_y": (validation[1],)} if validation else {}
        estimator.fit(
            rows, labels, feature_name=list(feature_names), callbacks=callbacks, **evaluation
        )
        return estimator
    if kind == "random_forest":
        estimator.set_params(**params)
    estimator.fit(rows, labels)
    if kind == "random_forest":
        estimator.set_params(n_jobs=1)  # whoever predicts with it later: one core
    return estimator


def raw_scores(kind: ModelKind, estimator: Any, rows: np.ndarray) -> np.ndarray:
    if kind == "lightgbm":  # the booster itself: the best iteration, no name checks
        return np.asarray(estimator.booster_.predict(rows, num_threads=1))
    return np.asarray(estimator.predict_proba(rows)[:, 1])


def evaluate_config(
    kind: ModelKind,
    params: dict[str, Any],
    splits: list[Split],
    seed: int,
    feature_names: tuple[str, ...] = FEATURE_NAMES,
    threads: int = 1,
) -> tuple[tuple[float, ...], tuple[np.ndarray, ...], int]:
    """Average precision per fold, the raw validation scores, and LightGBM's mean best
    iteration count (0 for other kinds)."""
    precisions, scores, iterations = [], [], []
    for split in splits:
        estimator = fit(
            kind, params, split.train_rows, split.train_labels, seed,
            validation=(split.rows, split.labels) if kind == "lightgbm" else None,
            feature_names=feature_names, threads=threads,
        )  # fmt: skip
        if kind == "lightgbm":
            iterations.append(estimator.best_iteration_ or estimator.n_estimators)
        fold_scores = raw_scores(kind, estimator, split.rows)
        scores.append(fold_scores)
        precisions.append(float(average_precision_score(split.labels, fold_scores)))
    return tuple(precisions), tuple(scores), int(np.mean(iterations)) if iterations else 0


def search(
    kind: ModelKind,
    splits: list[Split],
    budget_seconds: float,
    seed: int,
    feature_names: tuple[str, ...] = FEATURE_NAMES,
    max_trials: int = 200,
    threads: int = 1,
    clock: Callable[[], float] = time.perf_counter,
) -> SearchResult:
    """Trials of ``kind`` on ``splits`` until ``budget_seconds`` are spent (a trial is not
    started when the last one would not fit in what remains); the default first."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    searchable = kind in SEARCHED
    if searchable:
        study.enqueue_trial(DEFAULTS[kind])
    trials: list[Trial] = []
    kept: dict[int, tuple[tuple[np.ndarray, ...], int]] = {}
    started = clock()

    def objective(trial: optuna.Trial) -> float:
        began = clock()
        params = suggest(kind, trial) if searchable else {}
        precisions, scores, iterations = evaluate_config(
            kind, params, splits, seed, feature_names, threads
        )
        seconds = clock() - began
        trials.append(Trial(kind, trial.number, params, precisions, seconds))
        kept[trial.number] = (scores, iterations)
        logger.info(
            "%s trial %d: validation AP %.4f (%s) in %.1fs",
            kind, trial.number, float(np.mean(precisions)),
            ", ".join(f"{p:.4f}" for p in precisions), seconds,
        )  # fmt: skip
        return float(np.mean(precisions))

    def within_budget(study: optuna.Study, _: Any) -> None:
        spent, last = clock() - started, trials[-1].seconds
        if not searchable or spent + last > budget_seconds:
            study.stop()

    study.optimize(objective, n_trials=max_trials, callbacks=[within_budget])
    best = max(trials, key=lambda t: t.average_precision)
    scores, iterations = kept[best.number]
    params = dict(best.params)
    if kind == "lightgbm":
        params["n_estimators"] = max(iterations, 20)
    return SearchResult(kind, params, tuple(trials), scores)
