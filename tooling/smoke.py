"""A smoke flow through the real broker: records in, a Faust agent echoes them, records out.

Used by ``fraudstream smoke`` and by the Faust integration test:
both prove that the broker, aiokafka and a Faust agent work together on this machine.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
import uuid

import faust
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from streams.kafka_admin import admin_client, ensure_topics
from streams.settings import Settings

logger = logging.getLogger(__name__)

ECHO_MARK = "echoed_by"


@dataclasses.dataclass(frozen=True)
class SmokeResult:
    sent: int
    received: int
    missing: int
    duplicates: int
    not_echoed: int
    seconds: float

    @property
    def ok(self) -> bool:
        return self.received == self.sent and self.missing == self.not_echoed == 0


def build_echo_app(
    settings: Settings, app_id: str, source: str, sink: str, partitions: int
) -> faust.App:
    """A Faust app whose one agent copies each JSON record from ``source`` to ``sink``, marked."""
    app = faust.App(
        app_id,
        broker=f"kafka://{settings.kafka_bootstrap}",
        store="memory://",
        web_enabled=False,
        topic_partitions=partitions,
        consumer_auto_offset_reset="earliest",
        # one worker in a fresh group: no reason to wait the default ~30 s for peers
        broker_session_timeout=10.0,
        broker_heartbeat_interval=1.0,
        broker_rebalance_timeout=10.0,
        datadir=settings.faust_datadir(app_id),
    )
    source_topic = app.topic(
        source, value_serializer="raw", key_serializer="raw", partitions=partitions
    )
    sink_topic = app.topic(
        sink, value_serializer="raw", key_serializer="raw", partitions=partitions
    )

    @app.agent(source_topic, name=f"{app_id}.echo")
    async def echo(stream: faust.StreamT) -> None:
        async for event in stream.events():
            record = orjson.loads(event.value)
            record[ECHO_MARK] = app_id
            await sink_topic.send(key=event.key, value=orjson.dumps(record))

    return app


async def run_smoke(
    settings: Settings, count: int = 1000, partitions: int = 3, timeout: float = 120.0
) -> SmokeResult:
    """Send ``count`` records through a fresh echo agent and count what comes back."""
    run_id = uuid.uuid4().hex[:8]
    source, sink = f"smoke.{run_id}.in", f"smoke.{run_id}.out"
    await ensure_topics(settings.kafka_bootstrap, {source: partitions, sink: partitions})
    app = build_echo_app(settings, f"fraudstream-smoke-{run_id}", source, sink, partitions)
    started = time.monotonic()
    try:
        await app.start()
        ids = [f"{run_id}-{n}" for n in range(count)]
        await _produce(settings.kafka_bootstrap, source, ids)
        received = await _consume(settings.kafka_bootstrap, sink, count, timeout)
    finally:
        await app.stop()
        await _delete_topics(settings.kafka_bootstrap, [source, sink])
    seen = [record["id"] for record in received]
    return SmokeResult(
        sent=count,
        received=len(received),
        missing=len(set(ids) - set(seen)),
        duplicates=len(seen) - len(set(seen)),
        not_echoed=sum(1 for record in received if record.get(ECHO_MARK) != app.conf.id),
        seconds=time.monotonic() - started,
    )


async def _produce(bootstrap: str, topic: str, ids: list[str]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        for record_id in ids:
            await producer.send(
                topic, key=record_id.encode(), value=orjson.dumps({"id": record_id})
            )
        await producer.flush()
    finally:
        await producer.stop()


async def _consume(bootstrap: str, topic: str, expected: int, timeout: float) -> list[dict]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    received: list[dict] = []
    deadline = time.monotonic() + timeout
    try:
        while len(received) < expected and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            received += [orjson.loads(m.value) for messages in batches.values() for m in messages]
        # a short extra read so that duplicates, if any, are counted too
        for messages in (await consumer.getmany(timeout_ms=500)).values():
            received += [orjson.loads(m.value) for m in messages]
    finally:
        await consumer.stop()
    return received


async def _delete_topics(bootstrap: str, topics: list[str]) -> None:
    async with admin_client(bootstrap) as admin:
        try:
            await admin.delete_topics(topics)
        except Exception as error:
            logger.warning("could not delete smoke topics %s: %s", topics, error)


def smoke(settings: Settings, count: int) -> SmokeResult:
    return asyncio.run(run_smoke(settings, count))
