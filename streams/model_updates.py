"""Every scorer follows ``model.updates`` on its own, outside any consumer group: an update
must reach every worker and API instance, not one member of a group.

Subscribe, then reconcile: the follower fixes its position at the end of the topic first and
only then reloads the champion from the registry, so an update published while it started is
either read from the topic or already behind the alias it loads.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer

from schemas.codec import DecodeError, decode
from schemas.events import ModelUpdate
from scoring.model_holder import ModelHolder
from scoring.serving import Scorer

logger = logging.getLogger(__name__)

CHAMPION = "champion"


async def follow_model_updates(
    bootstrap: str,
    topic: str,
    model_name: str,
    models: ModelHolder,
    on_swap: Callable[[Scorer], None] = lambda scorer: None,
) -> None:
    """Run until cancelled: load each champion update of ``model_name`` (off the event loop,
    so scoring goes on while it loads) and call ``on_swap`` with what is served."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False
    )
    await consumer.start()
    try:
        consumer.subscribe([topic])  # without a group: every partition, once metadata is in
        while not consumer.assignment():
            await asyncio.sleep(0.05)
        partitions = list(consumer.assignment())
        await consumer.seek_to_end(*partitions)
        for partition in partitions:
            await consumer.position(partition)  # fixed here, before the reconcile below
        on_swap(await asyncio.to_thread(models.refresh))
        async for message in consumer:
            try:
                update = decode(ModelUpdate, message.value or b"")
            except DecodeError as error:
                logger.warning("ignored a malformed model update: %s", error)
                continue
            if update.model_name == model_name and update.alias == CHAMPION:
                on_swap(await asyncio.to_thread(models.refresh, update.version))
    finally:
        await consumer.stop()
