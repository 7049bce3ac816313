"""The broker is a real Apache Kafka 4.x, and aiokafka round-trips records through it."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from streams.kafka_admin import ensure_topics, until_consuming
from tooling.services.kafka_probe import probe


def test_broker_says_it_is_kafka_4(kafka_bootstrap: str) -> None:
    host, _, port = kafka_bootstrap.rpartition(":")
    broker = probe(host, int(port))
    assert broker.major == 4, broker.finalized
    assert broker.release.startswith("4."), broker.release
    assert broker.finalized["kraft.version"] >= 1  # a KRaft quorum, no ZooKeeper


def test_produce_consume_round_trip_keeps_every_record_and_per_key_order(
    kafka_bootstrap: str,
) -> None:
    topic = f"it.roundtrip.{uuid.uuid4().hex[:8]}"
    sent = [(f"card-{n % 7}".encode(), f"{n}".encode()) for n in range(300)]

    async def round_trip() -> list[tuple[bytes, bytes]]:
        await ensure_topics(kafka_bootstrap, {topic: 3})
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
        await producer.start()
        try:
            for key, value in sent:
                await producer.send(topic, key=key, value=value)
            await producer.flush()
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(
            topic, bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest"
        )
        await consumer.start()
        received: list[tuple[bytes, bytes]] = []
        try:
            async with asyncio.timeout(60):
                while len(received) < len(sent):
                    for messages in (await consumer.getmany(timeout_ms=500)).values():
                        received += [(m.key, m.value) for m in messages]
        finally:
            await consumer.stop()
        return received

    received = asyncio.run(round_trip())

    assert sorted(received) == sorted(sent)
    for key in {key for key, _ in sent}:
        assert [v for k, v in received if k == key] == [v for k, v in sent if k == key]


def test_until_consuming_waits_for_a_member_with_partitions(kafka_bootstrap: str) -> None:
    run = uuid.uuid4().hex[:8]
    topic, group, nobody = f"it.consuming.{run}", f"it-consuming-{run}", f"it-nobody-{run}"

    async def wait() -> None:
        await ensure_topics(kafka_bootstrap, {topic: 2})
        with pytest.raises(TimeoutError, match=nobody):
            await until_consuming(kafka_bootstrap, [nobody], timeout=1.0)
        consumer = AIOKafkaConsumer(topic, bootstrap_servers=kafka_bootstrap, group_id=group)
        await consumer.start()
        try:
            async with asyncio.timeout(60):
                while not consumer.assignment():  # joins the group on its first fetch
                    await consumer.getmany(timeout_ms=200)
            await until_consuming(kafka_bootstrap, [group], timeout=30.0)
            with pytest.raises(TimeoutError, match=f"group\\(s\\) {nobody} after"):
                await until_consuming(kafka_bootstrap, [group, nobody], timeout=1.0)
        finally:
            await consumer.stop()
        with pytest.raises(TimeoutError, match=group):  # left: the group is empty again
            await until_consuming(kafka_bootstrap, [group], timeout=1.0)

    asyncio.run(wait())
