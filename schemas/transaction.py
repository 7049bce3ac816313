"""The ``transactions`` topic: one card payment, as a payment system publishes it.

Only ``transaction_id``, ``event_time``, ``card_id``, ``terminal_id`` and ``amount`` are
required, so a bank's minimal history is a valid stream.

>>> t = Transaction.model_validate_json(
...     '{"transaction_id": "t1", "event_time": "2026-03-01T12:00:00Z",'
...     ' "card_id": "card-7", "terminal_id": "term-3", "amount": 42.5}')
>>> t.currency, t.channel, t.schema_version
('EUR', None, 1)
"""

from __future__ import annotations

import enum
import numbers
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from schemas.iso import COUNTRIES, CURRENCIES
from schemas.pan import looks_like_pan

SCHEMA_VERSION: Literal[1] = 1

# Blanks spelled out: Python's, Rust's (pydantic-core) and JSON Schema's regex engines
# disagree on what \s and . match (U+0085, U+FEFF, U+001C-U+001F, line separators), and
# the document must refuse exactly what the server refuses.
_BLANK = r"\t\n\v\f\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
_LINE_BREAK = r"\n\r\u2028\u2029"
ID_PATTERN = rf"^[^{_BLANK}]([^{_LINE_BREAK}]*[^{_BLANK}])?$"
Identifier = Annotated[str, Field(min_length=1, max_length=64, pattern=ID_PATTERN)]
"""A non-empty id of at most 64 characters, on one line, without leading or trailing blanks.

>>> import re
>>> [bool(re.match(ID_PATTERN, text)) for text in ("card-7", "a b", " a", "a\x85", "a\nb")]
[True, True, False, False, False]
"""


def _number(value: object) -> object:
    """A JSON number: not a boolean and not a numeric string, as the JSON Schema says."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError("must be a number")
    return value


def _flag(value: object) -> object:
    """A JSON boolean: ``true`` or ``false``, not 0/1 or "yes", as the JSON Schema says."""
    if not isinstance(value, bool):
        raise ValueError("must be true or false")
    return value


Number = BeforeValidator(_number)
Flag = BeforeValidator(_flag)


def _iso_text(value: object) -> object:
    """A time arrives as ISO 8601 text (or, from our own code, a datetime): a bare number
    would be read as seconds since 1970, which the documents do not promise."""
    if isinstance(value, str | datetime):
        return value
    raise ValueError(
        "must be an ISO 8601 date-time string with an offset, e.g. 2026-03-01T12:00:00Z"
    )


Timestamp = Annotated[AwareDatetime, BeforeValidator(_iso_text)]
"""An ISO 8601 date-time with its offset; numbers are refused, as the JSON Schema says."""
CurrencyCode = Annotated[str, Field(json_schema_extra={"enum": sorted(CURRENCIES)})]
CountryCode = Annotated[str, Field(json_schema_extra={"enum": sorted(COUNTRIES)})]


class Channel(enum.StrEnum):
    CARD_PRESENT = "card_present"
    ECOMMERCE = "ecommerce"


class Transaction(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", allow_inf_nan=False)

    transaction_id: Identifier
    event_time: Annotated[
        Timestamp,
        Field(
            description="When the payment happened (ISO 8601 with an offset). Refused when "
            "more than FRAUD_MAX_FUTURE_SKEW (default 300 s) ahead of the time it is received, "
            "or more than FRAUD_MAX_EVENT_AGE_DAYS (default 120) behind the newest event time "
            "its stream has seen; flagged `late` (scored, the feature state unchanged) when "
            "further behind that than the longest feature window plus FRAUD_MAX_LATENESS."
        ),
    ]
    card_id: Identifier
    terminal_id: Identifier
    amount: Annotated[float, Field(ge=0, lt=1e9), Number]  # 0: card checks, zero-value auths
    currency: CurrencyCode = "EUR"
    customer_id: Identifier | None = None
    merchant_category: Annotated[str, Field(min_length=1, max_length=32)] | None = None
    channel: Channel | None = None
    country: CountryCode | None = None
    latitude: Annotated[float, Field(ge=-90, le=90), Number] | None = None
    longitude: Annotated[float, Field(ge=-180, le=180), Number] | None = None
    schema_version: Literal[1] = SCHEMA_VERSION

    @field_validator("card_id")
    @classmethod
    def _card_id_is_a_token(cls, card_id: str) -> str:
        if looks_like_pan(card_id):
            raise ValueError(
                "looks like a full card number (PAN); send a card token instead, "
                "fraudstream never holds card numbers"
            )
        return card_id

    @field_validator("currency")
    @classmethod
    def _iso_currency(cls, currency: str) -> str:
        if currency not in CURRENCIES:
            raise ValueError(f"{currency[:8]!r} is not an ISO 4217 currency code such as 'EUR'")
        return currency

    @field_validator("country")
    @classmethod
    def _iso_country(cls, country: str | None) -> str | None:
        if country is not None and country not in COUNTRIES:
            raise ValueError(
                f"{country[:8]!r} is not an ISO 3166 alpha-2 country code such as 'FR'"
            )
        return country
