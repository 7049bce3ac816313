"""The simulator publishes valid transactions and labels to Kafka, keyed as the topics say."""

from __future__ import annotations

import asyncio
import uuid

from aiokafka import AIOKafkaConsumer

from schemas.codec import decode
from schemas.events import Label
from schemas.transaction import Transaction
from simulator.generator import SimulationConfig, simulate
from simulator.publish import publish
from streams.kafka_admin import ensure_topics


def test_publish_sends_every_transaction_and_the_labels_known_by_the_end(
    kafka_bootstrap: str,
) -> None:
    simulation = simulate(SimulationConfig(seed=4, days=10, customers=40, terminals=30))
    suffix = uuid.uuid4().hex[:8]
    tx_topic, label_topic = f"it.transactions.{suffix}", f"it.labels.{suffix}"
    last_event = simulation.transactions["event_time"].max()
    labels_due = int((simulation.labels["labelled_at"] <= last_event).sum())

    async def run() -> tuple[list, list]:
        await ensure_topics(kafka_bootstrap, {tx_topic: 3, label_topic: 3})
        result = await publish(
            kafka_bootstrap, simulation.transactions, simulation.labels, rate=50_000,
            progress=False, transactions_topic=tx_topic, labels_topic=label_topic,
        )  # fmt: skip
        assert (result.transactions, result.labels) == (len(simulation.transactions), labels_due)
        return await _read(kafka_bootstrap, tx_topic, result.transactions), await _read(
            kafka_bootstrap, label_topic, result.labels
        )

    transactions, labels = asyncio.run(run())

    decoded = [decode(Transaction, message.value) for message in transactions]
    assert sorted(t.transaction_id for t in decoded) == sorted(
        simulation.transactions["transaction_id"]
    )
    assert all(
        message.key == t.card_id.encode() for message, t in zip(transactions, decoded, strict=True)
    )
    assert all(
        message.key == decode(Label, message.value).transaction_id.encode() for message in labels
    )


async def _read(bootstrap: str, topic: str, expected: int) -> list:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    messages: list = []
    try:
        async with asyncio.timeout(60):
            while len(messages) < expected:
                for batch in (await consumer.getmany(timeout_ms=500)).values():
                    messages += batch
    finally:
        await consumer.stop()
    return messages
