"""The remaining topics: dead letters, labels, drift reports, retrain requests, model updates."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from schemas.pan import redact_pans
from schemas.transaction import Flag, Identifier, Timestamp

DeadLetterReason = Literal["invalid", "future", "too_old"]


class DeadLetter(BaseModel):
    """A message that could not be decoded, validated or scored, with where it came from.

    ``raw`` has every card-number-like digit run masked before it is built (see
    ``schemas.pan.redact_pans``), so the dead-letter topic never holds a PAN.
    """

    model_config = ConfigDict(frozen=True, ser_json_bytes="base64", val_json_bytes="base64")

    raw: bytes
    error: str
    # invalid (not JSON, not a valid Transaction), future (event time ahead of its ingest
    # time beyond the skew limit), too_old (beyond the age limit): the metrics' label
    reason: DeadLetterReason = "invalid"
    origin_topic: str
    origin_partition: int
    origin_offset: int
    failed_time: AwareDatetime
    schema_version: Literal[1] = 1

    @classmethod
    def of(
        cls,
        value: bytes,
        error: str,
        topic: str,
        partition: int,
        offset: int,
        failed_time: datetime,
        reason: DeadLetterReason = "invalid",
    ) -> DeadLetter:
        """The dead letter of a message: huge payloads cut, card numbers masked."""
        return cls(
            raw=redact_pans(value[:65_536]), error=error, reason=reason, origin_topic=topic,
            origin_partition=partition, origin_offset=offset, failed_time=failed_time,
        )  # fmt: skip


class LabelSource(enum.StrEnum):
    CHARGEBACK = "chargeback"
    ANALYST = "analyst"


class Label(BaseModel):
    model_config = ConfigDict(frozen=True)

    transaction_id: Identifier
    is_fraud: Annotated[bool, Flag]
    source: LabelSource = LabelSource.CHARGEBACK
    labelled_at: Timestamp
    schema_version: Literal[1] = 1


class Severity(enum.StrEnum):
    NONE = "none"
    MODERATE = "moderate"
    SEVERE = "severe"


class FeatureDrift(BaseModel):
    model_config = ConfigDict(frozen=True, allow_inf_nan=False)

    feature: str
    test: Literal["ks", "chi2"]
    statistic: float
    p_value: Annotated[float, Field(ge=0.0, le=1.0)]
    psi: float
    drifted: bool


class DriftReport(BaseModel):
    model_config = ConfigDict(frozen=True, allow_inf_nan=False)

    model_name: str
    model_version: str
    window_start: AwareDatetime
    window_end: AwareDatetime
    events: int
    features: tuple[FeatureDrift, ...]
    drift_share: Annotated[float, Field(ge=0.0, le=1.0)]
    prediction_drift: FeatureDrift | None = None
    decision_mix_drift: FeatureDrift | None = None
    severity: Severity
    report_path: str | None = None  # the Evidently HTML on the writer's disk
    report_uri: str | None = None  # the same kept in the registry (MLflow: runs:/<run>/drift/…)
    schema_version: Literal[1] = 1


class RetrainReason(enum.StrEnum):
    DRIFT = "drift"
    SCHEDULE = "schedule"
    MANUAL = "manual"
    PERFORMANCE = "performance"


class DriftEvidence(BaseModel):
    """What the drift agent saw: the window of a served version that drifted."""

    model_config = ConfigDict(frozen=True, allow_inf_nan=False)

    model_version: str
    window_start: AwareDatetime
    window_end: AwareDatetime
    drift_share: Annotated[float, Field(ge=0.0, le=1.0)]
    drifted_features: tuple[str, ...] = ()


class RetrainRequest(BaseModel):
    """Version 2 carries the drift evidence typed (``drift``); ``evidence`` keeps free-form
    context (who asked, which schedule). A version 1 request (its drift evidence in
    ``evidence``) is read as version 2."""

    model_config = ConfigDict(frozen=True)

    request_id: Identifier
    reason: RetrainReason
    drift: DriftEvidence | None = None  # for reason "drift"
    evidence: dict[str, str | float] = Field(default_factory=dict)
    requested_at: AwareDatetime
    schema_version: Literal[1, 2] = 2

    @model_validator(mode="before")
    @classmethod
    def _from_version_1(cls, data: Any) -> Any:
        if not isinstance(data, dict) or data.get("schema_version", 2) != 1:
            return data
        evidence = dict(data.get("evidence") or {})
        if data.get("reason") == RetrainReason.DRIFT.value and "model_version" in evidence:
            features = str(evidence.pop("drifted_features", "") or "")
            data = {**data, "drift": {
                "model_version": str(evidence.pop("model_version")),
                "window_start": evidence.pop("window_start"),
                "window_end": evidence.pop("window_end"),
                "drift_share": evidence.pop("drift_share"),
                "drifted_features": tuple(f for f in features.split(",") if f),
            }}  # fmt: skip
        return {**data, "evidence": evidence, "schema_version": 2}


class DecisionThresholds(BaseModel):
    """Scores at or above ``review`` go to an analyst; at or above ``decline``, are declined."""

    model_config = ConfigDict(frozen=True)

    review: float = Field(ge=0.0, le=1.0)
    decline: float = Field(ge=0.0, le=1.0)


CHAMPION = "champion"  # the registry alias of the model that decides; scorers follow it


class ModelUpdate(BaseModel):
    model_config = ConfigDict(frozen=True)

    model_name: str
    version: str  # a string everywhere: MLflow gives an int over sqlite, a str over HTTP
    alias: str
    metrics: dict[str, float]
    previous_version: str | None = None
    updated_at: AwareDatetime
    # the version's own thresholds, from its review budget (None: it has none; the
    # configured ones decide)
    thresholds: DecisionThresholds | None = None
    schema_version: Literal[1] = 1
