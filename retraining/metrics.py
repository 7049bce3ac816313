"""How good a fraud model is: AUC ROC, average precision, and card precision@k per day."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score


def card_precision_at_k(
    days: np.ndarray,
    cards: np.ndarray,
    scores: np.ndarray,
    is_fraud: np.ndarray,
    k: int = 100,
    compromised_since: Mapping[str, pd.Timestamp] | None = None,
) -> float:
    """The share of frauds among the ``k`` cards an investigator team would check each day
    (each card ranked by its highest score that day), averaged over days. Cards already
    known to be compromised are not counted again: those caught on an earlier day, and
    those with a fraud label known before the day begins (``compromised_since``: card ->
    when its first fraud label was known).

    >>> days = np.array([1, 1, 1, 2, 2, 2])
    >>> cards = np.array(["a", "b", "c", "a", "b", "c"])
    >>> scores = np.array([0.9, 0.8, 0.1, 0.9, 0.2, 0.7])
    >>> fraud = np.array([1, 0, 0, 1, 0, 1])
    >>> card_precision_at_k(days, cards, scores, fraud, k=2)  # day 1: a of a, b; day 2: c of c, b
    0.5
    """
    known = _known_before_each_day(compromised_since or {})
    per_card = per_card_day(days, cards, scores, is_fraud)
    caught: set[str] = set()
    precisions = []
    for day, day_cards in per_card.groupby(level="day", sort=True):
        day_cards = day_cards.droplevel("day")
        known_then = known(day)
        candidates = day_cards[~day_cards.index.isin(caught) & ~day_cards.index.isin(known_then)]
        top = candidates.sort_values("score", ascending=False, kind="stable").head(k)
        found = top.index[top["fraud"] > 0]
        precisions.append(len(found) / k)
        caught.update(found)
    return float(np.mean(precisions)) if precisions else 0.0


def per_card_day(
    days: np.ndarray, cards: np.ndarray, scores: np.ndarray, is_fraud: np.ndarray
) -> pd.DataFrame:
    """Each card once a day, as an analyst sees it: its highest score that day and whether
    it had a fraud (``score``, ``fraud``, indexed by ``day`` and ``card``, sorted).

    >>> per_card_day(np.array([1, 1, 1]), np.array(["a", "a", "b"]),
    ...              np.array([.2, .7, .4]), np.array([1, 0, 0])).to_dict("index")
    {(1, 'a'): {'score': 0.7, 'fraud': 1}, (1, 'b'): {'score': 0.4, 'fraud': 0}}
    """
    frame = pd.DataFrame({"day": days, "card": cards, "score": scores, "fraud": is_fraud})
    return frame.groupby(["day", "card"], sort=True).agg(
        score=("score", "max"), fraud=("fraud", "max")
    )


def _known_before_each_day(
    compromised_since: Mapping[str, pd.Timestamp],
) -> Callable[[object], set[str]]:
    if not compromised_since:
        return lambda day: set()
    cards = np.array(list(compromised_since), dtype=object)
    since = _naive_utc(pd.Series(list(compromised_since.values())))

    def known(day: object) -> set[str]:
        start = pd.Timestamp(day)  # days are UTC, with or without their zone
        start = start.tz_convert(None) if start.tzinfo is not None else start
        return set(cards[since < start.to_datetime64()])

    return known


def _naive_utc(times: pd.Series) -> np.ndarray:
    return pd.to_datetime(times, utc=True).dt.tz_convert(None).to_numpy(dtype="datetime64[ns]")


def evaluate(
    scores: np.ndarray,
    is_fraud: np.ndarray,
    days: np.ndarray,
    cards: np.ndarray,
    k: int = 100,
    compromised_since: Mapping[str, pd.Timestamp] | None = None,
) -> dict[str, float]:
    """AUC ROC, average precision, card precision@k and the Brier score (the mean squared
    distance of the probabilities from the outcomes: lower is better).

    >>> days = np.array(["2026-01-01"] * 4, dtype="datetime64[ns]")
    >>> result = evaluate(np.array([.1, .2, .3, .9]), np.array([0, 0, 1, 1]), days,
    ...                   np.array(list("abcd")), k=2)
    >>> {name: round(value, 4) for name, value in result.items()}
    {'auc_roc': 1.0, 'average_precision': 1.0, 'card_precision_at_2': 1.0, 'brier': 0.1375}
    """
    both_classes = 0 < is_fraud.sum() < len(is_fraud)
    return {
        "auc_roc": float(roc_auc_score(is_fraud, scores)) if both_classes else float("nan"),
        "average_precision": float(average_precision_score(is_fraud, scores))
        if both_classes
        else float("nan"),
        f"card_precision_at_{k}": card_precision_at_k(
            days, cards, scores, is_fraud, k, compromised_since
        ),
        "brier": float(np.mean((scores - is_fraud) ** 2)) if len(scores) else float("nan"),
    }
