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
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from schemas.iso import COUNTRIES, CURRENCIES
from schemas.pan import looks_like_pan

SCHEMA_VERSION: Literal[1] = 1

Identifier = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^\S(.*\S)?$")]
"""A non-empty id of at most 64 characters without leading or trailing blanks."""


class Channel(enum.StrEnum):
    CARD_PRESENT = "card_present"
    ECOMMERCE = "ecommerce"


class Transaction(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", allow_inf_nan=False)

    transaction_id: Identifier
    event_time: AwareDatetime
    card_id: Identifier
    terminal_id: Identifier
    amount: Annotated[float, Field(ge=0, lt=1e9)]  # 0: card verifications, zero-value auths
    currency: str = "EUR"
    customer_id: Identifier | None = None
    merchant_category: Annotated[str, Field(min_length=1, max_length=32)] | None = None
    channel: Channel | None = None
    country: str | None = None
    latitude: Annotated[float, Field(ge=-90, le=90)] | None = None
    longitude: Annotated[float, Field(ge=-180, le=180)] | None = None
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
