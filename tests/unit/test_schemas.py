from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest

from schemas.codec import DecodeError, decode, encode
from schemas.events import DeadLetter
from schemas.pan import redact_pans
from schemas.transaction import Transaction

MINIMAL = {
    "transaction_id": "tx-1",
    "event_time": "2026-03-01T12:00:00+01:00",
    "card_id": "card-000042",
    "terminal_id": "term-7",
    "amount": 12.5,
}


def raw(**changes: object) -> bytes:
    return json.dumps({**MINIMAL, **changes}).encode()


def test_the_five_required_fields_make_a_transaction_and_it_round_trips() -> None:
    transaction = decode(Transaction, raw())

    assert transaction.event_time == datetime(2026, 3, 1, 11, 0, tzinfo=UTC)
    assert (transaction.currency, transaction.country, transaction.schema_version) == (
        "EUR",
        None,
        1,
    )
    assert decode(Transaction, encode(transaction)) == transaction


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"card_id": "4111111111111111"}, "card_id: looks like a full card number (PAN)"),
        ({"card_id": "4111-1111-1111-1111"}, "card_id: looks like a full card number (PAN)"),
        ({"amount": -3}, "amount: Input should be greater than or equal to 0"),
        ({"amount": -0.01}, "amount: Input should be greater than or equal to 0"),
        ({"currency": "EURO"}, "currency: 'EURO' is not an ISO 4217 currency code"),
        ({"country": "XX"}, "country: 'XX' is not an ISO 3166 alpha-2 country code"),
        ({"event_time": "2026-03-01T12:00:00"}, "event_time: Input should have timezone info"),
        ({"transaction_id": ""}, "transaction_id: String should have at least 1 character"),
        ({"terminal_id": " "}, "terminal_id: String should match pattern"),
        ({"transaction_id": "x" * 65}, "transaction_id: String should have at most 64 characters"),
    ],
)
def test_invalid_transactions_are_refused_naming_the_field(changes: dict, message: str) -> None:
    with pytest.raises(DecodeError) as error:
        decode(Transaction, raw(**changes))

    assert message in str(error.value)


def test_a_zero_value_authorisation_is_a_transaction() -> None:
    # card verifications and zero-value authorisations are common: scored, not refused
    assert decode(Transaction, raw(amount=0)).amount == 0.0


def test_a_card_id_of_digits_that_fail_luhn_is_a_valid_token() -> None:
    assert decode(Transaction, raw(card_id="4111111111111112")).card_id == "4111111111111112"


def test_errors_never_echo_the_rejected_value() -> None:
    with pytest.raises(DecodeError) as error:
        decode(Transaction, raw(card_id="4111111111111111"))

    assert "4111111111111111" not in str(error.value)


def test_dead_letters_carry_masked_raw_bytes_as_base64() -> None:
    letter = DeadLetter(
        raw=redact_pans(raw(card_id="5500 0000 0000 0004")),
        error="card_id: looks like a full card number (PAN)",
        origin_topic="transactions",
        origin_partition=2,
        origin_offset=41,
        failed_time=datetime(2026, 3, 1, tzinfo=UTC),
    )
    wire = encode(letter)

    assert b"5500" not in base64.b64decode(json.loads(wire)["raw"])  # base64 on the wire
    assert b'"card_id": "************0004"' in decode(DeadLetter, wire).raw
