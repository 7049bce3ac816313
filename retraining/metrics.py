"""How good a fraud model is: AUC ROC, average precision, and card precision@k per day."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score


def card_precision_at_k(
    days: np.ndarray, cards: np.ndarray, scores: np.ndarray, is_fraud: np.ndarray, k: int = 100
) -> float:
    """The share of frauds among the ``k`` cards an investigator team would check each day
    (each card ranked by its highest score that day), averaged over days. Cards already
    caught on an earlier day are not counted again.

    >>> days = np.array([1, 1, 1, 2, 2, 2])
    >>> cards = np.array(["a", "b", "c", "a", "b", "c"])
    >>> scores = np.array([0.9, 0.8, 0.1, 0.9, 0.2, 0.7])
    >>> fraud = np.array([1, 0, 0, 1, 0, 1])
    >>> card_precision_at_k(days, cards, scores, fraud, k=2)  # day 1: a of a, b; day 2: c of c, b
    0.5
    """
    frame = pd.DataFrame({"day": days, "card": cards, "score": scores, "fraud": is_fraud})
    per_card = frame.groupby(["day", "card"], sort=True).agg(
        score=("score", "max"), fraud=("fraud", "max")
    )
    caught: set[str] = set()
    precisions = []
    for _, day_cards in per_card.groupby(level="day", sort=True):
        day_cards = day_cards.droplevel("day")
        candidates = day_cards[~day_cards.index.isin(caught)]
        top = candidates.sort_values("score", ascending=False, kind="stable").head(k)
        found = top.index[top["fraud"] > 0]
        precisions.append(len(found) / k)
        caught.update(found)
    return float(np.mean(precisions)) if precisions else 0.0


def evaluate(
    scores: np.ndarray, is_fraud: np.ndarray, days: np.ndarray, cards: np.ndarray, k: int = 100
) -> dict[str, float]:
    both_classes = 0 < is_fraud.sum() < len(is_fraud)
    return {
        "auc_roc": float(roc_auc_score(is_fraud, scores)) if both_classes else float("nan"),
        "average_precision": float(average_precision_score(is_fraud, scores))
        if both_classes
        else float("nan"),
        f"card_precision_at_{k}": card_precision_at_k(days, cards, scores, is_fraud, k),
    }
