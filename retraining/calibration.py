"""Fitting the calibration on validation rows (``scoring.calibration`` applies it)."""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression

from scoring.calibration import PlattScaling, log_odds


def fit_platt(scores: np.ndarray, is_fraud: np.ndarray) -> PlattScaling:
    """The line through the raw scores' log-odds that best predicts the outcomes (a logistic
    regression with one input and no penalty).

    >>> rng = np.random.default_rng(0)
    >>> truth = rng.uniform(0.01, 0.3, 200_000)  # real probabilities
    >>> outcomes = (rng.uniform(size=truth.size) < truth).astype(int)
    >>> inflated = 1 / (1 + np.exp(-(log_odds(truth) + 2.0)))  # a model that says e^2 x more
    >>> platt = fit_platt(inflated, outcomes)
    >>> round(platt.slope, 1), round(platt.intercept, 1)
    (1.0, -2.0)
    """
    regression = LogisticRegression(C=np.inf, max_iter=1000)
    regression.fit(log_odds(scores).reshape(-1, 1), is_fraud)
    return PlattScaling(float(regression.coef_[0, 0]), float(regression.intercept_[0]))
