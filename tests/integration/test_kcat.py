"""A producer in another language: kcat (the Debian package; librdkafka, in C) sends a
transaction written by hand from the published JSON Schema, and a worker scores it; the
scored event it publishes is valid by the published schema of `transactions.scored`."""

from __future__ import annotations

import asyncio
import json
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import jsonschema

from schemas.contracts import CONTRACTS
from schemas.topics import SCORED, TRANSACTIONS
from streams.app import create_topics
from tests.conftest import Endpoints
from tests.integration.test_streaming import Reader, isolated
from tooling.processes import spawn_worker
from tooling.services.process import require_debian_tool

VALIDATOR = jsonschema.Draft202012Validator


def _schema(topic: str) -> dict:
    return dict(json.loads((CONTRACTS / f"{topic}.schema.json").read_text()))


def test_a_transaction_kcat_writes_from_the_published_schema_is_scored(
    services: Endpoints, tmp_path: Path
) -> None:
    kcat = require_debian_tool("kcat", "kcat")
    settings = isolated(services, tmp_path, metrics_port=0)
    # what a Go or Java team would write from transactions.schema.json, nothing of ours
    now = datetime.now(UTC).isoformat()
    line = (
        '{"transaction_id": "tx-kcat-1", "event_time": "' + now + '", '
        '"card_id": "tok_kcat_7f3a", "terminal_id": "T-kcat", "amount": 18.75}'
    )
    jsonschema.validate(json.loads(line), _schema(TRANSACTIONS.name), cls=VALIDATOR)
    asyncio.run(create_topics(settings))
    worker = spawn_worker(settings, tmp_path / "worker.log", ("score", "model-updates"))
    try:
        produced = subprocess.run(
            [kcat, "-P", "-b", settings.kafka_bootstrap, "-t", settings.topic(TRANSACTIONS.name),
             "-K", "\t"],
            input=f"tok_kcat_7f3a\t{line}\n", capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert produced.returncode == 0, produced.stderr

        async def scored() -> list[bytes]:
            async with Reader(settings, SCORED.name) as reader:
                return await reader.read(1, timeout=120.0)

        (value,) = asyncio.run(scored())
    finally:
        worker.terminate()
        worker.wait(timeout=60)

    event = json.loads(value)
    sent = event["transaction"]
    assert (sent["transaction_id"], sent["card_id"], sent["amount"]) == (
        "tx-kcat-1", "tok_kcat_7f3a", 18.75
    )  # fmt: skip
    assert event["decision"] in ("approve", "review", "decline")
    jsonschema.validate(event, _schema(SCORED.name), cls=VALIDATOR)
