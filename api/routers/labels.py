"""``POST /labels``."""

from fastapi import APIRouter

from api.deps import LabelsKey, State
from api.models import LabelAccepted
from schemas.events import Label

router = APIRouter(tags=["labels"])


@router.post(
    "/labels",
    status_code=202,
    response_model=LabelAccepted,
    summary="Report whether a transaction was fraud",
    description="Published to the `labels` topic, where the stream turns it into terminal "
    "risk, model-quality metrics and training data.",
)
async def labels(label: Label, state: State, key: LabelsKey) -> LabelAccepted:
    value = label.model_dump_json().encode()
    await state.parts.publish("labels", label.transaction_id.encode(), value)
    return LabelAccepted(accepted=True, transaction_id=label.transaction_id)
