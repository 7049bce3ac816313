"""What the routes answer when they answer by hand: JSON bodies with their status, for
Starlette or for a plain ASGI call, and the 4xx/5xx problems."""

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from fastapi import Response
from starlette.types import Send


@dataclasses.dataclass(frozen=True)
class Answer:
    """A JSON answer, for Starlette (``response``) or for a plain ASGI call (``send``)."""

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


def problem(status: int, detail: str) -> Answer:
    return Answer(status, orjson.dumps({"detail": detail}))


def field_problem(field: str, what: str) -> Answer:
    """The 422 that names one field."""
    return Answer(422, orjson.dumps({"detail": [{"field": field, "problem": what}]}))


INTERNAL_ERROR = problem(500, "internal error; the call did not complete")


def problems(errors: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    """The 422's list: each field and what is wrong with it, never the value (it may be a
    card number).

    >>> problems([{"loc": ("body", "amount"), "msg": "Value error, negative"}])
    [{'field': 'amount', 'problem': 'negative'}]
    """
    return [
        {
            "field": ".".join(str(p) for p in problem["loc"] if p != "body") or "body",
            "problem": str(problem["msg"]).removeprefix("Value error, "),
        }
        for problem in errors
    ]


class Refused(Exception):
    """A call the key, its scope or its rate does not allow."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail

    def answer(self) -> Answer:
        retry = ((b"retry-after", b"1"),) if self.status == 429 else ()
        return Answer(self.status, orjson.dumps({"detail": self.detail}), retry)
