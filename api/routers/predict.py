"""``POST /predict`` and ``POST /predict/batch``."""

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Header, Request, Response
from pydantic import ValidationError

from api.answers import Answer, Refused, field_problem, problems
from api.deps import ApiState, PredictKey, State
from api.idempotency import IDEMPOTENCY, MAX_IDEMPOTENCY_KEY
from api.keys import API_KEY_HEADER, PREDICT
from api.models import BatchRequest, BatchResponse, Problem, json_body
from schemas.scored import ScoredTransaction
from schemas.transaction import Transaction

router = APIRouter(tags=["predict"])

CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"model": Problem, "description": "Idempotency-Key reused with another body"}
}

# What FastAPI would have documented for ``Depends(APIKeyHeader)`` and an optional
# ``Idempotency-Key`` header parameter.
KEY_AND_IDEMPOTENCY: dict[str, Any] = {
    "security": [{"APIKeyHeader": []}],
    "parameters": [
        {
            "name": "idempotency-key",
            "in": "header",
            "required": False,
            "schema": {
                "anyOf": [
                    {"type": "string", "minLength": 1, "maxLength": MAX_IDEMPOTENCY_KEY},
                    {"type": "null"},
                ],
                "title": "Idempotency-Key",
            },
        }
    ],
}


@router.post(
    "/predict",
    response_model=ScoredTransaction,
    responses=CONFLICT,
    summary="Score one transaction",
    description="The decision, probability and top reason codes, from the same features, "
    "feature state and champion model as the stream. Send `Idempotency-Key` to make a "
    "retry return the first answer.",
    # the route reads its key, header and body itself, so the document says what it takes
    openapi_extra={**json_body(Transaction), **KEY_AND_IDEMPOTENCY},
)
async def predict(request: Request, state: State) -> Response:
    # reached through Starlette only by a browser's call when CORS is open (its headers are
    # the middleware's); every other call is answered by `api.fast_path`
    secret, token = request.headers.get(API_KEY_HEADER), request.headers.get(IDEMPOTENCY)
    return (await predict_answer(state, secret, token, await request.body())).response()


async def predict_answer(
    state: ApiState, secret: str | None, token: str | None, body: bytes
) -> Answer:
    """One call's answer from its key, idempotency token and body: the route's and the fast
    path's alike."""
    try:
        key = state.guard.authorise(secret, PREDICT)
    except Refused as refusal:
        return refusal.answer()
    try:
        # validated straight from its bytes by pydantic-core (FastAPI's own path decoded
        # the body to Python objects first, ~10 % of a call)
        transaction = Transaction.model_validate_json(body)
    except ValidationError as error:
        return Answer(422, orjson.dumps({"detail": problems(error.errors())}))
    late = state.service.admitted([transaction], "event_time")
    if isinstance(late, Answer):
        return late

    async def respond() -> bytes:
        return await state.service.score_one(transaction, late[0])

    return await state.idempotent(key.name, token, body, respond)


@router.post(
    "/predict/batch",
    response_model=BatchResponse,
    responses=CONFLICT,
    summary="Score several transactions in one call",
    description="Up to `FRAUD_API_MAX_BATCH` (100 unless set) transactions, answered in order.",
)
async def predict_batch(
    batch: BatchRequest,
    request: Request,
    state: State,
    key: PredictKey,
    idempotency_key: Annotated[
        str | None, Header(min_length=1, max_length=MAX_IDEMPOTENCY_KEY)
    ] = None,
) -> Response:
    if len(batch.transactions) > state.config.max_batch:
        return field_problem("transactions", f"at most {state.config.max_batch}").response()
    late = state.service.admitted(batch.transactions, "transactions.{index}.event_time")
    if isinstance(late, Answer):
        return late.response()

    async def respond() -> bytes:
        assert not isinstance(late, Answer)  # returned above
        scored = await state.service.score(batch.transactions, late)
        return b'{"results":[' + b",".join(scored) + b"]}"

    answer = await state.idempotent(key.name, idempotency_key, await request.body(), respond)
    return answer.response()
