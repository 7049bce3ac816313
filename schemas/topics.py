"""Topic names, what each is partitioned by and the schema of its values: spelled once, here.

>>> TRANSACTIONS.name, TRANSACTIONS.key, TRANSACTIONS.schema.__name__
('transactions', 'card_id', 'Transaction')
>>> sorted(t.name for t in ALL_TOPICS)[:3]
['drift.reports', 'labels', 'model.updates']
"""

from __future__ import annotations

import dataclasses

from pydantic import BaseModel

from schemas.events import DeadLetter, DriftReport, Label, ModelUpdate, RetrainRequest
from schemas.scored import ScoredTransaction
from schemas.transaction import Transaction


@dataclasses.dataclass(frozen=True)
class TopicSpec:
    name: str
    key: str | None  # the field messages are keyed (and so partitioned) by; None = unkeyed
    schema: type[BaseModel]


TRANSACTIONS = TopicSpec("transactions", "card_id", Transaction)
SCORED = TopicSpec("transactions.scored", "card_id", ScoredTransaction)
DEAD_LETTERS = TopicSpec("transactions.dlq", None, DeadLetter)
LABELS = TopicSpec("labels", "transaction_id", Label)
DRIFT_REPORTS = TopicSpec("drift.reports", "model_version", DriftReport)
RETRAIN_REQUESTS = TopicSpec("retrain.requests", None, RetrainRequest)
MODEL_UPDATES = TopicSpec("model.updates", "model_name", ModelUpdate)

ALL_TOPICS = (
    TRANSACTIONS,
    SCORED,
    DEAD_LETTERS,
    LABELS,
    DRIFT_REPORTS,
    RETRAIN_REQUESTS,
    MODEL_UPDATES,
)
