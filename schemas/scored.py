"""The ``transactions.scored`` topic: a transaction with its decision and why."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Annotated, Any, Literal

import orjson
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from schemas.transaction import Transaction

Probability = Annotated[float, Field(ge=0.0, le=1.0)]


class Decision(enum.StrEnum):
    APPROVE = "approve"
    REVIEW = "review"
    DECLINE = "decline"


class Reason(BaseModel):
    """One reason code: the feature that pushed the score up, its value and its push."""

    model_config = ConfigDict(frozen=True)

    code: str
    feature: str
    value: float
    contribution: float


class ScoredTransaction(BaseModel):
    model_config = ConfigDict(frozen=True, allow_inf_nan=False)

    transaction: Transaction
    fraud_probability: Probability
    decision: Decision
    reasons: tuple[Reason, ...]
    model_name: str
    model_version: str
    fallback: bool = False  # True when the rules decided because no model was available
    # True when the feature store was unreachable: features from what the scorer held in
    # memory (no terminal counters), and the rules decided (``fallback`` too)
    degraded: bool = False
    features: dict[str, float]
    ingest_time: AwareDatetime
    scored_time: AwareDatetime
    challenger_probability: Probability | None = None
    challenger_version: str | None = None
    # True when the event time lies further behind its stream than any feature window reaches
    # (FRAUD_MAX_LATENESS past the longest): scored, but the feature state was not changed
    late: bool = False
    schema_version: Literal[1] = 1


class ScoredEvent:
    """A ``ScoredTransaction`` as the sinks read it: parsed from its JSON once and not
    validated again (the scorer built it from the model above), with the fields they use
    typed. ``data`` is the parsed JSON, for writing it whole.

    >>> event = ScoredEvent.parse(b'{"transaction": {"transaction_id": "t1", '
    ...     b'"event_time": "2026-03-01T00:00:00+00:00"}, "fraud_probability": 0.25, '
    ...     b'"decision": "approve", "model_name": "fd", "model_version": "3", '
    ...     b'"features": {"amount": 12.5}}')
    >>> event.transaction_id, event.event_time, event.features["amount"], event.fallback
    ('t1', 1772323200.0, 12.5, False)
    """

    __slots__ = ("data",)

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    @classmethod
    def parse(cls, value: bytes) -> ScoredEvent:
        return cls(orjson.loads(value or b"{}"))

    @property
    def transaction_id(self) -> str:
        return str(self.data["transaction"]["transaction_id"])

    @property
    def event_time(self) -> float:
        """Epoch seconds."""
        return datetime.fromisoformat(self.data["transaction"]["event_time"]).timestamp()

    @property
    def features(self) -> dict[str, float]:
        features: dict[str, float] = self.data["features"]
        return features

    @property
    def fraud_probability(self) -> float:
        return float(self.data["fraud_probability"])

    @property
    def decision(self) -> str:
        return str(self.data["decision"])

    @property
    def model_name(self) -> str | None:
        return self.data.get("model_name")

    @property
    def model_version(self) -> str:
        return str(self.data["model_version"])

    @property
    def fallback(self) -> bool:
        return bool(self.data.get("fallback", False))
