"""``Idempotency-Key``: a retry with the same key and body gets the first answer."""

import hashlib
from collections.abc import Awaitable, Callable
from typing import Protocol

from api.answers import Answer, field_problem, problem

IDEMPOTENCY = "Idempotency-Key"
MAX_IDEMPOTENCY_KEY = 255  # characters


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


class Idempotent:
    """Answers once per (caller, token): the same token and body get the stored answer;
    another body, 409; no token, a fresh answer.

    >>> import asyncio
    >>> once = Idempotent(InMemoryIdempotency(), ttl_seconds=60)
    >>> async def answer() -> bytes: return b"{}"
    >>> [asyncio.run(once("team", "t1", body, answer)).status for body in (b"a", b"a", b"b")]
    [200, 200, 409]
    """

    def __init__(self, store: IdempotencyStore, ttl_seconds: int) -> None:
        self.store, self.ttl_seconds = store, ttl_seconds

    async def __call__(
        self, caller: str, token: str | None, body: bytes, respond: Callable[[], Awaitable[bytes]]
    ) -> Answer:
        if token is None:
            return Answer(200, await respond())
        if not 0 < len(token) <= MAX_IDEMPOTENCY_KEY:
            return field_problem(IDEMPOTENCY, f"must be 1-{MAX_IDEMPOTENCY_KEY} characters")
        digest = hashlib.sha256(body).hexdigest().encode()
        store_key = f"idempotency:{caller}:{token}"
        stored = self.store.get(store_key)
        if stored is None:
            answer = await respond()
            if self.store.put_if_absent(store_key, digest + b"\n" + answer, self.ttl_seconds):
                return Answer(200, answer)
            stored = self.store.get(store_key) or digest + b"\n" + answer
        stored_digest, _, answer = stored.partition(b"\n")
        if stored_digest != digest:
            return problem(409, "this Idempotency-Key was used with another body")
        return Answer(200, answer, ((b"idempotent-replayed", b"true"),))
