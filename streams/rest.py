"""The REST process (``fraudstream api``): ``api.create_app`` wired to the real Redis, Kafka
and MLflow.

The feature state is read from Redis without a card cache (the API owns no partitions, the
stream writes the state); the champion is loaded like a worker loads it and swapped on
``model.updates``; labels and recorded transactions go out on one Kafka producer.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from pathlib import Path

import redis
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI

from api import ApiConfig, ApiKey, ApiParts, create_app, parse_keys
from schemas.topics import DEAD_LETTERS, LABELS, MODEL_UPDATES, TRANSACTIONS
from scoring.adapters.redis_store import feature_client
from scoring.features import FeatureEngine
from scoring.model_holder import ModelHolder
from streams.model_updates import follow_model_updates
from streams.settings import Settings, SettingsError
from streams.wiring import feature_store, make_loader, scoring_pipeline

logger = logging.getLogger(__name__)

PUBLISH_WAIT_S = 10.0


def api_keys(settings: Settings) -> dict[str, ApiKey]:
    text = settings.api_keys.get_secret_value() if settings.api_keys else ""
    if settings.api_keys_file is not None:
        text += "\n" + Path(settings.api_keys_file).read_text()
    try:
        keys = parse_keys(text)
    except ValueError as error:
        raise SettingsError(f"FRAUD_API_KEYS / FRAUD_API_KEYS_FILE: {error}") from None
    if not keys:
        raise SettingsError(
            "the API needs at least one key: set FRAUD_API_KEYS=name:$(openssl rand -hex 16) "
            "or FRAUD_API_KEYS_FILE"
        )
    return keys


@dataclasses.dataclass
class _Kafka:
    """The API's producer (labels, recorded transactions), started with the app."""

    settings: Settings
    producer: AIOKafkaProducer | None = None
    started: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)

    async def publish(self, kind: str, key: bytes, value: bytes) -> None:
        topics = {"labels": LABELS.name, "transactions": TRANSACTIONS.name}
        await asyncio.wait_for(self.started.wait(), PUBLISH_WAIT_S)
        assert self.producer is not None
        await self.producer.send_and_wait(self.settings.topic(topics[kind]), value, key=key)

    async def reachable(self) -> bool:
        if self.producer is None:
            return False
        try:
            topic = self.settings.topic(LABELS.name)
            return bool(await asyncio.wait_for(self.producer.partitions_for(topic), 2.0))
        except Exception:  # any failure to answer means not ready
            return False


def build(settings: Settings) -> FastAPI:
    """The app for ``settings``; connections open when it starts serving."""
    config = ApiConfig(
        keys=api_keys(settings),
        record=settings.api_record,
        max_body_bytes=settings.api_max_body_bytes,
        max_batch=settings.api_max_batch,
        rate_per_key=settings.api_rate_per_key,
        cors_origins=tuple(o.strip() for o in settings.api_cors_origins.split(",") if o.strip()),
        ready_on_fallback=settings.ready_on_fallback,
    )
    client = feature_client(settings.redis_url)
    engine = FeatureEngine(
        feature_store(settings, client, cache_cards=False), settings.label_delay_days
    )
    models = ModelHolder(make_loader(settings), settings.model_cache_file.with_suffix(".api.pkl"))
    models.refresh()
    pipeline = scoring_pipeline(settings, engine, models.current)
    kafka = _Kafka(settings)

    async def redis_answers() -> bool:
        try:
            return bool(await asyncio.to_thread(client.ping))
        except redis.RedisError:
            return False

    async def connect_kafka_and_follow_models() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
        await producer.start()
        kafka.producer = producer
        kafka.started.set()
        try:

            async def send_dead_letter(value: bytes) -> None:
                await producer.send_and_wait(settings.topic(DEAD_LETTERS.name), value)

            await follow_model_updates(
                settings.kafka_bootstrap, settings.topic(MODEL_UPDATES.name),
                settings.model_name, models, send_dead_letter=send_dead_letter,
            )  # fmt: skip
        finally:
            await producer.stop()

    parts = ApiParts(
        pipeline=pipeline,
        models=models,
        publish=kafka.publish,
        idempotency=RedisIdempotency(client, prefix=settings.redis_prefix("api")),
        checks={"redis": redis_answers, "kafka": kafka.reachable},
        background=(connect_kafka_and_follow_models,),
    )
    return create_app(config, parts)


class RedisIdempotency:
    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self.client, self.prefix = client, prefix

    def get(self, key: str) -> bytes | None:
        value = self.client.get(f"{self.prefix}:{key}")
        return value if isinstance(value, bytes) else None

    def put_if_absent(self, key: str, value: bytes, ttl_seconds: int) -> bool:
        return bool(self.client.set(f"{self.prefix}:{key}", value, ex=ttl_seconds, nx=True))


def serve(settings: Settings) -> None:
    import uvicorn

    from streams.gc_tuning import settle_collector

    app = build(settings)
    settle_collector()
    uvicorn.run(
        app,
        host=settings.api_host,
        port=settings.api_port,
        log_level="info",
        access_log=settings.api_access_log,
    )
