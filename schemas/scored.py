"""The ``transactions.scored`` topic: a transaction with its decision and why."""

from __future__ import annotations

import enum
from typing import Annotated, Literal

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
