"""The Faust app: its agents wired to their topics, built from settings at start.

Nothing connects at import: ``build_app`` takes ready ``WorkerParts`` (``streams.wiring``),
made in the worker's entry point. The agents' work is in small objects with their inputs
injected (``streams.scorer``, ``streams.labels_agent``, ``streams.sink_agents``); this module
only connects them to Faust.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
from typing import Any

import faust

from schemas.topics import (
    ALL_TOPICS,
    DEAD_LETTERS,
    LABELS,
    MODEL_UPDATES,
    SCORED,
    TRANSACTIONS,
)
from scoring.pipeline import BatchResult
from scoring.serving import Scorer
from streams.alignment import AlignedInbox, FrontierBoard
from streams.consumer import App, QuietMonitor, read_offset
from streams.gc_tuning import freeze_loaded_objects
from streams.health import HEARTBEAT_EVERY_S
from streams.kafka_admin import ensure_topics, group_coordinator_ready
from streams.labels_agent import LabelsAgent
from streams.model_updates import follow_model_updates
from streams.producer import BatchSender
from streams.scorer import ScoringAgent
from streams.settings import Settings
from streams.sink_agents import CHALLENGER_EVERY_S, add_sink_agents
from streams.startup import until_kafka_answers
from streams.wiring import WorkerParts

logger = logging.getLogger(__name__)

LAG_INTERVAL_S = 5.0
CRASH_EXIT_AFTER_S = 20.0  # a crashed worker that has not stopped by then exits (1)


async def create_topics(settings: Settings, groups: tuple[str, ...] = ()) -> list[str]:
    """Every topic with its partition count, and the leader-election topic (one partition)
    of each Faust app (the workers', the trainer's and ``groups``), before any worker or
    producer touches them: the broker auto-creates none. Every process calls this first, so
    here it waits for a broker that is starting: until it listens and can coordinate a
    consumer group, at most ``startup_timeout`` seconds."""
    partitions = {settings.topic(spec.name): settings.partitions for spec in ALL_TOPICS}
    for group in (settings.app_id, f"{settings.app_id}-trainer", *groups):
        partitions[f"{group}-__assignor-__leader"] = 1

    async def attempt() -> list[str]:
        await group_coordinator_ready(settings.kafka_bootstrap, settings.app_id)
        return await ensure_topics(settings.kafka_bootstrap, partitions)

    return await until_kafka_answers(settings.kafka_bootstrap, attempt, settings.startup_timeout)


def faust_app(settings: Settings, app_id: str, **overrides: Any) -> App:
    """A Faust app on our broker: no web server, topics made up front, short group timeouts."""
    options: dict[str, Any] = {
        "broker": f"kafka://{settings.kafka_bootstrap}",
        "store": "memory://",
        "web_enabled": False,
        "topic_partitions": settings.partitions,
        "topic_allow_declare": False,  # made up front by create_topics, with fixed partitions
        "consumer_auto_offset_reset": "earliest",
        "producer_acks": -1,
        "broker_session_timeout": settings.broker_session_timeout,
        "broker_heartbeat_interval": settings.broker_heartbeat_interval,
        "broker_rebalance_timeout": settings.broker_rebalance_timeout,
        "datadir": settings.faust_datadir(app_id),
        "Monitor": QuietMonitor,
    }
    return App(app_id, **{**options, **overrides})


def raw_topic(app: faust.App, settings: Settings, name: str) -> faust.TopicT:
    """Topic ``name`` (prefixed) of bytes keys and values: our codecs decode, not Faust."""
    return app.topic(
        settings.topic(name), value_serializer="raw", key_serializer="raw",
        partitions=settings.partitions,
    )  # fmt: skip


def group_id(settings: Settings, agents: tuple[str, ...]) -> str:
    """The Faust app id, and so the consumer group, of a worker running ``agents``: workers
    with the same agents share partitions; a process with other agents is its own group.

    >>> s = Settings()
    >>> group_id(s, AGENTS), group_id(s, ("training-store", "drift"))
    ('fraudstream', 'fraudstream-training-store-drift')
    """
    return settings.app_id if set(agents) == set(AGENTS) else "-".join((settings.app_id, *agents))


AGENTS = ("score", "model-updates", "labels", "training-store", "drift", "challenger")


def build_app(
    settings: Settings, parts: WorkerParts, agents: tuple[str, ...] = AGENTS
) -> faust.App:
    """The app with the chosen ``agents``; several processes may split them (the
    training-store sink consumes every scored output, so it costs a scorer real time)."""
    if unknown := set(agents) - set(AGENTS):
        raise ValueError(f"unknown agent(s) {sorted(unknown)}; choose from {', '.join(AGENTS)}")
    # one produce batch per partition per scored batch
    app = faust_app(settings, group_id(settings, agents), producer_max_batch_size=1_000_000)
    topic = functools.partial(raw_topic, app, settings)

    scored_name, dead_letters = settings.topic(SCORED.name), topic(DEAD_LETTERS.name)

    async def send_dead_letter(value: bytes) -> None:
        await dead_letters.send(value=value)

    crashed: list[BaseException] = []

    def crash(error: BaseException) -> None:
        """Stop the worker (exit 1). A worker that holds its partitions without scoring them
        is worse than none: if Faust's shutdown has not ended the process
        ``CRASH_EXIT_AFTER_S`` later, it exits here (its uncommitted batches are scored again
        by the next owner, as after kill -9). Once: a failed store comes here from its
        callback and again from the scorer, which meets the same error."""
        if crashed:
            return
        crashed.append(error)
        app.add_future(app.crash(error))
        asyncio.get_running_loop().call_later(CRASH_EXIT_AFTER_S, os._exit, 1)

    scorer = ScoringAgent(
        parts.pipeline, BatchSender.of_app(app, scored_name).send, send_dead_letter,
        ScorerObserver(parts), crash,
    )  # fmt: skip
    labels_agent = LabelsAgent(
        parts.engine, parts.store, parts.quality, parts.metrics,
        lambda: parts.models.current().version, send_dead_letter,
    )  # fmt: skip

    async def labels(stream: faust.StreamT) -> None:
        batches = stream.take_events(settings.batch_size, within=1.0)  # type: ignore[attr-defined]
        async for events in batches:
            await labels_agent.handle([event.message for event in events])

    async def forget_cached_cards(
        sender: object, /, *args: object, signal: object, **kwargs: object
    ) -> None:
        # cards follow their partitions: after a rebalance another worker may have moved on
        await scorer.settled()
        parts.engine.store.forget()

    async def joined(sender: object, /, *args: object, signal: object, **kwargs: object) -> None:
        parts.health.joined()  # a member of its group (with or without partitions)

    @app.timer(interval=HEARTBEAT_EVERY_S)
    async def heartbeat() -> None:
        parts.health.beat()  # stops when the loop is stuck: /health turns 503

    app.on_partitions_revoked.connect(forget_cached_cards)
    app.on_partitions_assigned.connect(forget_cached_cards)
    app.on_partitions_assigned.connect(joined)

    if "labels" in agents:
        app.agent(topic(LABELS.name), name="labels")(labels)
    add_sink_agents(app, topic, parts, agents, settings.batch_size)
    if "score" in agents:
        # not a Faust stream: a task that takes the transactions in batches (streams.consumer),
        # the partitions kept in step by event time (streams.alignment) unless turned off
        board = frontier_board(settings, parts) if settings.max_partition_lead > 0 else None
        inbox = app.inbox(
            topic(TRANSACTIONS.name), settings.batch_size, settings.batch_within,
            aligned_inbox(app, settings, board) if board is not None else None,
        )  # fmt: skip
        if board is not None and isinstance(inbox, AlignedInbox):

            @app.timer(interval=FRONTIERS_EVERY_S)
            async def publish_frontiers() -> None:
                await asyncio.to_thread(board.publish, inbox.frontiers())

        @app.task
        async def score_transactions() -> None:
            try:
                # what the running worker keeps, once it runs, is left out of collections
                await scorer.run(inbox, after_first=freeze_loaded_objects)
            except Exception as error:
                crash(error)
                raise

        @app.timer(interval=CHALLENGER_EVERY_S)
        async def follow_challenger() -> None:
            await asyncio.to_thread(parts.challenger.refresh)

        @app.timer(interval=1.0)
        async def store_held_writes() -> None:
            # writes held through a Redis outage go out on the next batch, or here if the
            # stream is quiet
            if parts.features.held:
                await asyncio.to_thread(parts.features.catch_up)
                parts.metrics.held_writes.set(parts.features.held_transactions)

    if "model-updates" in agents:  # not an agent: every worker follows every update

        @app.task
        async def model_updates() -> None:
            def served(scorer: Scorer) -> None:
                parts.metrics.serving(scorer.name, scorer.version)
                parts.health.serving(scorer.fallback)

            await follow_model_updates(
                settings.kafka_bootstrap, settings.topic(MODEL_UPDATES.name),
                settings.model_name, parts.models, served, send_dead_letter=send_dead_letter,
            )  # fmt: skip

    @app.timer(interval=LAG_INTERVAL_S)
    async def report_lag() -> None:
        consumer = app.consumer
        for tp in consumer.assignment():
            read = read_offset(consumer, tp)
            end = consumer.highwater(tp)
            if end is not None:
                behind = end - (read + 1 if read is not None else 0)
                parts.metrics.lag.labels(tp.topic, str(tp.partition)).set(max(behind, 0))

    return app


FRONTIERS_EVERY_S = 0.25  # how often a worker tells the others how far its partitions are


def frontier_board(settings: Settings, parts: WorkerParts) -> FrontierBoard:
    key = f"{settings.redis_prefix('frontiers')}{TRANSACTIONS.name}"
    return FrontierBoard(parts.redis, key, settings.partition_idle_timeout)


def aligned_inbox(app: App, settings: Settings, board: FrontierBoard) -> AlignedInbox:
    """The transactions' inbox, in step across partitions (``streams.alignment``)."""
    return AlignedInbox(
        app, settings.batch_size, settings.batch_within, settings.partitions,
        max_lead_s=settings.max_partition_lead, idle_s=settings.partition_idle_timeout,
        max_future_skew_s=settings.max_future_skew, others=board.read,
    )  # fmt: skip


class ScorerObserver:
    """What the scorer reports: a batch's metrics once its outputs are out; the writes held
    through a Redis outage once its state is stored."""

    def __init__(self, parts: WorkerParts) -> None:
        self.parts = parts

    def observe_batch(self, result: BatchResult, now: Any) -> None:
        self.parts.metrics.observe_batch(result, now)

    def stored(self) -> None:
        self.parts.metrics.held_writes.set(self.parts.features.held_transactions)
