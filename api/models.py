"""The bodies the routes take and answer (beside the topic schemas they reuse)."""

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.events import DecisionThresholds
from schemas.scored import ScoredTransaction
from schemas.transaction import Transaction


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    transactions: list[Transaction] = Field(min_length=1)


class BatchResponse(BaseModel):
    results: list[ScoredTransaction]


class LabelAccepted(BaseModel):
    accepted: bool
    transaction_id: str


class ModelInfo(BaseModel):
    name: str
    version: str
    fallback: bool
    metrics: dict[str, float]
    since: datetime
    thresholds: DecisionThresholds  # what decides now
    thresholds_source: Literal["model", "configured"]  # from the version, or the settings


class Problem(BaseModel):
    detail: str


class FieldProblem(BaseModel):
    field: str
    problem: str


class ValidationProblem(BaseModel):
    detail: list[FieldProblem]


def json_body(model: type[BaseModel]) -> dict[str, Any]:
    """The OpenAPI request body of an endpoint that parses ``model`` itself."""
    schema = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}
