"""Topic names and what each topic is partitioned by: the one place they are spelled.

>>> TRANSACTIONS.name, TRANSACTIONS.key
('transactions', 'card_id')
>>> sorted(t.name for t in ALL_TOPICS)[:3]
['drift.reports', 'labels', 'model.updates']
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class TopicSpec:
    name: str
    key: str | None  # the field messages are keyed (and so partitioned) by; None = unkeyed


TRANSACTIONS = TopicSpec("transactions", "card_id")
SCORED = TopicSpec("transactions.scored", "card_id")
DEAD_LETTERS = TopicSpec("transactions.dlq", None)
LABELS = TopicSpec("labels", "transaction_id")
DRIFT_REPORTS = TopicSpec("drift.reports", "model_version")
RETRAIN_REQUESTS = TopicSpec("retrain.requests", None)
MODEL_UPDATES = TopicSpec("model.updates", "model_name")

ALL_TOPICS = (
    TRANSACTIONS,
    SCORED,
    DEAD_LETTERS,
    LABELS,
    DRIFT_REPORTS,
    RETRAIN_REQUESTS,
    MODEL_UPDATES,
)
