"""A version's report as pictures a person reads: precision-recall, card precision@k,
calibration and feature importance, each a PNG logged with the version."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import precision_recall_curve

from retraining.metrics import card_precision_at_k

CP_K = (10, 25, 50, 100, 150, 200)


def _figure() -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(6, 4), dpi=100)


def _save(figure: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return path


def precision_recall_png(scores: np.ndarray, is_fraud: np.ndarray, path: Path) -> Path:
    precision, recall, _ = precision_recall_curve(is_fraud, scores)
    figure, axes = _figure()
    axes.plot(recall, precision)
    axes.set(xlabel="recall", ylabel="precision", title="Precision-recall (test window)")
    axes.grid(alpha=0.3)
    return _save(figure, path)


def card_precision_png(
    days: np.ndarray,
    cards: np.ndarray,
    scores: np.ndarray,
    is_fraud: np.ndarray,
    compromised_since: dict,
    path: Path,
) -> Path:
    values = [
        card_precision_at_k(days, cards, scores, is_fraud, k, compromised_since) for k in CP_K
    ]
    figure, axes = _figure()
    axes.plot(CP_K, values, marker="o")
    axes.set(xlabel="cards checked a day (k)", ylabel="card precision@k",
             title="Card precision@k (test window)")  # fmt: skip
    axes.grid(alpha=0.3)
    return _save(figure, path)


def reliability(
    probabilities: np.ndarray, is_fraud: np.ndarray, bins: int = 10
) -> list[tuple[float, float, int]]:
    """(mean predicted, observed fraud share, rows) per bin of equal count, lowest first.

    >>> reliability(np.array([.1, .1, .9, .9]), np.array([0, 0, 1, 0]), bins=2)
    [(0.1, 0.0, 2), (0.9, 0.5, 2)]
    """
    order = np.argsort(probabilities, kind="stable")
    return [
        (round(float(probabilities[part].mean()), 6), float(is_fraud[part].mean()), len(part))
        for part in np.array_split(order, bins)
        if len(part)
    ]


def calibration_png(probabilities: np.ndarray, is_fraud: np.ndarray, path: Path) -> Path:
    # most rows are near zero: equal-count bins over the top-scored 5 % show where it matters
    top = np.argsort(probabilities)[-max(len(probabilities) // 20, 50) :]
    points = reliability(probabilities[top], is_fraud[top])
    figure, axes = _figure()
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect")
    axes.plot([p for p, _, _ in points], [o for _, o, _ in points], marker="o", label="model")
    axes.set(xlabel="predicted probability", ylabel="observed fraud share",
             title="Calibration (validation folds, top 5 % of scores)")  # fmt: skip
    axes.legend()
    axes.grid(alpha=0.3)
    return _save(figure, path)


def importances(model: Any) -> np.ndarray:
    """Per feature: LightGBM's total gain, the forest's impurity decrease, the logistic
    regression's absolute standardised coefficient; normalised to sum to one."""
    if model.kind == "lightgbm":
        values = model.estimator.booster_.feature_importance(importance_type="gain")
    elif model.kind == "random_forest":
        values = model.importances()
    else:
        values = np.abs(model.estimator[-1].coef_[0])
    values = np.asarray(values, dtype=np.float64)
    return values / values.sum() if values.sum() > 0 else values


def importance_png(model: Any, path: Path, top: int = 20) -> Path:
    values = importances(model)
    order = np.argsort(values)[-top:]
    figure, axes = _figure()
    figure.set_size_inches(7, 6)
    axes.barh([model.feature_names[i] for i in order], values[order])
    axes.set(xlabel="share of importance", title=f"Feature importance ({model.kind})")
    return _save(figure, path)
