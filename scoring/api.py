"""The REST facade: the stream's score, synchronously, for callers that cannot wait.

``build_api`` takes ready parts (the scoring pipeline on the online feature store, the model
holder, a publisher, the idempotency store, readiness checks), so this module knows neither
Kafka nor Redis; ``streams.api`` wires the real ones. A call computes the features from the
current state exactly as the stream does (the transaction itself included) and never writes
them: the stream is the one writer of feature state. With ``record`` on, the transaction is
also published to ``transactions``, where the stream scores it into the same state.
"""

import asyncio
import dataclasses
import hashlib
import logging
import math
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, Protocol

import orjson
from fastapi import Depends, FastAPI, Header, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from schemas.events import DecisionThresholds, Label
from schemas.scored import ScoredTransaction
from schemas.transaction import Transaction
from scoring.event_time import Verdict
from scoring.model_holder import ModelHolder
from scoring.pipeline import InboundMessage, ScoringPipeline
from scoring.serving import version_number

logger = logging.getLogger(__name__)

PREDICT, LABELS = "predict", "labels"  # what a key may do
SCOPES = frozenset({PREDICT, LABELS})
API_KEY_HEADER = "X-API-Key"
IDEMPOTENCY = "Idempotency-Key"
MAX_IDEMPOTENCY_KEY = 255  # characters
CLIENT_CLOSED = 499  # the status metrics give a call whose caller left before its body came
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)

Publish = Callable[[str, bytes, bytes], Awaitable[None]]  # topic kind, key, value
Check = Callable[[], Coroutine[Any, Any, bool]]


@dataclasses.dataclass(frozen=True)
class ApiKey:
    name: str  # what logs and metrics show; never the secret
    secret: str
    scopes: frozenset[str] = SCOPES


def parse_keys(text: str) -> dict[str, ApiKey]:
    """Keys from ``name:secret[:scope+scope]`` entries separated by commas or new lines.

    >>> keys = parse_keys("checkout:checkout-secret-01:predict, team:fraud-team-secret-02")
    >>> sorted((k.name, sorted(k.scopes)) for k in keys.values())
    [('checkout', ['predict']), ('team', ['labels', 'predict'])]
    """
    keys: dict[str, ApiKey] = {}
    for entry in text.replace("\n", ",").split(","):
        if not entry.strip():
            continue
        parts = [part.strip() for part in entry.split(":")]
        if len(parts) not in (2, 3) or not all(parts[:2]):
            raise ValueError("an API key entry is name:secret or name:secret:scope+scope")
        scopes = frozenset(parts[2].split("+")) if len(parts) == 3 else SCOPES
        if unknown := scopes - SCOPES:
            raise ValueError(f"unknown API key scope(s) {sorted(unknown)} for {parts[0]!r}")
        if len(parts[1]) < 16:
            raise ValueError(f"the API key of {parts[0]!r} is shorter than 16 characters")
        keys[parts[1]] = ApiKey(parts[0], parts[1], scopes)
    return keys


@dataclasses.dataclass(frozen=True)
class ApiConfig:
    keys: Mapping[str, ApiKey]  # by secret
    record: bool = False  # also publish each predicted transaction to `transactions`
    max_body_bytes: int = 1_048_576
    max_batch: int = 100
    rate_per_key: float = 5_000.0  # requests a second, with a burst of one second's worth
    cors_origins: tuple[str, ...] = ()
    idempotency_ttl_seconds: int = 24 * 3600


class IdempotencyStore(Protocol):
    def get(self, key: str) -> bytes | None: ...
    def put_if_absent(self, key: str, value: bytes, ttl_seconds: int) -> bool: ...


class InMemoryIdempotency:
    """For tests and a single process; the served API keeps them in Redis."""

    def __init__(self) -> None:
        self.values: dict[str, bytes] = {}

    def get(self, key: str) -> bytes | None:
        return self.values.get(key)

    def put_if_absent(self, key: str, value: bytes, ttl_seconds: int) -> bool:
        return self.values.setdefault(key, value) is value


