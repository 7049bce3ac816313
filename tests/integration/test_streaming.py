"""The scoring worker on the real broker, Redis and MLflow: every transaction gets exactly one
decision, malformed ones become dead letters, and a model swap loses nothing."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from mlflow.tracking import MlflowClient

from schemas.codec import decode, encode
from schemas.events import CHAMPION, DeadLetter, Label, ModelUpdate
from schemas.scored import ScoredTransaction
from schemas.topics import DEAD_LETTERS, LABELS, MODEL_UPDATES, SCORED, TRANSACTIONS
from schemas.transaction import Transaction
from simulator.generator import SimulationConfig, simulate
from simulator.records import transaction_records
from streams.app import build_app, create_topics
from streams.settings import Settings
from streams.wiring import WorkerParts, make_parts
from tests.conftest import Endpoints
from tooling.chaos import register_versions

BASE = {"transaction_id": "m", "event_time": "2026-01-01T00:00:00Z", "card_id": "c",
        "terminal_id": "t", "amount": 5}  # fmt: skip
MALFORMED = [
    b"{not json",
    b"",
    json.dumps({**BASE, "card_id": "4111111111111111"}).encode(),  # a PAN
    json.dumps({**BASE, "amount": -5}).encode(),
    json.dumps({key: value for key, value in BASE.items() if key != "event_time"}).encode(),
    json.dumps({**BASE, "transaction_id": "m4" * 5000}).encode(),  # a huge field
    b"[1, 2, 3]",
]


def isolated(services: Endpoints, tmp_path: Path, **changes: object) -> Settings:
    run = uuid.uuid4().hex[:8]
    return services.settings(
        home=tmp_path, topic_prefix=f"it{run}.", app_id=f"fraudstream-it-{run}", partitions=3,
        model_name=f"it-stream-{run}", **changes,
    )  # fmt: skip


@asynccontextmanager
async def running_worker(settings: Settings, parts: WorkerParts) -> AsyncIterator[None]:
    app = build_app(settings, parts)
    await app.start()
    try:
        yield
    finally:
        await app.stop()


async def send(settings: Settings, topic: str, items: list[tuple[bytes | None, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for key, value in items:
            await producer.send(settings.topic(topic), key=key, value=value)
        await producer.flush()
    finally:
        await producer.stop()


class Reader:
    """Reads a topic from the start, across calls."""

    def __init__(self, settings: Settings, topic: str) -> None:
        self.consumer = AIOKafkaConsumer(
            settings.topic(topic),
            bootstrap_servers=settings.kafka_bootstrap,
            auto_offset_reset="earliest",
        )

    async def __aenter__(self) -> Reader:
        await self.consumer.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.consumer.stop()

    async def read(self, count: int, timeout: float = 90.0) -> list[bytes]:
        values: list[bytes] = []
        async with asyncio.timeout(timeout):
            while len(values) < count:
                for batch in (await self.consumer.getmany(timeout_ms=500)).values():
                    values += [message.value for message in batch]
        for batch in (await self.consumer.getmany(timeout_ms=1000)).values():
            values += [message.value for message in batch]  # anything extra is a duplicate
        return values


def records(seed: int, count: int) -> list[tuple[bytes | None, bytes]]:
    simulation = simulate(SimulationConfig(seed=seed, days=3, customers=100, terminals=50))
    chosen = transaction_records(simulation.transactions.head(count))
    return [(t.card_id.encode(), encode(t)) for t in chosen]


def test_every_valid_transaction_is_scored_once_and_every_bad_one_is_a_dead_letter(
    services: Endpoints, tmp_path: Path
) -> None:
    settings = isolated(services, tmp_path)
    valid = records(seed=1, count=400)

    async def run() -> tuple[list[bytes], list[bytes], WorkerParts, pd.DataFrame]:
        await create_topics(settings)
        parts = make_parts(settings)  # no model registered under this name: the rules
        async with (
            running_worker(settings, parts),
            Reader(settings, SCORED.name) as scored,
            Reader(settings, DEAD_LETTERS.name) as dead,
        ):
            mixed = valid[:200] + [(None, bad) for bad in MALFORMED] + valid[200:]
            await send(settings, TRANSACTIONS.name, mixed)
            scored_raw, dead_raw = await scored.read(len(valid)), await dead.read(len(MALFORMED))
            labels = [
                Label(transaction_id=decode(Transaction, value).transaction_id, is_fraud=i % 4 == 0,
                      labelled_at=datetime.now(UTC))
                for i, (_, value) in enumerate(valid[:40])
            ]  # fmt: skip
            await send(
                settings, LABELS.name, [(lb.transaction_id.encode(), encode(lb)) for lb in labels]
            )
            stored = pd.DataFrame()
            deadline = time.monotonic() + 60  # the training-store sink flushes every 5 s
            labelled = parts.metrics.registry.get_sample_value
            while (
                len(stored) < len(valid)
                or labelled(
                    "fraudstream_model_quality", {"version": "fallback", "measure": "labelled"}
                )
                != len(labels)
                or _lag(parts, settings.topic(TRANSACTIONS.name)) != [0, 0, 0]
            ) and time.monotonic() < deadline:
                await asyncio.sleep(0.5)
                stored = parts.store.read_scored()
            return scored_raw, dead_raw, parts, stored

    scored_raw, dead_raw, parts, stored = asyncio.run(run())
    scored = [decode(ScoredTransaction, raw) for raw in scored_raw]
    dead = [decode(DeadLetter, raw) for raw in dead_raw]

    sent_ids = sorted(decode(Transaction, value).transaction_id for _, value in valid)
    assert sorted(s.transaction.transaction_id for s in scored) == sent_ids
    assert {(s.model_name, s.fallback) for s in scored} == {("rules", True)}
    assert len(dead) == len(MALFORMED)
    assert all(d.origin_topic == settings.topic(TRANSACTIONS.name) for d in dead)
    assert len({(d.origin_partition, d.origin_offset) for d in dead}) == len(MALFORMED)
    assert all(b"4111111111111111" not in raw for raw in dead_raw + [d.raw for d in dead])
    assert any("looks like a full card number" in d.error for d in dead)
    # the training store holds every scored transaction once; the metrics counted them
    assert sorted(stored["transaction_id"]) == sent_ids
    registry = parts.metrics.registry
    scored_total = sum(
        registry.get_sample_value("fraudstream_scored_total", {"decision": d}) or 0
        for d in ("approve", "review", "decline")
    )
    assert scored_total == len(valid)
    dead_letters = registry.get_sample_value(
        "fraudstream_dead_letters_total", {"reason": "invalid"}
    )
    assert dead_letters == len(MALFORMED)
    assert registry.get_sample_value("fraudstream_fallback_total") == len(valid)
    # labels joined to the scores the served model gave: its rolling quality
    quality = {
        measure: registry.get_sample_value(
            "fraudstream_model_quality", {"version": "fallback", "measure": measure}
        )
        for measure in ("labelled", "frauds")
    }
    assert quality == {"labelled": 40, "frauds": 10}
    assert _lag(parts, settings.topic(TRANSACTIONS.name)) == [0, 0, 0]  # drained, and reported


def _lag(parts: WorkerParts, topic: str) -> list[float | None]:
    """The lag gauge of each of the topic's three partitions (None before the first report)."""
    value = parts.metrics.registry.get_sample_value
    return [
        value("fraudstream_consumer_lag", {"topic": topic, "partition": str(p)}) for p in range(3)
    ]


