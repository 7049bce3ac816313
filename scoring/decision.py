"""From probabilities and contributions to decisions and reason codes, a batch at a time."""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

from schemas.scored import Decision

TOP_REASONS = 3


@dataclasses.dataclass(frozen=True)
class Thresholds:
    """Scores at or above ``review`` go to an analyst; at or above ``decline``, are declined.

    >>> Thresholds(review=0.5, decline=0.9).decide(np.array([0.1, 0.5, 0.95])).tolist()
    ['approve', 'review', 'decline']
    """

    review: float = 0.5
    decline: float = 0.9

    def __post_init__(self) -> None:
        if not 0.0 <= self.review <= self.decline <= 1.0:
            raise ValueError("thresholds need 0 <= review <= decline <= 1")

    def decide(self, probabilities: np.ndarray) -> np.ndarray:
        decisions = np.full(len(probabilities), Decision.APPROVE.value, dtype=object)
        decisions[probabilities >= self.review] = Decision.REVIEW.value
        decisions[probabilities >= self.decline] = Decision.DECLINE.value
        return decisions


ReasonCode = dict[str, str | float]
"""A reason code as its JSON object: ``code``, ``feature``, ``value``, ``contribution`` (the
fields of ``schemas.scored.Reason``; plain dicts, as building models cost ~8 us each)."""


@functools.lru_cache(maxsize=16)
def _codes(feature_names: tuple[str, ...]) -> list[str]:
    return [name.upper() for name in feature_names]


def reason_codes(
    contributions: np.ndarray,
    rows: np.ndarray,
    feature_names: tuple[str, ...],
    top: int = TOP_REASONS,
) -> list[list[ReasonCode]]:
    """For each row, the ``top`` features that pushed its score up most (positive pushes only).

    >>> names = ("amount", "card_tx_count_10m", "hour_of_day")
    >>> pushes, values = np.array([[0.2, 1.5, -0.3]]), np.array([[90.0, 7.0, 3.0]])
    >>> [r["code"] for r in reason_codes(pushes, values, names)[0]]
    ['CARD_TX_COUNT_10M', 'AMOUNT']
    """
    if not len(rows):
        return []
    top = min(top, contributions.shape[1])
    order = np.argsort(-contributions, axis=1, kind="stable")[:, :top]
    pushes = np.round(np.take_along_axis(contributions, order, axis=1), 6)
    values = np.take_along_axis(rows, order, axis=1)
    codes = _codes(feature_names)
    return [
        [
            {"code": codes[f], "feature": feature_names[f], "value": v, "contribution": c}
            for f, v, c in zip(features, row_values, row_pushes, strict=True)
            if c > 0
        ]
        for features, row_values, row_pushes in zip(
            order.tolist(), values.tolist(), pushes.tolist(), strict=True
        )
    ]
