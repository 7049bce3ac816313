"""The Faust app: scoring, model-update and label agents, built from settings at start.

Nothing connects at import: ``build_app`` takes ready ``WorkerParts`` (Redis client, feature
engine, model holder), made by ``make_parts`` in the worker's entry point.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import dataclasses
import functools
import gc
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import faust
import redis
from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner
from faust.sensors import Monitor
from faust.types import TP, EventT, Message, StreamT

from retraining.drift import DriftThresholds
from retraining.drift_monitor import DriftConfig, Reference
from schemas.codec import encode
from schemas.events import Label
from schemas.topics import (
    ALL_TOPICS,
    DEAD_LETTERS,
    LABELS,
    MODEL_UPDATES,
    SCORED,
    TRANSACTIONS,
)
from scoring.decision import Thresholds
from scoring.event_time import Timeliness
from scoring.features import FEATURE_NAMES, FeatureEngine
from scoring.features.redis_store import UNREACHABLE, RedisFeatureStore, feature_client
from scoring.model_holder import Loader, ModelHolder
from scoring.pipeline import BatchResult, InboundMessage, ScoringPipeline, scores_of, utc_now
from scoring.quality import RollingQuality
from scoring.serving import Scorer
from streams.alignment import AlignedInbox, FrontierBoard
from streams.challenger import ChallengerChannel, ChallengerLearner
from streams.consumer import App, BatchInbox
from streams.drift_agent import DriftAgent, ReferenceLoader
from streams.kafka_admin import ensure_topics, group_coordinator_ready
from streams.metrics import WorkerMetrics
from streams.model_updates import follow_model_updates
from streams.settings import Settings, to_env
from streams.sink_agents import CHALLENGER_EVERY_S, add_sink_agents, by_partition, label_or_none
from streams.startup import until_kafka_answers
from streams.training_store import TrainingStore

logger = logging.getLogger(__name__)

LAG_INTERVAL_S = 5.0
MAX_UNSAVED_BATCHES = 2  # scored batches whose state is still being stored
CRASH_EXIT_AFTER_S = 20.0  # a crashed worker that has not stopped by then exits (1)


@dataclasses.dataclass
class WorkerParts:
    redis: redis.Redis
    features: RedisFeatureStore  # the engine's store (it degrades when Redis is away)
    engine: FeatureEngine
    models: ModelHolder
    pipeline: ScoringPipeline
    store: TrainingStore
    metrics: WorkerMetrics
    quality: RollingQuality
    drift: DriftAgent
    challenger: ChallengerChannel  # the shadow model the scorers use
    learner: ChallengerLearner  # used by the challenger agent only


# A scorer asks the registry at start and on each update; MLflow's HTTP client would retry a
# dead server 7 times with doubling waits (minutes) before the cached model could take over.
REGISTRY_HTTP_LIMITS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",  # an int to MLflow
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
}


def make_loader(settings: Settings) -> Loader:
    """Loads the champion (``None``) or a version of the model from the MLflow registry
    (scoring processes limit MLflow's retries at their entry point: ``REGISTRY_HTTP_LIMITS``)."""
    from retraining.registry import load_scorer, load_scorer_version

    def load(version: str | None) -> Scorer:
        if version is None:
            return load_scorer(settings.mlflow_tracking_uri, settings.model_name)
        return load_scorer_version(settings.mlflow_tracking_uri, settings.model_name, version)

    return load


def make_reference_loader(settings: Settings) -> ReferenceLoader:
    """Loads a model version's reference sample from its training run in the registry."""
    from retraining.registry import load_reference

    def load(version: str) -> Reference:
        frame = load_reference(settings.mlflow_tracking_uri, settings.model_name, version)
        return Reference(
            frame[list(FEATURE_NAMES)].to_numpy(dtype=float),
            frame["fraud_probability"].to_numpy(dtype=float),
        )

    return load


def drift_config(settings: Settings) -> DriftConfig:
    return DriftConfig(
        window_events=settings.drift_window_events,
        window_seconds=settings.drift_window_seconds,
        min_events=settings.drift_min_events,
        thresholds=DriftThresholds(
            settings.drift_alpha, settings.drift_min_psi, settings.drift_severe_share
        ),
        rearm_windows=settings.drift_rearm_windows,
    )


def make_parts(settings: Settings) -> WorkerParts:
    """Connect to Redis and load the champion (cached locally; rules if neither works)."""
    load = make_loader(settings)
    client = feature_client(settings.redis_url)
    features = RedisFeatureStore(client, prefix=f"{settings.topic_prefix}fs")
    engine = FeatureEngine(features, settings.label_delay_days)
    models = ModelHolder(load, settings.model_cache_file)
    models.refresh()
    thresholds = Thresholds(settings.review_threshold, settings.decline_threshold)
    metrics = WorkerMetrics()
    challenger = ChallengerChannel(client, f"{settings.topic_prefix}challenger")
    served = models.current()
    metrics.serving(served.name, served.version)
    return WorkerParts(
        client,
        features,
        engine,
        models,
        ScoringPipeline(
            engine,
            models.current,
            thresholds,
            current_challenger=lambda: challenger.current,
            timeliness=Timeliness(settings.event_time_rules()),
        ),
        TrainingStore(settings.training_store_url),
        metrics,
        RollingQuality(threshold=settings.review_threshold),
        DriftAgent(
            settings.model_name,
            make_reference_loader(settings),
            thresholds,
            drift_config(settings),
            settings.reports_dir,
            metrics,
            settings.drift_report_every,
        ),
        challenger,
        ChallengerLearner(settings.challenger_delay_days, metrics, settings.review_threshold),
    )


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


class QuietMonitor(Monitor):
    """Faust's monitor with its per-message bookkeeping left out: four calls a message feed
    statistics for Faust's web views, which our workers do not serve (their metrics are
    ours, per batch). Everything else the monitor does is kept."""

    def on_message_in(self, tp: TP, offset: int, message: Message) -> None:
        pass

    def on_stream_event_in(
        self, tp: TP, offset: int, stream: StreamT, event: EventT
    ) -> dict | None:
        return None

    def on_stream_event_out(
        self, tp: TP, offset: int, stream: StreamT, event: EventT, state: dict | None = None
    ) -> None:
        pass

    def on_message_out(self, tp: TP, offset: int, message: Message) -> None:
        pass


def freeze_loaded_objects() -> None:
    """Leave what is loaded by now (libraries, the model: ~400,000 objects that live as long
    as the process) out of the garbage collector's passes: walking them took 200-300 ms per
    full collection, paused the event loop and set the stream's p99. Objects made later
    are collected as before; frozen ones are still freed when nothing refers to them.
    A worker freezes again after its first scored batch, when Faust, aiokafka and the
    first-use caches have made what they keep."""
    gc.collect()
    gc.freeze()


FULL_COLLECTION_EVERY_S = 300.0
_NEVER = 2**31 - 1


def schedule_full_collections(every_s: float = FULL_COLLECTION_EVERY_S) -> threading.Event:
    """Collect the oldest generation every ``every_s`` seconds instead of when allocations
    say so. With the loaded objects frozen, the collector still walked everything made
    since (cached card histories, the runtime's own) every few seconds under load: pauses of
    10-70 ms at 2,000 tx/s on our 2-core machine, each one straight into the latency of the
    events waiting. Young generations are collected as before; cyclic garbage that reaches
    the oldest one waits for the next scheduled pass. Setting the returned event stops it."""
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, _NEVER)
    stop = threading.Event()

    def collect() -> None:
        while not stop.wait(every_s):
            gc.collect()

    threading.Thread(target=collect, name="full-collections", daemon=True).start()
    return stop