@dataclasses.dataclass
class ApiParts:
    pipeline: ScoringPipeline
    models: ModelHolder
    publish: Publish
    idempotency: IdempotencyStore
    checks: Mapping[str, Check]  # readiness, by name ("redis", "kafka")
    background: tuple[Callable[[], Coroutine[Any, Any, None]], ...] = ()  # run while serving
    registry: CollectorRegistry = dataclasses.field(default_factory=CollectorRegistry)


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


def build_api(config: ApiConfig, parts: ApiParts) -> FastAPI:
    metrics = _ApiMetrics(parts.registry)
    limiter = _RateLimiter(config.rate_per_key)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        tasks = [asyncio.create_task(run()) for run in parts.background]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()

    app = _Api(
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
    app.add_middleware(_BodyLimit, max_bytes=config.max_body_bytes)
    app.add_middleware(_InternalErrors)
    app.add_middleware(_Measure, metrics=metrics)
    if config.cors_origins:  # outermost: a refusal by the others still names the origin
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(config.cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=[API_KEY_HEADER, "Content-Type", IDEMPOTENCY],
        )
    key_header = APIKeyHeader(name=API_KEY_HEADER, auto_error=False)

    def authorised(secret: str | None, scope: str) -> ApiKey:
        key = config.keys.get(secret or "")
        if key is None:
            raise _Refused(401, "missing or unknown API key (send it in X-API-Key)")
        if scope not in key.scopes:
            raise _Refused(403, f"this API key may not use {scope}")
        if not limiter.take(key.name):
            raise _Refused(429, "too many requests for this API key; retry in a second")
        return key

    def allowed(scope: str) -> Callable[[str | None], Coroutine[Any, Any, ApiKey]]:
        async def check(secret: Annotated[str | None, Depends(key_header)] = None) -> ApiKey:
            return authorised(secret, scope)

        return check

    @app.exception_handler(_Refused)
    async def refused(request: Request, error: _Refused) -> Response:
        return error.answer().response()

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> Response:
        return JSONResponse({"detail": _problems(error.errors())}, 422)

    @app.exception_handler(Exception)
    async def failed(request: Request, error: Exception) -> Response:
        # a failure outside the routes' own middleware (``_InternalErrors`` answers theirs)
        # answers alike; Starlette logs it and its traceback after this answer
        return INTERNAL_ERROR.response()

    def admitted(transactions: list[Transaction], field: str) -> list[bool] | _Answer:
        """The event-time verdicts (``scoring.event_time``) on transactions received now:
        each one's late flag, or the 422 that names the first refused one's event_time."""
        message = InboundMessage(b"", "api", 0, 0, datetime.now(UTC))
        late = []
        for index, transaction in enumerate(transactions):
            judgement = parts.pipeline.judge(transaction, message)
            if judgement.kind.refused:
                where = field.format(index=index)
                problem = {"field": where, "problem": judgement.problem}
                return _Answer(422, orjson.dumps({"detail": [problem]}))
            late.append(judgement.kind is Verdict.LATE)
        return late

    def score_now(transactions: list[Transaction], late: list[bool]) -> list[bytes]:
        message = InboundMessage(b"", "api", 0, 0, datetime.now(UTC))
        result = parts.pipeline.score_transactions(
            transactions, [message] * len(transactions), late=late
        )
        if result.scorer.fallback:
            metrics.fallback.inc(len(transactions))
        return [value for _, value in result.encoded()]

    together = _Coalescer(score_now, config.max_batch)

    async def record(transactions: list[Transaction]) -> None:
        if config.record:
            for transaction in transactions:
                value = transaction.model_dump_json().encode()
                await parts.publish("transactions", transaction.card_id.encode(), value)

    async def score(transactions: list[Transaction], late: list[bool]) -> list[bytes]:
        answers = score_now(transactions, late)
        await record(transactions)
        return answers

    async def idempotent(
        key: ApiKey, token: str | None, body: bytes, respond: Callable[[], Awaitable[bytes]]
    ) -> _Answer:
        """The same token and body get the stored answer; another body, 409."""
        if token is None:
            return _Answer(200, await respond())
        if not 0 < len(token) <= MAX_IDEMPOTENCY_KEY:
            problem = {
                "field": IDEMPOTENCY,
                "problem": f"must be 1-{MAX_IDEMPOTENCY_KEY} characters",
            }
            return _Answer(422, orjson.dumps({"detail": [problem]}))
        digest = hashlib.sha256(body).hexdigest().encode()
        store_key = f"idempotency:{key.name}:{token}"
        stored = parts.idempotency.get(store_key)
        if stored is None:
            answer = await respond()
            if parts.idempotency.put_if_absent(
                store_key, digest + b"\n" + answer, config.idempotency_ttl_seconds
            ):
                return _Answer(200, answer)
            stored = parts.idempotency.get(store_key) or digest + b"\n" + answer
        stored_digest, _, answer = stored.partition(b"\n")
        if stored_digest != digest:
            return _problem(409, "this Idempotency-Key was used with another body")
        return _Answer(200, answer, ((b"idempotent-replayed", b"true"),))

    conflict: dict[int | str, dict[str, Any]] = {
        409: {"model": Problem, "description": "Idempotency-Key reused with another body"}
    }

    @app.post(
        "/predict",
        response_model=ScoredTransaction,
        responses=conflict,
        summary="Score one transaction",
        description="The decision, probability and top reason codes, from the same features, "
        "feature state and champion model as the stream. Send `Idempotency-Key` to make a "
        "retry return the first answer.",
        # the route reads its key, header and body itself, so the document says what it takes
        openapi_extra={**_json_body(Transaction), **_KEY_AND_IDEMPOTENCY},
    )
    async def predict(request: Request) -> Response:
        # reached through Starlette only by a browser's call when CORS is open (its headers
        # are the middleware's); every other call is answered by `predict_directly`
        secret, token = request.headers.get(API_KEY_HEADER), request.headers.get(IDEMPOTENCY)
        return (await predict_answer(secret, token, await request.body())).response()

    async def predict_answer(secret: str | None, token: str | None, body: bytes) -> _Answer:
        try:
            key = authorised(secret, PREDICT)
        except _Refused as refusal:
            return refusal.answer()
        try:
            # validated straight from its bytes by pydantic-core (FastAPI's own path decoded
            # the body to Python objects first, ~10 % of a call)
            transaction = Transaction.model_validate_json(body)
        except ValidationError as error:
            return _Answer(422, orjson.dumps({"detail": _problems(error.errors())}))
        late = admitted([transaction], "event_time")
        if isinstance(late, _Answer):
            return late

        async def respond() -> bytes:
            answer = await together(transaction, late[0])
            await record([transaction])
            return answer

        return await idempotent(key, token, body, respond)

    async def predict_directly(scope: Scope, receive: Receive, send: Send) -> None:
        """``POST /predict`` as a plain ASGI call: the same checks, answers and metrics as
        the route, without Starlette's middleware stack, routing, request object and
        dependency solving (together ~a third of a call's CPU under load, more than the
        model). The body limit, key, rate limit, validation and idempotency are the route's
        own functions."""
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
        try:
            body = await _body_within(receive, declared, config.max_body_bytes)
            if body is None:
                answer = _too_large(config.max_body_bytes)
            else:
                answer = await predict_answer(secret, token, body)
        except _Disconnected:  # the caller went away before its body arrived: no answer
            metrics.observe("/predict", CLIENT_CLOSED, time.perf_counter() - started)
            return
        except Exception:
            logger.exception("POST /predict failed")
            answer = INTERNAL_ERROR
        try:
            await answer.send(send)
            status = answer.status
        finally:
            metrics.observe("/predict", status, time.perf_counter() - started)

    app.direct[("POST", "/predict")] = predict_directly

    @app.post(
        "/predict/batch",
        response_model=BatchResponse,
        responses=conflict,
        summary="Score several transactions in one call",
        description=f"Up to {config.max_batch} transactions, answered in order.",
    )
    async def predict_batch(
        batch: BatchRequest,
        request: Request,
        key: Annotated[ApiKey, Depends(allowed(PREDICT))],
        idempotency_key: Annotated[
            str | None, Header(min_length=1, max_length=MAX_IDEMPOTENCY_KEY)
        ] = None,
    ) -> Response:
        if len(batch.transactions) > config.max_batch:
            return JSONResponse(
                {"detail": [{"field": "transactions", "problem": f"at most {config.max_batch}"}]},
                422,
            )

        late = admitted(batch.transactions, "transactions.{index}.event_time")
        if isinstance(late, _Answer):
            return late.response()

        async def respond() -> bytes:
            assert not isinstance(late, _Answer)  # returned above
            return b'{"results":[' + b",".join(await score(batch.transactions, late)) + b"]}"

        answer = await idempotent(key, idempotency_key, await request.body(), respond)
        return answer.response()

    @app.post(
        "/labels",
        status_code=202,
        response_model=LabelAccepted,
        summary="Report whether a transaction was fraud",
        description="Published to the `labels` topic, where the stream turns it into terminal "
        "risk, model-quality metrics and training data.",
    )
    async def labels(
        label: Label, key: Annotated[ApiKey, Depends(allowed(LABELS))]
    ) -> LabelAccepted:
        value = label.model_dump_json().encode()
        await parts.publish("labels", label.transaction_id.encode(), value)
        return LabelAccepted(accepted=True, transaction_id=label.transaction_id)

    @app.get("/model", response_model=ModelInfo, summary="The model that scores right now")
    async def model(key: Annotated[ApiKey, Depends(allowed(PREDICT))]) -> ModelInfo:
        served = parts.models.current()
        own = served.thresholds
        deciding = own or parts.pipeline.thresholds
        return ModelInfo(
            name=served.name,
            version=served.version,
            fallback=served.fallback,
            metrics={k: v for k, v in getattr(served, "metrics", {}).items() if math.isfinite(v)},
            since=parts.models.since,
            thresholds=DecisionThresholds(review=deciding.review, decline=deciding.decline),
            thresholds_source="model" if own else "configured",
        )

    @app.get("/health", summary="The process is alive")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/ready",
        summary="A model is loaded and Redis and Kafka answer",
        responses={503: {"description": "not ready: the body says what is missing"}},
    )
    async def ready() -> Response:
        served = parts.models.current()
        results = {name: await check() for name, check in parts.checks.items()}
        body = {"ready": all(results.values()), "model": f"{served.name}/{served.version}"}
        return JSONResponse({**body, **results}, 200 if body["ready"] else 503)

    @app.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
    async def prometheus() -> Response:
        served = parts.models.current()
        metrics.model.clear()
        metrics.model.labels(served.name, served.version).set(1)
        metrics.model_version.clear()
        metrics.model_version.labels(served.name).set(version_number(served.version))
        return Response(generate_latest(parts.registry), media_type="text/plain; version=0.0.4")

    return app


