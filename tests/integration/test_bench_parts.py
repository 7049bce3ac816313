"""Parts of the benchmarks on the real services: the relay that gives the stream's latency
floor passes every message on, to the same partition and in order; a run's Redis state is
deleted when it ends, and nobody else's."""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict

import pytest
import redis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from streams.kafka_admin import ensure_topics
from tests.conftest import Endpoints
from tooling.bench import relay, state_deleted_after


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


def test_a_runs_redis_state_is_deleted_when_it_ends_even_by_an_error(
    services: Endpoints,
) -> None:
    settings = services.settings()
    run, other = f"itbench{uuid.uuid4().hex[:8]}.", f"itother{uuid.uuid4().hex[:8]}."
    client = redis.Redis.from_url(services.redis_url)
    try:
        client.set(f"{other}fs:history:card-1", b"kept")
        with pytest.raises(RuntimeError), state_deleted_after(settings, run):
            client.mset({f"{run}fs:history:card-{n}": b"row" for n in range(25_000)})
            client.set(f"{run}challenger", b"model")
            raise RuntimeError("the benchmark failed halfway")
        assert list(client.scan_iter(f"{run}*", count=10_000)) == []
        assert client.get(f"{other}fs:history:card-1") == b"kept"
    finally:
        client.delete(f"{other}fs:history:card-1")
        client.close()
