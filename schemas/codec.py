"""Bytes <-> schema objects, with errors a person can act on.

>>> from schemas.transaction import Transaction
>>> decode(Transaction, b'{"transaction_id": "t1", "card_id": "c1", "terminal_id": "x"}')
Traceback (most recent call last):
...
schemas.codec.DecodeError: event_time: Field required; amount: Field required
>>> decode(Transaction, b'not json')
Traceback (most recent call last):
...
schemas.codec.DecodeError: invalid JSON: expected ident at line 1 column 2
"""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel, ValidationError

Model = TypeVar("Model", bound=BaseModel)

_MAX_ERROR_CHARS = 1000


class DecodeError(ValueError):
    """A message that is not valid JSON or not a valid instance of its schema."""


def encode(value: BaseModel) -> bytes:
    return value.model_dump_json().encode()


def decode(schema: type[Model], raw: bytes) -> Model:
    try:
        return schema.model_validate_json(raw)
    except ValidationError as error:
        raise DecodeError(describe(error)) from None


def describe(error: ValidationError) -> str:
    """One line naming each bad field and what is wrong with it (never the bad value itself)."""
    parts = []
    for problem in error.errors(include_url=False, include_input=False):
        if problem["type"] == "json_invalid":
            return f"invalid JSON: {problem['ctx']['error']}"[:_MAX_ERROR_CHARS]
        field = ".".join(str(part) for part in problem["loc"]) or "message"
        message = problem["msg"].removeprefix("Value error, ")
        parts.append(f"{field}: {message}")
    return "; ".join(parts)[:_MAX_ERROR_CHARS]
