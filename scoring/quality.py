"""Rolling model quality over the most recent labelled transactions.

>>> quality = RollingQuality(size=4, threshold=0.5)
>>> quality.add([0.9, 0.2, 0.7, 0.1, 0.8], [True, False, False, False, True])
>>> quality.snapshot()  # the last four: 0.2 no, 0.7 no, 0.1 no, 0.8 yes
{'labelled': 4, 'frauds': 1, 'precision': 0.5, 'recall': 1.0, 'average_precision': 1.0}
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

import numpy as np
from sklearn.metrics import average_precision_score


class RollingQuality:
    def __init__(self, size: int = 5_000, threshold: float = 0.5) -> None:
        self.threshold = threshold
        self.scores: deque[float] = deque(maxlen=size)
        self.labels: deque[bool] = deque(maxlen=size)

    def add(self, scores: Sequence[float], labels: Sequence[bool]) -> None:
        self.scores.extend(scores)
        self.labels.extend(labels)

    def snapshot(self) -> dict[str, float]:
        scores, labels = np.array(self.scores), np.array(self.labels, dtype=bool)
        flagged = scores >= self.threshold
        frauds = int(labels.sum())
        return {
            "labelled": len(labels),
            "frauds": frauds,
            "precision": float((flagged & labels).sum() / flagged.sum()) if flagged.any() else 0.0,
            "recall": float((flagged & labels).sum() / frauds) if frauds else 0.0,
            "average_precision": (
                float(average_precision_score(labels, scores)) if 0 < frauds < len(labels) else 0.0
            ),
        }