class _Api(FastAPI):
    """FastAPI, with the calls in ``direct`` (by method and path) answered as plain ASGI
    calls before Starlette's stack. With CORS open, a call that names an ``Origin`` takes
    the full stack, where the CORS middleware answers it."""

    def __init__(self, *, cors: bool, **settings: Any) -> None:
        super().__init__(**settings)
        self.cors = cors
        self.direct: dict[tuple[str, str], ASGIApp] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            direct = self.direct.get((scope["method"], _route_path(scope)))
            if direct is not None and not (self.cors and _names_origin(scope)):
                await direct(scope, receive, send)
                return
        await super().__call__(scope, receive, send)


def _route_path(scope: Scope) -> str:
    """The path the routes see: behind a proxy that mounts the API under a prefix (uvicorn's
    ``--root-path``), ``scope["path"]`` starts with that prefix, as Starlette's routing
    reads it.

    >>> [_route_path({"path": "/api/predict", "root_path": "/api"}),
    ...  _route_path({"path": "/apiary", "root_path": "/api"}), _route_path({"path": "/predict"})]
    ['/predict', '/apiary', '/predict']
    """
    path, root = scope["path"], scope.get("root_path", "")
    if root and path.startswith(root) and path[len(root) : len(root) + 1] == "/":
        return str(path[len(root) :])
    return str(path)