def settle_collector() -> threading.Event:
    """For a long-running server, once loaded: freeze what it has loaded and collect the
    oldest generation on a schedule (``freeze_loaded_objects``,
    ``schedule_full_collections``); setting the returned event stops the schedule."""
    freeze_loaded_objects()
    return schedule_full_collections()


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

    # scored batches whose state is being stored, oldest first, with the store's future
    storing: collections.deque[tuple[BatchResult, asyncio.Future[None]]] = collections.deque()
    saver = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="feature-state")
    outputs = BatchSender.of_app(app, scored_name)

    async def score(inbox: BatchInbox) -> None:
        # A batch's state is stored in a thread while the next batch is scored, unless the
        # next reads what it changes; the batch is acknowledged (its offsets committable)
        # once its outputs are sent and its state stored.
        await score_one(inbox)
        freeze_loaded_objects()  # what the running worker keeps, once it runs
        while True:
            await score_one(inbox)

    async def score_one(inbox: BatchInbox) -> None:
        batch = await inbox.take()
        decoded = parts.pipeline.decode(
            [
                InboundMessage(
                    message.value or b"",
                    message.topic,
                    message.partition,
                    message.offset,
                    datetime.fromtimestamp(message.timestamp, UTC),
                )
                for message in batch
            ]
        )
        while any(parts.pipeline.reads_unsaved(decoded, unsaved) for unsaved, _ in storing):
            await stored_oldest()
        result = parts.pipeline.score(decoded)
        await outputs.send(result.encoded())
        await hand_over(HAND_OVER_TURNS)
        for letter in result.dead_letters:
            where = f"{letter.origin_partition}]@{letter.origin_offset}"
            logger.warning("dead letter %s[%s: %s", letter.origin_topic, where, letter.error)
            await dead_letters.send(value=encode(letter))
        parts.metrics.observe_batch(result, utc_now())  # its outputs are out
        while len(storing) >= MAX_UNSAVED_BATCHES:
            await stored_oldest()
        storing.append((result, store_state(inbox, batch, result)))
        while storing and storing[0][1].done():
            await stored_oldest()

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

    async def stored_oldest() -> None:
        """Wait for the oldest batch being stored; a failed store stops the scorer."""
        try:
            await storing[0][1]
        finally:
            storing.popleft()

    def store_state(
        inbox: BatchInbox, batch: list[Message], result: BatchResult
    ) -> asyncio.Future[None]:
        """Store ``result``'s state in the one saver thread (so batches are stored in
        order), then acknowledge ``batch`` - promptly, even if no other batch follows."""
        future = asyncio.get_running_loop().run_in_executor(saver, parts.pipeline.save, result)

        def acknowledge(done: asyncio.Future[None]) -> None:
            if done.cancelled():
                return
            if (error := done.exception()) is not None:
                # never acknowledged; the worker stops now, not when the next batch comes
                logger.error("storing a batch's feature state failed, the worker stops: %s", error)
                crash(error)
                return
            inbox.acknowledge(batch)
            parts.metrics.held_writes.set(parts.features.held_transactions)

        future.add_done_callback(acknowledge)
        return future

    async def labels(stream: faust.StreamT) -> None:
        batches = stream.take_events(settings.batch_size, within=1.0)  # type: ignore[attr-defined]
        async for events in batches:
            decoded = [(event, label_or_none(event)) for event in events]
            good = [label for _, label in decoded if label is not None]
            if good:
                await _while_unreachable(functools.partial(parts.engine.apply_labels, good))
                parts.metrics.labels.inc(len(good))
                await _while_unreachable(functools.partial(_measure_quality, parts, good))
            for origin, part in by_partition(decoded):
                found = [label for label in part if label is not None]
                written = await asyncio.to_thread(parts.store.write_labels, found, origin)
                parts.metrics.training_rows.labels("labels").inc(written)

    async def forget_cached_cards(
        sender: object, /, *args: object, signal: object, **kwargs: object
    ) -> None:
        # cards follow their partitions: after a rebalance another worker may have moved on
        for _, pending in list(storing):
            with contextlib.suppress(Exception):  # the agent reports its own failure
                await asyncio.shield(pending)
        parts.engine.store.forget()

    app.on_partitions_revoked.connect(forget_cached_cards)
    app.on_partitions_assigned.connect(forget_cached_cards)

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
                await score(inbox)
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

            await follow_model_updates(
                settings.kafka_bootstrap, settings.topic(MODEL_UPDATES.name),
                settings.model_name, parts.models, served,
            )  # fmt: skip

    @app.timer(interval=LAG_INTERVAL_S)
    async def report_lag() -> None:
        consumer = app.consumer
        for tp in consumer.assignment():
            # Faust has no public accessor for the last offset it read
            read = consumer._read_offset.get(tp)  # type: ignore[attr-defined]
            end = consumer.highwater(tp)
            if end is not None:
                behind = end - (read + 1 if read is not None else 0)
                parts.metrics.lag.labels(tp.topic, str(tp.partition)).set(max(behind, 0))

    return app


