"""Every scorer follows ``model.updates`` on its own, outside any consumer group: an update
must reach every worker and API instance, not one member of a group.

Subscribe, then reconcile: the follower fixes its position at the end of the topic first and
only then reloads the champion from the registry, so an update published while it started is
either read from the topic or already behind the alias it loads.

A load that fails (the registry unreachable) keeps the served model scoring and is tried
again every ``retry_s`` until it succeeds or a newer update replaces it: an update announced
during an MLflow outage applies when MLflow returns.

An update that cannot be decoded goes to the dead-letter topic with its origin; every
follower reads every update, so each follower sends one (same origin: one message).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer

from schemas.events import CHAMPION, ModelUpdate
from scoring.model_holder import ModelHolder
from scoring.serving import Scorer
from streams.labels_agent import decoded_or_dead, no_dead_letters
from streams.scorer import KafkaMessage, SendValue

logger = logging.getLogger(__name__)

RETRY_S = 5.0  # a failed model load is tried again this often


async def follow_model_updates(
    bootstrap: str,
    topic: str,
    model_name: str,
    models: ModelHolder,
    on_swap: Callable[[Scorer], None] = lambda scorer: None,
    retry_s: float = RETRY_S,
    send_dead_letter: SendValue = no_dead_letters,
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
            messages = [m for part in batches.values() for m in part]
            version = await newest_champion(messages, model_name, send_dead_letter)
            if version is not None:
                wanted, next_try = (version,), 0.0
    finally:
        await consumer.stop()


async def newest_champion(
    messages: list[KafkaMessage], model_name: str, send_dead_letter: SendValue = no_dead_letters
) -> str | None:
    """The version of the newest champion update of ``model_name`` among ``messages`` (in
    the order read), None if there is none."""
    updates = await decoded_or_dead(ModelUpdate, messages, send_dead_letter)
    versions = [
        update.version
        for update in updates
        if update is not None and update.model_name == model_name and update.alias == CHAMPION
    ]
    return versions[-1] if versions else None
