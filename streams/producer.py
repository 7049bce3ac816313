"""The producer side: a batch's outputs sent as one record batch per partition."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import faust
from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner

from streams.consumer import aiokafka_producer


class BatchSender:
    """Sends batches of keyed messages to a topic as one record batch per partition: Faust's
    ``topic.send`` and even the producer's per-message ``send`` cost ~20 us a message here,
    most of it per-message futures and a pure-Python murmur2. The partition is Kafka's
    default for the key (murmur2, cached per key). A worker sends on its app's own producer
    (``of_app``), which Faust flushes before it commits the input offsets, so outputs are
    out before offsets."""

    MAX_CACHED_KEYS = 1_000_000

    def __init__(self, producer: Callable[[], AIOKafkaProducer], topic: str) -> None:
        self.producer, self.topic = producer, topic  # the producer is asked for at each send
        self.partitioner = DefaultPartitioner()
        self.partitions: list[int] = []
        self.partition_of: dict[bytes, int] = {}

    @classmethod
    def of_app(cls, app: faust.App, topic: str) -> BatchSender:
        return cls(lambda: aiokafka_producer(app), topic)

    async def send(self, messages: list[tuple[bytes, bytes]]) -> None:
        if not messages:
            return
        producer = self.producer()
        if not self.partitions:
            self.partitions = sorted(await producer.partitions_for(self.topic))
        if len(self.partition_of) > self.MAX_CACHED_KEYS:
            self.partition_of.clear()
        batches: dict[int, Any] = {}
        full: list[tuple[int, Any]] = []
        for key, value in messages:
            partition = self.partition_of.get(key)
            if partition is None:
                partition = self.partitioner(key, self.partitions, self.partitions)
                self.partition_of[key] = partition
            batch = batches.get(partition)
            if batch is None:
                batch = batches[partition] = producer.create_batch()
            if batch.append(key=key, value=value, timestamp=None) is None:  # full
                full.append((partition, batch))
                batch = batches[partition] = producer.create_batch()
                if batch.append(key=key, value=value, timestamp=None) is None:
                    raise ValueError(f"a {len(value)}-byte output exceeds the producer's batch")
        for partition, batch in [*full, *batches.items()]:
            await producer.send_batch(batch, self.topic, partition=partition)
