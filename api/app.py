"""``create_app``: the FastAPI app from its configuration and ready parts."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse

from api.answers import INTERNAL_ERROR, Refused, problems
from api.deps import ApiState
from api.fast_path import DirectApp, predict_directly
from api.idempotency import IDEMPOTENCY
from api.keys import API_KEY_HEADER
from api.middleware import BodyLimit, InternalErrors, Measure
from api.models import Problem, ValidationProblem
from api.parts import ApiConfig, ApiParts
from api.routers import health, labels, model, predict


def create_app(config: ApiConfig, parts: ApiParts) -> FastAPI:
    state = ApiState.of(config, parts)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        tasks = [asyncio.create_task(run()) for run in parts.background]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()

    app = DirectApp(
        cors=bool(config.cors_origins),
        title="fraudstream",
        summary="The fraud score of a card payment, the same as the stream's.",
        version="1",
        lifespan=lifespan,
        # FastAPI's own OpenTelemetry hooks asked the global providers on every request (~6 %
        # of a /predict); the API's Prometheus metrics are its telemetry
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
        responses={
            400: {"model": Problem, "description": "the body is not readable JSON"},
            401: {"model": Problem, "description": "no or unknown API key"},
            403: {"model": Problem, "description": "the key may not do this"},
            413: {"model": Problem, "description": "body larger than allowed"},
            422: {"model": ValidationProblem, "description": "a field is missing or wrong"},
            429: {"model": Problem, "description": "too many requests for this key"},
        },
    )
    app.state.api = state
    app.add_middleware(BodyLimit, max_bytes=config.max_body_bytes)
    app.add_middleware(InternalErrors)
    app.add_middleware(Measure, metrics=state.metrics)
    if config.cors_origins:  # outermost: a refusal by the others still names the origin
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(config.cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=[API_KEY_HEADER, "Content-Type", IDEMPOTENCY],
        )
    add_error_handlers(app)
    for resource in (predict, labels, model, health):
        app.include_router(resource.router)
    app.direct[("POST", "/predict")] = predict_directly(state)
    return app


def add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(Refused)
    async def refused(request: Request, error: Refused) -> Response:
        return error.answer().response()

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> Response:
        return JSONResponse({"detail": problems(error.errors())}, 422)

    @app.exception_handler(Exception)
    async def failed(request: Request, error: Exception) -> Response:
        # a failure outside the routes' own middleware (``InternalErrors`` answers theirs)
        # answers alike; Starlette logs it and its traceback after this answer
        return INTERNAL_ERROR.response()
