"""Probabilities that mean what they say: Platt scaling of a model's raw score.

A model trained on down-sampled genuine rows, or with fraud rows weighted up, ranks well but
overstates every probability. Platt scaling maps the raw score's log-odds through a line
fitted on validation rows the model never saw; being strictly increasing, it keeps the
ranking (AUC, average precision and precision@k are unchanged) and fixes the scale (the
Brier score, and thresholds that mean a probability).
"""

from __future__ import annotations

import dataclasses

import numpy as np

_EDGE = 1e-6  # raw scores of exactly 0 or 1 (a forest's) get finite log-odds


def log_odds(scores: np.ndarray) -> np.ndarray:
    clipped = np.clip(scores, _EDGE, 1 - _EDGE)
    return np.log(clipped / (1 - clipped))


@dataclasses.dataclass(frozen=True)
class PlattScaling:
    """``sigmoid(slope * logit(score) + intercept)``.

    >>> PlattScaling(slope=1.0, intercept=-np.log(9)).apply(np.array([0.5])).round(4).tolist()
    [0.1]
    """

    slope: float
    intercept: float

    def apply(self, scores: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-(self.slope * log_odds(scores) + self.intercept)))
