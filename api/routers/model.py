"""``GET /model``: the model that scores right now."""

import math

from fastapi import APIRouter

from api.deps import PredictKey, State
from api.models import ModelInfo
from schemas.events import DecisionThresholds

router = APIRouter(tags=["model"])


@router.get("/model", response_model=ModelInfo, summary="The model that scores right now")
async def model(state: State, key: PredictKey) -> ModelInfo:
    served = state.parts.models.current()
    own = served.thresholds
    deciding = own or state.parts.pipeline.thresholds
    return ModelInfo(
        name=served.name,
        version=served.version,
        fallback=served.fallback,
        metrics={k: v for k, v in getattr(served, "metrics", {}).items() if math.isfinite(v)},
        since=state.parts.models.since,
        thresholds=DecisionThresholds(review=deciding.review, decline=deciding.decline),
        thresholds_source="model" if own else "configured",
    )