FRONTIERS_EVERY_S = 0.25  # how often a worker tells the others how far its partitions are


def frontier_board(settings: Settings, parts: WorkerParts) -> FrontierBoard:
    key = f"{settings.topic_prefix}frontiers:{TRANSACTIONS.name}"
    return FrontierBoard(parts.redis, key, settings.partition_idle_timeout)


def aligned_inbox(app: App, settings: Settings, board: FrontierBoard) -> AlignedInbox:
    """The transactions' inbox, in step across partitions (``streams.alignment``)."""
    return AlignedInbox(
        app, settings.batch_size, settings.batch_within, settings.partitions,
        max_lead_s=settings.max_partition_lead, idle_s=settings.partition_idle_timeout,
        max_future_skew_s=settings.max_future_skew, others=board.read,
    )  # fmt: skip


# Turns of the event loop the scorer gives up after queueing a batch's outputs: aiokafka's
# sender takes three (its wait wakes, its task runs, the request task writes to the socket).
# Under load the next batch is already waiting, and without them the outputs sat in the
# producer's buffer while it was scored: at 2,000 tx/s, output appended -> received 12-15.5
# ms p50, 35-46 ms p99; with three, 6.9-8.9 and 15-29 (six turns did no better).
HAND_OVER_TURNS = 3


