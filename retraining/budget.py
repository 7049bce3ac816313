"""Thresholds from what a fraud team can do: review so many cards a day, and decline
without review only where the model is right often enough.

Computed at training time on the calibrated validation scores, they travel with the model
version (a promotion brings them; a rollback takes them back).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from retraining.metrics import per_card_day
from scoring.decision import Thresholds

MIN_DECLINES = 5  # a decline precision measured on fewer validation rows is not believed


@dataclasses.dataclass(frozen=True)
class ReviewBudget:
    cards_per_day: int = 100
    decline_precision: float = 0.9  # of transactions declined without review


@dataclasses.dataclass(frozen=True)
class BudgetThresholds:
    thresholds: Thresholds
    reviews_per_day: float  # cards a day at or above the review threshold, on validation
    review_precision: float  # the share of those cards with a fraud that day
    declines_per_day: float  # transactions a day at or above the decline threshold
    decline_precision: float  # the share of those that are fraud (nan: none declined)

    def as_metrics(self) -> dict[str, float]:
        return {
            "threshold_review": self.thresholds.review,
            "threshold_decline": self.thresholds.decline,
            "expected_reviews_per_day": self.reviews_per_day,
            "expected_review_precision": self.review_precision,
            "expected_declines_per_day": self.declines_per_day,
            "expected_decline_precision": self.decline_precision,
        }


def thresholds_for_budget(
    probabilities: np.ndarray,
    is_fraud: np.ndarray,
    days: np.ndarray,
    cards: np.ndarray,
    budget: ReviewBudget,
    min_declines: int = MIN_DECLINES,
) -> BudgetThresholds:
    """The review threshold that sends at most ``budget.cards_per_day`` cards a day to an
    analyst on average (a card counts once a day, by its highest score), and the lowest
    decline threshold above it whose declines are fraud at ``budget.decline_precision``
    (1.0, no automatic declines, when none is).

    >>> days = np.repeat(np.array(["2026-01-01", "2026-01-02"], dtype="datetime64[ns]"), 4)
    >>> cards = np.array(list("abcdabcd"))
    >>> p = np.array([.9, .6, .3, .1, .95, .5, .4, .2])
    >>> fraud = np.array([1, 1, 0, 0, 1, 0, 0, 0])
    >>> chosen = thresholds_for_budget(p, fraud, days, cards, ReviewBudget(2, 0.9), 2)
    >>> round(chosen.thresholds.review, 6), chosen.reviews_per_day, chosen.review_precision
    (0.4, 2.0, 0.75)
    >>> chosen.thresholds.decline, chosen.declines_per_day, chosen.decline_precision
    (0.6, 1.5, 1.0)
    """
    per_card = per_card_day(days, cards, probabilities, is_fraud)
    n_days = max(len(np.unique(days)), 1)
    ranked = np.sort(per_card["score"].to_numpy())[::-1]
    allowed = budget.cards_per_day * n_days
    # the lowest score still within the budget: cards at exactly the first one beyond it
    # would exceed it, so the threshold sits just above that one
    review = (
        float(ranked[-1])
        if len(ranked) <= allowed
        else float(np.nextafter(ranked[allowed], np.inf))
    )
    review = min(review, 1.0)
    decline = _decline_threshold(
        probabilities, is_fraud, review, budget.decline_precision, min_declines
    )
    reviewed = per_card[per_card["score"] >= review]
    declined = probabilities >= decline
    return BudgetThresholds(
        Thresholds(review, decline),
        len(reviewed) / n_days,
        float(reviewed["fraud"].mean()) if len(reviewed) else float("nan"),
        float(declined.sum()) / n_days,
        float(is_fraud[declined].mean()) if declined.any() else float("nan"),
    )


def _decline_threshold(
    probabilities: np.ndarray,
    is_fraud: np.ndarray,
    review: float,
    target: float,
    min_declines: int,
) -> float:
    order = np.argsort(-probabilities, kind="stable")
    ranked, frauds = probabilities[order], np.cumsum(is_fraud[order])
    precision = frauds / np.arange(1, len(ranked) + 1)
    # the deepest cut (lowest score) whose precision still meets the target, taken where
    # the score changes (ties decide together)
    last_of_ties = np.append(ranked[1:] != ranked[:-1], True)
    good = np.flatnonzero(
        last_of_ties & (precision >= target) & (np.arange(1, len(ranked) + 1) >= min_declines)
    )
    if not len(good):
        return 1.0
    return max(float(ranked[good[-1]]), review)
