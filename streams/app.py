"""The Faust app: scoring, model-update and label agents, built from settings at start.

Nothing connects at import: ``build_app`` takes ready ``WorkerParts`` (Redis client, feature
engine, model holder), made by ``make_parts`` in the worker's entry point.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import faust
import redis
from aiokafka.partitioner import DefaultPartitioner

from schemas.codec import DecodeError, decode, encode
from schemas.events import Label, ModelUpdate
from schemas.scored import ScoredTransaction
from schemas.topics import ALL_TOPICS, DEAD_LETTERS, LABELS, MODEL_UPDATES, SCORED, TRANSACTIONS
from scoring.decision import Thresholds
from scoring.features import FeatureEngine
from scoring.features.redis_store import RedisFeatureStore
from scoring.model_holder import Loader, ModelHolder
from scoring.pipeline import InboundMessage, ScoringPipeline, scores_of, utc_now
from scoring.quality import RollingQuality
from scoring.serving import Scorer
from streams.kafka_admin import ensure_topics
from streams.metrics import WorkerMetrics
from streams.settings import Settings, to_env
from streams.training_store import TrainingStore

logger = logging.getLogger(__name__)

CHAMPION = "champion"
LAG_INTERVAL_S = 5.0
T = TypeVar("T")


@dataclasses.dataclass
class WorkerParts:
    redis: redis.Redis
    engine: FeatureEngine
    models: ModelHolder
    pipeline: ScoringPipeline
    store: TrainingStore
    metrics: WorkerMetrics
    quality: RollingQuality


def make_loader(settings: Settings) -> Loader:
    """Loads the champion (``None``) or a version of the model from the MLflow registry."""
    from retraining.registry import load_scorer, load_scorer_version

    def load(version: str | None) -> Scorer:
        if version is None:
            return load_scorer(settings.mlflow_tracking_uri, settings.model_name)
        return load_scorer_version(settings.mlflow_tracking_uri, settings.model_name, version)

    return load


def make_parts(settings: Settings) -> WorkerParts:
    """Connect to Redis and load the champion (cached locally; rules if neither works)."""
    load = make_loader(settings)
    client = redis.Redis.from_url(settings.redis_url)
    engine = FeatureEngine(
        RedisFeatureStore(client, prefix=f"{settings.topic_prefix}fs"), settings.label_delay_days
    )
    models = ModelHolder(load, settings.model_cache_file)
    models.refresh()
    thresholds = Thresholds(settings.review_threshold, settings.decline_threshold)
    metrics = WorkerMetrics()
    served = models.current()
    metrics.serving(served.name, served.version)
    return WorkerParts(
        client,
        engine,
        models,
        ScoringPipeline(engine, models.current, thresholds),
        TrainingStore(settings.training_store_url),
        metrics,
        RollingQuality(threshold=settings.review_threshold),
    )


async def create_topics(settings: Settings) -> list[str]:
    """Every topic with its partition count, and Faust's leader-election topic (one
    partition), before any worker or producer touches them: the broker auto-creates none."""
    partitions = {settings.topic(spec.name): settings.partitions for spec in ALL_TOPICS}
    partitions[f"{settings.app_id}-__assignor-__leader"] = 1
    return await ensure_topics(settings.kafka_bootstrap, partitions)


AGENTS = ("score", "model-updates", "labels", "training-store")


def build_app(
    settings: Settings, parts: WorkerParts, agents: tuple[str, ...] = AGENTS
) -> faust.App:
    """The app with the chosen ``agents``; several processes may split them (the
    training-store sink consumes every scored output, so it costs a scorer real time)."""
    if unknown := set(agents) - set(AGENTS):
        raise ValueError(f"unknown agent(s) {sorted(unknown)}; choose from {', '.join(AGENTS)}")
    (settings.home / "faust").mkdir(parents=True, exist_ok=True)
    app = faust.App(
        settings.app_id,
        broker=f"kafka://{settings.kafka_bootstrap}",
        store="memory://",
        web_enabled=False,
        topic_partitions=settings.partitions,
        topic_allow_declare=False,  # made up front by create_topics, with fixed partitions
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        producer_max_batch_size=1_000_000,  # one produce batch per partition per scored batch
        broker_session_timeout=settings.broker_session_timeout,
        broker_heartbeat_interval=settings.broker_heartbeat_interval,
        broker_rebalance_timeout=settings.broker_rebalance_timeout,
        datadir=str(settings.home / "faust" / settings.app_id),
    )

    def topic(name: str) -> faust.TopicT:
        return app.topic(
            settings.topic(name),
            value_serializer="raw",
            key_serializer="raw",
            partitions=settings.partitions,
        )

    scored_name, dead_letters = settings.topic(SCORED.name), topic(DEAD_LETTERS.name)

    saving: list[asyncio.Future[None]] = []  # the batch whose state is being stored
    outputs = BatchSender(app, scored_name)

    async def score(stream: faust.StreamT) -> None:
        # take_events is on faust's Stream, not on its StreamT protocol
        batches = stream.take_events(settings.batch_size, within=settings.batch_within)  # type: ignore[attr-defined]
        async for events in batches:
            messages = [
                InboundMessage(
                    event.message.value or b"",
                    event.message.topic,
                    event.message.partition,
                    event.message.offset,
                    datetime.fromtimestamp(event.message.timestamp, UTC),
                )
                for event in events
            ]
            result = parts.pipeline.prepare(messages)
            # Redis stores the batch's state in a thread while this one encodes and sends;
            # the batch is acknowledged (its offsets committable) only after both.
            saving.append(asyncio.ensure_future(asyncio.to_thread(parts.pipeline.save, result)))
            try:
                await outputs.send(result.encoded())
                for letter in result.dead_letters:
                    where = f"{letter.origin_partition}]@{letter.origin_offset}"
                    logger.warning(
                        "dead letter %s[%s: %s", letter.origin_topic, where, letter.error
                    )
                    await dead_letters.send(value=encode(letter))
            finally:
                await saving.pop()
            parts.metrics.observe_batch(result, utc_now())

    async def model_updates(stream: faust.StreamT) -> None:
        async for raw in stream:
            try:
                update = decode(ModelUpdate, raw)
            except DecodeError as error:
                logger.warning("ignored a malformed model update: %s", error)
                continue
            if update.model_name == settings.model_name and update.alias == CHAMPION:
                # loading takes seconds: off the event loop, so scoring goes on meanwhile
                served = await asyncio.to_thread(parts.models.refresh, update.version)
                parts.metrics.serving(served.name, served.version)

    async def labels(stream: faust.StreamT) -> None:
        batches = stream.take_events(settings.batch_size, within=1.0)  # type: ignore[attr-defined]
        async for events in batches:
            decoded = [(event, _label_or_none(event)) for event in events]
            good = [label for _, label in decoded if label is not None]
            if good:
                parts.engine.apply_labels(good)
                parts.metrics.labels.inc(len(good))
                _measure_quality(parts, good)
            for origin, part in _by_partition(decoded):
                found = [label for label in part if label is not None]
                written = await asyncio.to_thread(parts.store.write_labels, found, origin)
                parts.metrics.training_rows.labels("labels").inc(written)

    # The training store's sink: large batches, written before they are acknowledged, so a
    # crash replays (and rewrites) a batch instead of losing it.
    async def training_store(stream: faust.StreamT) -> None:
        batches = stream.take_events(5_000, within=5.0)  # type: ignore[attr-defined]
        async for events in batches:
            decoded = [(event, decode(ScoredTransaction, event.message.value)) for event in events]
            for origin, rows in _by_partition(decoded):
                written = await asyncio.to_thread(parts.store.write_scored, rows, origin)
                parts.metrics.training_rows.labels("scored").inc(written)

    async def forget_cached_cards(
        sender: object, /, *args: object, signal: object, **kwargs: object
    ) -> None:
        # cards follow their partitions: after a rebalance another worker may have moved on
        for pending in list(saving):
            with contextlib.suppress(Exception):  # the agent reports its own failure
                await asyncio.shield(pending)
        parts.engine.store.forget()

    app.on_partitions_revoked.connect(forget_cached_cards)
    app.on_partitions_assigned.connect(forget_cached_cards)

    chosen = {
        "score": (topic(TRANSACTIONS.name), score),
        "model-updates": (topic(MODEL_UPDATES.name), model_updates),
        "labels": (topic(LABELS.name), labels),
        "training-store": (topic(SCORED.name), training_store),
    }
    for name in agents:
        source, function = chosen[name]
        app.agent(source, name=name)(function)

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


class BatchSender:
    """Sends a scored batch to a topic as one record batch per partition, on the app's own
    producer: Faust's ``topic.send`` and even the producer's per-message ``send`` cost
    ~20 us a message here, most of it per-message futures and a pure-Python murmur2. The
    partition is Kafka's default for the key (murmur2, cached per key), and Faust flushes
    this producer before it commits the input offsets, so outputs are out before offsets."""

    MAX_CACHED_KEYS = 1_000_000

    def __init__(self, app: faust.App, topic: str) -> None:
        self.app, self.topic = app, topic
        self.partitioner = DefaultPartitioner()
        self.partitions: list[int] = []
        self.partition_of: dict[bytes, int] = {}

    async def send(self, messages: list[tuple[bytes, bytes]]) -> None:
        if not messages:
            return
        # Faust's aiokafka driver keeps its AIOKafkaProducer behind a private accessor
        producer = self.app.producer._ensure_producer()  # type: ignore[attr-defined]
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


def _label_or_none(event: faust.EventT) -> Label | None:
    try:
        return decode(Label, event.message.value or b"")
    except DecodeError as error:
        logger.warning("ignored a malformed label: %s", error)
        return None


def _by_partition(pairs: list[tuple[faust.EventT, T]]) -> list[tuple[str, list[T]]]:
    """A batch's items split by partition, each part named ``topic-partition-first-last``:
    within a partition those offsets say exactly which messages a training-store file holds,
    so a rewrite after a crash replaces the file and never clobbers another batch's."""
    groups: dict[tuple[str, int], list[tuple[faust.EventT, T]]] = {}
    for event, item in pairs:
        groups.setdefault((event.message.topic, event.message.partition), []).append((event, item))
    return [
        (
            f"{topic}-{partition}-{part[0][0].message.offset}-{part[-1][0].message.offset}",
            [i for _, i in part],
        )
        for (topic, partition), part in groups.items()
    ]


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
