"""What ``create_app`` takes: its configuration and the ready parts it serves with."""

import dataclasses
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any

from prometheus_client import CollectorRegistry

from api.idempotency import IdempotencyStore
from api.keys import ApiKey
from scoring.model_holder import ModelHolder
from scoring.pipeline import ScoringPipeline

Publish = Callable[[str, bytes, bytes], Awaitable[None]]  # topic kind, key, value
Check = Callable[[], Coroutine[Any, Any, bool]]


@dataclasses.dataclass(frozen=True)
class ApiConfig:
    keys: Mapping[str, ApiKey]  # by secret
    record: bool = False  # also publish each predicted transaction to `transactions`
    max_body_bytes: int = 1_048_576
    max_batch: int = 100
    rate_per_key: float = 5_000.0  # requests a second, with a burst of one second's worth
    cors_origins: tuple[str, ...] = ()
    idempotency_ttl_seconds: int = 24 * 3600
    ready_on_fallback: bool = False  # /ready says ready while the rules fallback decides


@dataclasses.dataclass
class ApiParts:
    pipeline: ScoringPipeline
    models: ModelHolder
    publish: Publish
    idempotency: IdempotencyStore
    checks: Mapping[str, Check]  # readiness, by name ("redis", "kafka")
    background: tuple[Callable[[], Coroutine[Any, Any, None]], ...] = ()  # run while serving
    registry: CollectorRegistry = dataclasses.field(default_factory=CollectorRegistry)
