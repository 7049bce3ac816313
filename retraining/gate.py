"""The promotion gate: a challenger replaces the champion only if it is better, by a margin,
on the same recent, labelled, time-ordered window."""

from __future__ import annotations

import dataclasses

import numpy as np

from retraining.metrics import evaluate

GATE_METRIC = "average_precision"


@dataclasses.dataclass(frozen=True)
class GateDecision:
    promote: bool
    reason: str
    challenger: dict[str, float]
    champion: dict[str, float]


def promotion_gate(
    challenger_scores: np.ndarray,
    champion_scores: np.ndarray,
    is_fraud: np.ndarray,
    days: np.ndarray,
    cards: np.ndarray,
    margin: float = 0.01,
    k: int = 100,
) -> GateDecision:
    """Compare two models' scores on the same rows.

    >>> y = np.array([0, 0, 1, 1]); days = np.zeros(4); cards = np.array(list("abcd"))
    >>> challenger, champion = np.array([.1, .2, .8, .9]), np.array([.1, .9, .8, .2])
    >>> gate = promotion_gate(challenger, champion, y, days, cards)
    >>> gate.promote, gate.reason
    (True, 'average_precision 1.0000 beats the champion 0.5833 by 0.4167 >= margin 0.0100')
    """
    challenger = evaluate(challenger_scores, is_fraud, days, cards, k)
    champion = evaluate(champion_scores, is_fraud, days, cards, k)
    gain = challenger[GATE_METRIC] - champion[GATE_METRIC]
    if np.isnan(gain):
        return GateDecision(
            False, f"{GATE_METRIC} is undefined on this window", challenger, champion
        )
    verdict = "beats" if gain >= margin else "does not beat"
    comparison = ">=" if gain >= margin else "<"
    reason = (
        f"{GATE_METRIC} {challenger[GATE_METRIC]:.4f} {verdict} the champion "
        f"{champion[GATE_METRIC]:.4f} by {gain:.4f} {comparison} margin {margin:.4f}"
    )
    return GateDecision(gain >= margin, reason, challenger, champion)