async def hand_over(turns: int) -> None:
    """Let callbacks and tasks that are ready run before going on, ``turns`` times."""
    for _ in range(turns):
        await asyncio.sleep(0)


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
        # Faust's aiokafka driver keeps its AIOKafkaProducer behind a private accessor
        return cls(lambda: app.producer._ensure_producer(), topic)  # type: ignore[attr-defined]

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


async def _while_unreachable(action: Callable[[], object]) -> None:
    """``action`` until Redis answers: a label is joined to its transaction's mark, which
    memory cannot stand in for, so the labels agent waits (and its offsets with it)."""
    while True:
        try:
            action()
            return
        except UNREACHABLE as error:
            logger.warning("labels wait for Redis: %s", error)
            await asyncio.sleep(1.0)


def _measure_quality(parts: WorkerParts, labels: list[Label]) -> None:
    """Join labels to the scores their transactions got; update the served model's gauges."""
    served = parts.models.current().version
    scores = scores_of(parts.engine.store, [label.transaction_id for label in labels])
    pairs = [
        (scores[label.transaction_id][0], label.is_fraud)
        for label in labels
        if scores.get(label.transaction_id, (0.0, ""))[1] == served
    ]
    if not pairs:
        return
    parts.quality.add([p for p, _ in pairs], [y for _, y in pairs])
    for measure, value in parts.quality.snapshot().items():
        parts.metrics.quality.labels(served, measure).set(value)


def spawn_worker(
    settings: Settings, log_file: Path, agents: tuple[str, ...] = AGENTS
) -> subprocess.Popen[bytes]:
    """``fraudstream worker`` in its own process, configured by ``settings``, output to
    ``log_file`` (benchmarks and crash tests run workers this way)."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "streams.cli", "worker", "--agents", ",".join(agents)]
    with log_file.open("ab") as out:
        return subprocess.Popen(
            command, env={**os.environ, **to_env(settings)}, stdout=out, stderr=out
        )
