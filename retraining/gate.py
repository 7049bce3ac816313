"""The promotion gate: a challenger replaces the champion only if it is better on the same
recent, labelled, time-ordered window - by a margin, and by a difference that a bootstrap
over the window's days says is real (its 95 % interval lies above zero)."""

from __future__ import annotations

import dataclasses

import numpy as np
from sklearn.metrics import average_precision_score

from retraining.metrics import evaluate

GATE_METRIC = "average_precision"
RESAMPLES = 200


@dataclasses.dataclass(frozen=True)
class GateDecision:
    promote: bool
    reason: str
    challenger: dict[str, float]
    champion: dict[str, float]
    # the 95 % bootstrap interval of the challenger's gain (days resampled); nan: none drawn
    interval: tuple[float, float] = (float("nan"), float("nan"))


def bootstrap_gain(
    challenger_scores: np.ndarray,
    champion_scores: np.ndarray,
    is_fraud: np.ndarray,
    days: np.ndarray,
    resamples: int = RESAMPLES,
    seed: int = 7,
) -> tuple[float, float]:
    """The 2.5 and 97.5 percentiles of the average-precision gain over resamples of whole
    days (drawn with replacement): days, not rows, because a day's frauds come together
    (one compromised terminal makes many).

    >>> y = np.array([0, 1, 0, 1, 0, 1]); days = np.array([1, 1, 2, 2, 3, 3])
    >>> better = bootstrap_gain(np.array([.1, .9] * 3), np.array([.9, .1] * 3), y, days)
    >>> [round(v, 2) for v in better]
    [0.5, 0.5]
    """
    unique_days, day_of_row = np.unique(days, return_inverse=True)
    rows_of_day = [np.flatnonzero(day_of_row == d) for d in range(len(unique_days))]
    rng = np.random.default_rng(seed)
    gains = []
    for _ in range(resamples):
        chosen = rng.integers(0, len(unique_days), len(unique_days))
        rows = np.concatenate([rows_of_day[d] for d in chosen])
        labels = is_fraud[rows]
        if labels.min() == labels.max():
            continue  # no fraud (or only frauds) drawn: no precision to compare
        gains.append(
            average_precision_score(labels, challenger_scores[rows])
            - average_precision_score(labels, champion_scores[rows])
        )
    if not gains:
        return float("nan"), float("nan")
    low, high = np.percentile(gains, [2.5, 97.5])
    return float(low), float(high)


def promotion_gate(
    challenger_scores: np.ndarray,
    champion_scores: np.ndarray,
    is_fraud: np.ndarray,
    days: np.ndarray,
    cards: np.ndarray,
    margin: float = 0.01,
    k: int = 100,
    resamples: int = RESAMPLES,
) -> GateDecision:
    """Compare two models' scores on the same rows.

    >>> y = np.array([0, 0, 1, 1]); days = np.zeros(4); cards = np.array(list("abcd"))
    >>> challenger, champion = np.array([.1, .2, .8, .9]), np.array([.1, .9, .8, .2])
    >>> gate = promotion_gate(challenger, champion, y, days, cards)
    >>> gate.promote
    True
    >>> gate.reason  # doctest: +NORMALIZE_WHITESPACE
    'average_precision 1.0000 beats the champion 0.5833 by 0.4167 >= margin 0.0100,
     95 % interval over days [0.4167, 0.4167] above 0'
    """
    challenger = evaluate(challenger_scores, is_fraud, days, cards, k)
    champion = evaluate(champion_scores, is_fraud, days, cards, k)
    gain = challenger[GATE_METRIC] - champion[GATE_METRIC]
    if np.isnan(gain):
        return GateDecision(
            False, f"{GATE_METRIC} is undefined on this window", challenger, champion
        )
    low, high = bootstrap_gain(challenger_scores, champion_scores, is_fraud, days, resamples)
    real = bool(low > 0)
    promote = gain >= margin and real
    verdict = "beats" if promote else "does not beat"
    comparison = ">=" if gain >= margin else "<"
    reason = (
        f"{GATE_METRIC} {challenger[GATE_METRIC]:.4f} {verdict} the champion "
        f"{champion[GATE_METRIC]:.4f} by {gain:.4f} {comparison} margin {margin:.4f}, "
        f"95 % interval over days [{low:.4f}, {high:.4f}] "
        f"{'above 0' if real else 'not above 0'}"
    )
    return GateDecision(promote, reason, challenger, champion, (low, high))
