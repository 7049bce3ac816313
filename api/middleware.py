"""The ASGI middleware around the routes: the body limit, internal errors answered as JSON,
requests and latency by route. Plain ASGI classes: Starlette's ``BaseHTTPMiddleware`` costs a
task and a stream per request."""

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.answers import INTERNAL_ERROR, Answer, problem
from api.metrics import ApiMetrics

logger = logging.getLogger(__name__)


class BodyLimit:
    """413 for a body over ``max_bytes``, announced or streamed, before anything parses it."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if declared_over(dict(scope["headers"]).get(b"content-length"), self.max_bytes):
            await too_large(self.max_bytes).send(send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise BodyTooLarge
            return message

        try:
            await self.app(scope, limited, send)
        except BodyTooLarge:
            await too_large(self.max_bytes).send(send)


class Measure:
    """Requests and latency by route and status (a plain ASGI middleware: Starlette's
    ``BaseHTTPMiddleware`` costs a task and a stream per request)."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
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


class InternalErrors:
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


class BodyTooLarge(Exception):
    pass


class Disconnected(Exception):
    pass


def too_large(max_bytes: int) -> Answer:
    return problem(413, f"the body is larger than {max_bytes} bytes")


def declared_over(declared: bytes | None, max_bytes: int) -> bool:
    """Whether a ``content-length`` announces more than ``max_bytes`` (or is not a number)."""
    return declared is not None and (not declared.isdigit() or int(declared) > max_bytes)


async def body_within(receive: Receive, declared: bytes | None, max_bytes: int) -> bytes | None:
    """The request's body, or None when it is (announced or turns out) over ``max_bytes``."""
    if declared_over(declared, max_bytes):
        return None
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise Disconnected
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > max_bytes:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)
