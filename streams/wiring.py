"""How a process's parts are made from its settings, written once: the feature store on
Redis, the model loader, the scoring pipeline, and the worker's parts. The worker, the REST
process, the bench and the demo all build through here."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

from retraining.drift import DriftThresholds
from retraining.drift_monitor import DriftConfig, Reference
from scoring.adapters.redis_store import RedisFeatureStore, feature_client
from scoring.challenger import OnlineChallenger
from scoring.decision import Thresholds
from scoring.event_time import Timeliness
from scoring.features import FEATURE_NAMES, FeatureEngine
from scoring.model_holder import Loader, ModelHolder
from scoring.pipeline import ScoringPipeline
from scoring.quality import RollingQuality
from scoring.serving import Scorer
from streams.challenger import ChallengerChannel, ChallengerLearner
from streams.drift_agent import DriftAgent, ReferenceLoader, ReportStore
from streams.health import Health
from streams.metrics import WorkerMetrics
from streams.settings import Settings
from streams.training_store import TrainingStore

# A scorer asks the registry at start and on each update; MLflow's HTTP client would retry a
# dead server 7 times with doubling waits (minutes) before the cached model could take over.
REGISTRY_HTTP_LIMITS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",  # an int to MLflow
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
}


def feature_store(settings: Settings, client: redis.Redis, **options: Any) -> RedisFeatureStore:
    """The online feature state on Redis, under the settings' key prefix."""
    return RedisFeatureStore(client, prefix=settings.redis_prefix("features"), **options)


def configured_thresholds(settings: Settings) -> Thresholds:
    """What decides where the served model brings no thresholds of its own (the rules, older
    versions)."""
    return Thresholds(settings.review_threshold, settings.decline_threshold)


def scoring_pipeline(
    settings: Settings,
    engine: FeatureEngine,
    current_model: Callable[[], Scorer],
    current_challenger: Callable[[], OnlineChallenger | None] = lambda: None,
) -> ScoringPipeline:
    """The one scoring path: the stream's, the API's and the bench's."""
    return ScoringPipeline(
        engine, current_model, configured_thresholds(settings),
        current_challenger=current_challenger,
        timeliness=Timeliness(settings.event_time_rules()),
    )  # fmt: skip


def make_loader(settings: Settings) -> Loader:
    """Loads the champion (``None``) or a version of the model from the MLflow registry
    (scoring processes limit MLflow's retries at their entry point: ``REGISTRY_HTTP_LIMITS``)."""

    def load(version: str | None) -> Scorer:
        registry = model_registry(settings)
        if version is None:
            return registry.load_scorer(settings.model_name)
        return registry.load_scorer_version(settings.model_name, version)

    return load


def model_registry(settings: Settings) -> Any:
    """The MLflow registry of the settings (imported here: MLflow takes seconds to load)."""
    from retraining.adapters.mlflow_registry import MlflowRegistry

    return MlflowRegistry(settings.mlflow_tracking_uri)


def make_reference_loader(settings: Settings) -> ReferenceLoader:
    """Loads a model version's reference sample from its training run in the registry."""

    def load(version: str) -> Reference:
        frame = model_registry(settings).load_reference(settings.model_name, version)
        return Reference(
            frame[list(FEATURE_NAMES)].to_numpy(dtype=float),
            frame["fraud_probability"].to_numpy(dtype=float),
        )

    return load


def make_report_store(settings: Settings) -> ReportStore:
    """Keeps a drift report's HTML in the registry, with the served version's training run."""

    def store(version: str, path: Path) -> str:
        return model_registry(settings).store_report(settings.model_name, version, path)

    return store


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
    health: Health


def make_parts(settings: Settings) -> WorkerParts:
    """Connect to Redis and load the champion (cached locally; rules if neither works)."""
    client = feature_client(settings.redis_url)
    features = feature_store(settings, client)
    engine = FeatureEngine(features, settings.label_delay_days)
    models = ModelHolder(make_loader(settings), settings.model_cache_file)
    models.refresh()
    metrics = WorkerMetrics()
    challenger = ChallengerChannel(client, settings.redis_prefix("challenger"))
    served = models.current()
    metrics.serving(served.name, served.version)
    health = Health(settings.liveness_timeout, settings.ready_on_fallback)
    health.serving(served.fallback)
    return WorkerParts(
        client,
        features,
        engine,
        models,
        scoring_pipeline(settings, engine, models.current, lambda: challenger.current),
        TrainingStore(settings.training_store_url),
        metrics,
        RollingQuality(threshold=settings.review_threshold),
        DriftAgent(
            settings.model_name,
            make_reference_loader(settings),
            configured_thresholds(settings),
            drift_config(settings),
            settings.reports_dir,
            metrics,
            settings.drift_report_every,
            make_report_store(settings),
        ),
        challenger,
        ChallengerLearner(settings.challenger_delay_days, metrics, settings.review_threshold),
        health,
    )
