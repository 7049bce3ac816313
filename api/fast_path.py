"""``POST /predict`` as a plain ASGI call, before Starlette's stack.

Starlette's middleware stack, routing, request object and dependency solving were together
~a third of a call's CPU under load, more than the model. The fast path answers with the same
functions as the route (``api.routers.predict.predict_answer``: key, scope, rate, validation,
idempotency) behind the same body limit, and measures the call as ``Measure`` would.
"""

import logging
import time
from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from api.answers import INTERNAL_ERROR
from api.deps import ApiState
from api.metrics import CLIENT_CLOSED
from api.middleware import Disconnected, body_within, too_large
from api.routers.predict import predict_answer

logger = logging.getLogger(__name__)


class DirectApp(FastAPI):
    """FastAPI, with the calls in ``direct`` (by method and path) answered as plain ASGI
    calls before Starlette's stack. With CORS open, a call that names an ``Origin`` takes
    the full stack, where the CORS middleware answers it."""

    def __init__(self, *, cors: bool, **settings: Any) -> None:
        super().__init__(**settings)
        self.cors = cors
        self.direct: dict[tuple[str, str], ASGIApp] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            direct = self.direct.get((scope["method"], route_path(scope)))
            if direct is not None and not (self.cors and names_origin(scope)):
                await direct(scope, receive, send)
                return
        await super().__call__(scope, receive, send)


def route_path(scope: Scope) -> str:
    """The path the routes see: behind a proxy that mounts the API under a prefix (uvicorn's
    ``--root-path``), ``scope["path"]`` starts with that prefix, as Starlette's routing
    reads it.

    >>> [route_path({"path": "/api/predict", "root_path": "/api"}),
    ...  route_path({"path": "/apiary", "root_path": "/api"}), route_path({"path": "/predict"})]
    ['/predict', '/apiary', '/predict']
    """
    path, root = scope["path"], scope.get("root_path", "")
    if root and path.startswith(root) and path[len(root) : len(root) + 1] == "/":
        return str(path[len(root) :])
    return str(path)


def names_origin(scope: Scope) -> bool:
    return any(name == b"origin" for name, _ in scope["headers"])


def predict_directly(state: ApiState) -> ASGIApp:
    async def call(scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        secret = token = declared = None
        for name, value in scope["headers"]:  # lower-case names; the first of each counts
            if name == b"x-api-key" and secret is None:
                secret = value.decode("latin-1")
            elif name == b"idempotency-key" and token is None:
                token = value.decode("latin-1")
            elif name == b"content-length" and declared is None:
                declared = value
        status = 500
        max_bytes = state.config.max_body_bytes
        try:
            body = await body_within(receive, declared, max_bytes)
            if body is None:
                answer = too_large(max_bytes)
            else:
                answer = await predict_answer(state, secret, token, body)
        except Disconnected:  # the caller went away before its body arrived: no answer
            state.metrics.observe("/predict", CLIENT_CLOSED, time.perf_counter() - started)
            return
        except Exception:
            logger.exception("POST /predict failed")
            answer = INTERNAL_ERROR
        try:
            await answer.send(send)
            status = answer.status
        finally:
            state.metrics.observe("/predict", status, time.perf_counter() - started)

    return call
