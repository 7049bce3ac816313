"""Publish a simulation to Kafka at a target rate, labels interleaved as they become known.

Simulated time runs as fast as the rate allows (accelerated); event times stay as simulated
so that the features' time windows mean what they say.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable

import pandas as pd
from aiokafka import AIOKafkaProducer
from tqdm import tqdm

from retraining.dataset import label_events
from schemas.codec import encode
from schemas.topics import LABELS, TRANSACTIONS
from simulator.records import transaction_records


@dataclasses.dataclass(frozen=True)
class PublishResult:
    transactions: int
    labels: int
    seconds: float


async def publish(
    bootstrap: str,
    transactions: pd.DataFrame,
    labels: pd.DataFrame,
    rate: float,
    progress: bool = False,
    chunk: int = 500,
    transactions_topic: str = TRANSACTIONS.name,
    labels_topic: str = LABELS.name,
    stop: Callable[[], bool] | None = None,
) -> PublishResult:
    """Send every transaction (key: card id) and label (key: transaction id) in time order;
    ``stop``, asked before each chunk, can end the stream early."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=5, max_batch_size=262_144
    )
    await producer.start()
    started = time.monotonic()
    sent_labels = 0
    records = transaction_records(transactions)
    label_list = label_events(labels)
    label_times = labels["labelled_at"].to_numpy()
    event_times = transactions["event_time"].to_numpy()
    bar = tqdm(total=len(records), unit="tx", disable=not progress, desc="publishing")
    try:
        sent = 0
        for start in range(0, len(records), chunk):
            if stop is not None and stop():
                break
            batch = records[start : start + chunk]
            horizon = event_times[min(start + chunk, len(records)) - 1]
            while sent_labels < len(label_list) and label_times[sent_labels] <= horizon:
                label = label_list[sent_labels]
                await producer.send(
                    labels_topic, key=label.transaction_id.encode(), value=encode(label)
                )
                sent_labels += 1
            for record in batch:
                await producer.send(
                    transactions_topic, key=record.card_id.encode(), value=encode(record)
                )
            sent += len(batch)
            bar.update(len(batch))
            # hold the target rate: sleep until this chunk is due
            due = started + (start + len(batch)) / rate
            await asyncio.sleep(max(0.0, due - time.monotonic()))
        await producer.flush()
    finally:
        bar.close()
        await producer.stop()
    return PublishResult(sent, sent_labels, time.monotonic() - started)
