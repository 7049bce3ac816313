"""The published contracts match the code, and a message written by hand from them (as a
producer in another language would) is what the stream accepts."""

from __future__ import annotations

import json

import jsonschema
import pytest

from schemas.codec import DecodeError, decode
from schemas.contracts import CONTRACTS, rendered
from schemas.transaction import Transaction
from tooling import cli

HAND_WRITTEN = {
    "transaction_id": "tx-go-1",
    "event_time": "2026-03-01T12:00:00+01:00",
    "card_id": "tok_9f2c",
    "terminal_id": "T-77",
    "amount": 42.5,
}


def test_the_checked_in_contracts_are_what_the_code_generates() -> None:
    files = rendered()
    assert sorted(p.name for p in CONTRACTS.iterdir()) == sorted(files)
    for name, text in files.items():
        assert (CONTRACTS / name).read_text() == text, f"run: fraudstream schemas export ({name})"
    assert cli.main(["schemas", "check"]) == 0


def test_a_hand_written_transaction_valid_by_the_schema_is_valid_for_the_stream() -> None:
    schema = json.loads((CONTRACTS / "transactions.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)

    jsonschema.validate(HAND_WRITTEN, schema, cls=jsonschema.Draft202012Validator)
    assert decode(Transaction, json.dumps(HAND_WRITTEN).encode()).amount == 42.5

    negative = {**HAND_WRITTEN, "amount": -1}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(negative, schema, cls=jsonschema.Draft202012Validator)
    with pytest.raises(DecodeError):
        decode(Transaction, json.dumps(negative).encode())


def test_the_asyncapi_document_names_every_topic_and_its_schema() -> None:
    document = json.loads((CONTRACTS / "asyncapi.json").read_text())
    addresses = {c["address"] for c in document["channels"].values()}
    refs = {
        m["payload"]["schema"]["$ref"].removeprefix("./")
        for m in document["components"]["messages"].values()
    }

    assert document["asyncapi"] == "3.0.0"
    assert addresses == {"transactions", "transactions.scored", "transactions.dlq", "labels",
                         "drift.reports", "retrain.requests", "model.updates"}  # fmt: skip
    assert all((CONTRACTS / ref).exists() for ref in refs)
