"""Every scorer follows ``model.updates`` on its own, outside any consumer group: an update
must reach every worker and API instance, not one member of a group.

Subscribe, then reconcile: the follower fixes its position at the end of the topic first and
only then reloads the champion from the registry, so an update published while it started is
either read from the topic or already behind the alias it loads.

A load that fails (the registry unreachable) keeps the served model scoring and is tried
again every ``retry_s`` until it succeeds or a newer update replaces it: an update announced
during an MLflow outage applies when MLflow returns.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer

from schemas.codec import DecodeError, decode
from schemas.events import CHAMPION, ModelUpdate
from scoring.model_holder import ModelHolder
from scoring.serving import Scorer

logger = logging.getLogger(__name__)

RETRY_S = 5.0  # a failed model load is tried again this often


async def follow_model_updates(
    bootstrap: str,
    topic: str,
    model_name: str,
    models: ModelHolder,
    on_swap: Callable[[Scorer], None] = lambda scorer: None,
    retry_s: float = RETRY_S,
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
        wanted: tuple[str | None] | None = (None,)  # what to load next: first the champion
        next_try = 0.0
        while True:
            if wanted is not None and time.monotonic() >= next_try:
                on_swap(await asyncio.to_thread(models.refresh, wanted[0]))
                if models.outdated:
                    what = "the champion" if wanted[0] is None else f"version {wanted[0]}"
                    logger.warning("%s not loaded; trying again in %.0f s", what, retry_s)
                    next_try = time.monotonic() + retry_s
                else:
                    wanted = None
            batches = await consumer.getmany(timeout_ms=int(min(retry_s, 1.0) * 1000))
            for message in (m for messages in batches.values() for m in messages):
                try:
                    update = decode(ModelUpdate, message.value or b"")
                except DecodeError as error:
                    logger.warning("ignored a malformed model update: %s", error)
                    continue
                if update.model_name == model_name and update.alias == CHAMPION:
                    wanted, next_try = (update.version,), 0.0  # the newest update wins
    finally:
        await consumer.stop()
