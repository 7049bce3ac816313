"""The relay that gives the stream benchmark its latency floor passes every message on, to
the same partition and in order, through the real broker."""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from streams.bench import relay
from streams.kafka_admin import ensure_topics


def test_the_relay_passes_each_message_on_to_the_same_partition_in_order(
    kafka_bootstrap: str,
) -> None:
    source, target = f"it.relay.{uuid.uuid4().hex[:8]}", f"it.relay.{uuid.uuid4().hex[:8]}.out"
    sent = [(f"card-{n % 11}".encode(), f"tx-{n}".encode()) for n in range(240)]

    async def through_the_relay() -> tuple[dict[int, list[bytes]], dict[int, list[bytes]]]:
        await ensure_topics(kafka_bootstrap, {source: 3, target: 3})
        ready = asyncio.Event()
        relaying = asyncio.create_task(relay(kafka_bootstrap, source, target, 3, ready.set))
        consumer = AIOKafkaConsumer(
            target, bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest"
        )
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
        await consumer.start()
        await producer.start()
        sent_to: dict[int, list[bytes]] = defaultdict(list)
        received: dict[int, list[bytes]] = defaultdict(list)
        try:
            async with asyncio.timeout(60):
                await ready.wait()
                for key, value in sent:
                    metadata = await (await producer.send(source, key=key, value=value))
                    sent_to[metadata.partition].append(key + b"=" + value)
                while sum(map(len, received.values())) < len(sent):
                    for tp, messages in (await consumer.getmany(timeout_ms=500)).items():
                        received[tp.partition] += [m.key + b"=" + m.value for m in messages]
        finally:
            relaying.cancel()
            await producer.stop()
            await consumer.stop()
        return sent_to, received

    sent_to, received = asyncio.run(through_the_relay())

    assert len(sent_to) == 3  # the keys spread over every partition
    assert received == sent_to
