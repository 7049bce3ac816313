"""The dependencies the routes declare: the app's state, and the one authorisation check
(key, scope, rate) as ``PredictKey`` / ``LabelsKey``."""

import dataclasses
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader

from api.answers import Refused
from api.idempotency import Idempotent
from api.keys import API_KEY_HEADER, LABELS, PREDICT, ApiKey
from api.metrics import ApiMetrics
from api.parts import ApiConfig, ApiParts
from api.rate_limit import RateLimiter
from api.service import ScoringService


@dataclasses.dataclass
class KeyGuard:
    """Who may call what, how often."""

    config: ApiConfig
    limiter: RateLimiter

    def authorise(self, secret: str | None, scope: str) -> ApiKey:
        key = self.config.keys.get(secret or "")
        if key is None:
            raise Refused(401, "missing or unknown API key (send it in X-API-Key)")
        if scope not in key.scopes:
            raise Refused(403, f"this API key may not use {scope}")
        if not self.limiter.take(key.name):
            raise Refused(429, "too many requests for this API key; retry in a second")
        return key


@dataclasses.dataclass
class ApiState:
    """Everything a route may need, built once by ``create_app`` (``app.state.api``)."""

    config: ApiConfig
    parts: ApiParts
    metrics: ApiMetrics
    guard: KeyGuard
    service: ScoringService
    idempotent: Idempotent

    @classmethod
    def of(cls, config: ApiConfig, parts: ApiParts) -> "ApiState":
        metrics = ApiMetrics(parts.registry)
        return cls(
            config, parts, metrics,
            guard=KeyGuard(config, RateLimiter(config.rate_per_key)),
            service=ScoringService(config, parts, metrics),
            idempotent=Idempotent(parts.idempotency, config.idempotency_ttl_seconds),
        )  # fmt: skip


def api_state(request: Request) -> ApiState:
    state: ApiState = request.app.state.api
    return state


State = Annotated[ApiState, Depends(api_state)]
key_header = APIKeyHeader(name=API_KEY_HEADER, auto_error=False)


def allowed(scope: str) -> Callable[..., Coroutine[Any, Any, ApiKey]]:
    """The authorisation dependency for ``scope``."""

    async def check(state: State, secret: Annotated[str | None, Depends(key_header)]) -> ApiKey:
        return state.guard.authorise(secret, scope)

    return check


PredictKey = Annotated[ApiKey, Depends(allowed(PREDICT))]
LabelsKey = Annotated[ApiKey, Depends(allowed(LABELS))]