def _names_origin(scope: Scope) -> bool:
    return any(name == b"origin" for name, _ in scope["headers"])


@dataclasses.dataclass(frozen=True)
class _Answer:
    """A JSON answer, for Starlette (``response``) or for a plain ASGI call (``head``)."""

    status: int
    body: bytes
    headers: tuple[tuple[bytes, bytes], ...] = ()

    def head(self) -> list[tuple[bytes, bytes]]:
        length = (b"content-length", b"%d" % len(self.body))
        return [(b"content-type", b"application/json"), length, *self.headers]

    def response(self) -> Response:
        headers = {name.decode(): value.decode() for name, value in self.headers}
        return Response(self.body, self.status, headers, media_type="application/json")

    async def send(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status, "headers": self.head()})
        await send({"type": "http.response.body", "body": self.body})


def _problem(status: int, detail: str) -> _Answer:
    return _Answer(status, orjson.dumps({"detail": detail}))


INTERNAL_ERROR = _problem(500, "internal error; the call did not complete")


def _problems(errors: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    """The 422's list: each field and what is wrong with it, never the value (it may be a
    card number)."""
    return [
        {
            "field": ".".join(str(p) for p in problem["loc"] if p != "body") or "body",
            "problem": str(problem["msg"]).removeprefix("Value error, "),
        }
        for problem in errors
    ]


class _Refused(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail

    def answer(self) -> _Answer:
        retry = ((b"retry-after", b"1"),) if self.status == 429 else ()
        return _Answer(self.status, orjson.dumps({"detail": self.detail}), retry)


class _ApiMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "fraudstream_api_requests", "REST requests", ["route", "status"], registry=registry
        )
        self.latency = Histogram(
            "fraudstream_api_latency_seconds", "REST request latency", ["route"],
            buckets=LATENCY_BUCKETS, registry=registry,
        )  # fmt: skip
        self.fallback = Counter(
            "fraudstream_api_fallback", "Transactions the rules scored", registry=registry
        )
        self.model = Gauge(
            "fraudstream_api_serving_model", "1 for the model this API serves",
            ["model", "version"], registry=registry,
        )  # fmt: skip
        self.model_version = Gauge(
            "fraudstream_api_serving_model_version",
            "The registry version this API serves, as a number (0: the rules fallback)",
            ["model"], registry=registry,
        )  # fmt: skip

    def observe(self, route: str, status: int, seconds: float) -> None:
        self.requests.labels(route, str(status)).inc()
        self.latency.labels(route).observe(seconds)


# What FastAPI would have documented for ``Depends(APIKeyHeader)`` and an optional
# ``Idempotency-Key`` header parameter.
_KEY_AND_IDEMPOTENCY: dict[str, Any] = {
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


def _json_body(model: type[BaseModel]) -> dict[str, Any]:
    """The OpenAPI request body of an endpoint that parses ``model`` itself."""
    schema = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


class _Coalescer:
    """``/predict`` calls that arrive in the same turn of the event loop are scored together:
    one feature-state read and one model call for all of them. Under load those per-call
    costs were most of a request's; alone, a call waits for nothing but its own turn.

    A card appears at most once per group, so each answer sees only the stored state, exactly
    as it would alone (the API never writes the state).
    """

    def __init__(
        self, score: Callable[[list[Transaction], list[bool]], list[bytes]], limit: int
    ) -> None:
        self.score, self.limit = score, limit
        self.waiting: list[tuple[Transaction, bool, asyncio.Future[bytes]]] = []

    async def __call__(self, transaction: Transaction, late: bool = False) -> bytes:
        loop = asyncio.get_running_loop()
        if not self.waiting:
            loop.call_soon(self._flush)  # after the callbacks already due: they may join
        answer: asyncio.Future[bytes] = loop.create_future()
        self.waiting.append((transaction, late, answer))
        return await answer

    def _flush(self) -> None:
        Waiting = list[tuple[Transaction, bool, asyncio.Future[bytes]]]
        waiting, self.waiting = self.waiting, []
        while waiting:
            group: Waiting = []
            later: Waiting = []
            cards: set[str] = set()
            for item in waiting:
                card = item[0].card_id
                if card in cards or len(group) >= self.limit:
                    later.append(item)
                else:
                    cards.add(card)
                    group.append(item)
            try:
                answers = self.score([t for t, _, _ in group], [late for _, late, _ in group])
            except Exception as error:  # each caller gets it, as if it had scored alone
                for _, _, future in group:
                    if not future.done():
                        future.set_exception(error)
            else:
                for (_, _, future), answer in zip(group, answers, strict=True):
                    if not future.done():  # not if its caller went away
                        future.set_result(answer)
            waiting = later


class _RateLimiter:
    """A token bucket per key: ``rate`` requests a second, bursts up to one second's worth."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)
        self.lock = threading.Lock()

    def take(self, key: str) -> bool:
        now = time.monotonic()
        with self.lock:
            tokens, at = self.buckets.get(key, (self.rate, now))
            tokens = min(self.rate, tokens + (now - at) * self.rate)
            if tokens < 1:
                self.buckets[key] = (tokens, now)
                return False
            self.buckets[key] = (tokens - 1, now)
            return True


class _BodyLimit:
    """413 for a body over ``max_bytes``, announced or streamed, before anything parses it."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if _declared_over(dict(scope["headers"]).get(b"content-length"), self.max_bytes):
            await _too_large(self.max_bytes).send(send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise _BodyTooLarge
            return message

        try:
            await self.app(scope, limited, send)
        except _BodyTooLarge:
            await _too_large(self.max_bytes).send(send)


class _Measure:
    """Requests and latency by route and status (a plain ASGI middleware: Starlette's
    ``BaseHTTPMiddleware`` costs a task and a stream per request)."""

    def __init__(self, app: ASGIApp, metrics: _ApiMetrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            path = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.observe(path, status, time.perf_counter() - started)


class _InternalErrors:
    """A route's unexpected failure answered as ``INTERNAL_ERROR`` (JSON, nothing echoed) and
    logged with its traceback, inside the CORS and metrics middleware: a browser's failed
    call keeps its CORS headers, where Starlette's handler for ``Exception`` answers outside
    every middleware, and the caller sees a CORS error instead of the answer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def sending(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception:
            logger.exception("%s %s failed", scope["method"], scope["path"])
            if started:  # too late for another answer
                raise
            await INTERNAL_ERROR.send(send)


class _BodyTooLarge(Exception):
    pass


class _Disconnected(Exception):
    pass


def _too_large(max_bytes: int) -> _Answer:
    return _problem(413, f"the body is larger than {max_bytes} bytes")


def _declared_over(declared: bytes | None, max_bytes: int) -> bool:
    """Whether a ``content-length`` announces more than ``max_bytes`` (or is not a number)."""
    return declared is not None and (not declared.isdigit() or int(declared) > max_bytes)


async def _body_within(receive: Receive, declared: bytes | None, max_bytes: int) -> bytes | None:
    """The request's body, or None when it is (announced or turns out) over ``max_bytes``."""
    if _declared_over(declared, max_bytes):
        return None
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Disconnected
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > max_bytes:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)