def register_two_versions(settings: Settings) -> None:
    register_versions(settings, (1, 2))  # version 1 is champion, version 2 waits


def test_a_model_update_swaps_the_model_mid_stream_without_losing_events(
    services: Endpoints, tmp_path: Path
) -> None:
    settings = isolated(services, tmp_path)
    register_two_versions(settings)  # version 1 is champion, version 2 is not yet
    batches = records(seed=2, count=450)
    before, during, after = batches[:150], batches[150:300], batches[300:]

    async def run() -> tuple[list[bytes], list[bytes], list[bytes], WorkerParts]:
        await create_topics(settings)
        parts = make_parts(settings)
        async with running_worker(settings, parts), Reader(settings, SCORED.name) as scored:
            await send(settings, TRANSACTIONS.name, before)
            first = await scored.read(len(before))
            MlflowClient(settings.mlflow_tracking_uri).set_registered_model_alias(
                settings.model_name, CHAMPION, "2"
            )
            update = ModelUpdate(
                model_name=settings.model_name, version="2", alias=CHAMPION, metrics={},
                previous_version="1", updated_at=datetime.now(UTC),
            )  # fmt: skip
            await send(
                settings, MODEL_UPDATES.name, [(settings.model_name.encode(), encode(update))]
            )
            await send(settings, TRANSACTIONS.name, during)  # in flight while the model loads
            second = await scored.read(len(during))
            deadline = time.monotonic() + 60
            while parts.models.current().version != "2" and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
            await send(settings, TRANSACTIONS.name, after)
            third = await scored.read(len(after))
            return first, second, third, parts

    first, second, third, parts = asyncio.run(run())
    versions = [
        [decode(ScoredTransaction, raw).model_version for raw in part]
        for part in (first, second, third)
    ]

    assert versions[0] == ["1"] * len(before)
    assert len(versions[1]) == len(during) and set(versions[1]) <= {"1", "2"}
    assert versions[2] == ["2"] * len(after)
    assert parts.models.cache_file.exists()  # the served model is kept for an MLflow outage
