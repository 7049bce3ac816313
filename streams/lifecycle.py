"""The model lifecycle as jobs: retrain from the training store through the gate, promote,
roll back; each that moves the champion publishes a ``ModelUpdate`` the scorers follow.

Used by the trainer's Faust app and by ``fraudstream retrain | promote | rollback``.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

import numpy as np
import pandas as pd
from aiokafka import AIOKafkaProducer

from retraining.registry import ModelRegistry, Promotion
from retraining.retrain import (
    RetrainConfig,
    RetrainResult,
    candidate_and_gate,
    due,
    retrain_window,
    store_dataset,
    train_and_gate,
)
from retraining.training import Dataset
from schemas.codec import encode
from schemas.events import DecisionThresholds, ModelUpdate, RetrainReason, RetrainRequest
from schemas.topics import MODEL_UPDATES
from scoring.challenger import OnlineChallenger
from scoring.model import TrainedModel
from streams.settings import Settings
from streams.training_store import TrainingStore
from streams.wiring import model_registry

logger = logging.getLogger(__name__)

REFERENCE_ROWS = 5_000


@dataclasses.dataclass(frozen=True)
class RetrainOutcome:
    request: RetrainRequest
    status: str  # "promoted", "kept" (the gate said no) or "skipped" (could not train)
    reason: str
    version: str | None = None  # the version registered, if one was
    update: ModelUpdate | None = None
    seconds: float = 0.0


def retrain_config(settings: Settings) -> RetrainConfig:
    return RetrainConfig(
        train_days=settings.retrain_train_days,
        test_days=settings.retrain_test_days,
        label_delay_days=settings.label_delay_days,
        after_drift_days=settings.retrain_after_drift_days,
        margin=settings.promotion_margin,
        options=settings.training_options(),
        protocol=settings.protocol(),
    )


def manual_request(reason: RetrainReason, evidence: dict[str, str | float]) -> RetrainRequest:
    now = datetime.now(UTC)
    return RetrainRequest(
        request_id=f"{reason.value}-{now:%Y%m%dT%H%M%S}",
        reason=reason,
        evidence=evidence,
        requested_at=now,
    )


def drift_start(request: RetrainRequest) -> pd.Timestamp | None:
    drift = request.drift
    return (
        pd.Timestamp(drift.window_start)
        if request.reason == RetrainReason.DRIFT and drift
        else None
    )


def request_due(settings: Settings, request: RetrainRequest) -> bool:
    """Whether the store holds enough labelled time after the drift ``request`` reports."""
    latest = TrainingStore(settings.training_store_url).latest_event_time()
    return latest is not None and due(latest, drift_start(request), retrain_config(settings))


def retrain(
    settings: Settings, request: RetrainRequest, registry: ModelRegistry | None = None
) -> RetrainOutcome:
    """Train candidates on the store's latest mature window, register the best, let the gate
    decide, promote if it passes (in ``registry``; the settings' MLflow unless given).
    Blocking (seconds to minutes)."""
    return _through_the_gate(settings, request, train_and_gate, registry)


def challenger_through_the_gate(
    settings: Settings, challenger: OnlineChallenger, force: bool = False
) -> RetrainOutcome:
    """Register the online challenger (as the logistic regression it is) and promote it if
    it beats the champion on the store's latest labelled window, or if ``force``."""
    model = TrainedModel(
        "logistic_regression",
        challenger.to_sklearn(),
        tuple(challenger.features),
        np.zeros(len(challenger.features)),
        np.ones(len(challenger.features)),
    )
    params: dict[str, object] = {"source": "online challenger", "version": challenger.version}

    def gate(
        dataset: Dataset, champion: TrainedModel | None, config: RetrainConfig
    ) -> RetrainResult:
        result = candidate_and_gate(dataset, model, params, champion, config)
        if force and not result.gate.promote:
            forced = dataclasses.replace(
                result.gate, promote=True, reason=f"forced by hand ({result.gate.reason})"
            )
            result = dataclasses.replace(result, gate=forced)
        return result

    request = manual_request(RetrainReason.MANUAL, {"challenger": challenger.version})
    return _through_the_gate(settings, request, gate)


def _through_the_gate(
    settings: Settings,
    request: RetrainRequest,
    candidates: Callable[[Dataset, TrainedModel | None, RetrainConfig], RetrainResult],
    registry: ModelRegistry | None = None,
) -> RetrainOutcome:
    registry = registry or model_registry(settings)

    started = time.perf_counter()
    config = retrain_config(settings)
    store = TrainingStore(settings.training_store_url)
    scored, labels = store.read_scored(), store.read_labels()
    if scored.empty:
        return RetrainOutcome(request, "skipped", "the training store is empty")
    now = scored["event_time"].max()
    window = retrain_window(now, config)
    try:
        dataset = store_dataset(scored, labels, window, now, config.protocol)
    except ValueError as error:
        return RetrainOutcome(request, "skipped", str(error))
    name = settings.model_name
    champion = registry.champion_version(name)
    champion_model = registry.load_version(name, champion) if champion else None
    try:
        result = candidates(dataset, champion_model, config)
    except ValueError as error:  # e.g. no validation fold with a labelled fraud yet
        return RetrainOutcome(request, "skipped", str(error))
    # the drift reference: the newest rows, the world the new model goes out into
    latest = dataset.features[
        (scored["event_time"] >= now - pd.Timedelta(days=config.test_days)).to_numpy()
    ]
    sample = np.random.default_rng(config.seed).permutation(len(latest))[:REFERENCE_ROWS]
    params = {
        **window.as_params(),
        "label_delay_days": config.label_delay_days,
        "labels_known_at": now.isoformat(),
        "request_id": request.request_id,
        "reason": request.reason.value,
        "champion_version": champion or "none",
        "promotion_margin": config.margin,
        **config.options.as_params(),
        **result.dataset.fold_params(),
    }
    registered = registry.log_training(
        settings.mlflow_artifact_dir,
        name,
        params,
        result.dataset.summary(),
        result.candidates,
        result.best,
        latest[np.sort(sample)],
        report=result.dataset,
    )
    context = {"request_id": request.request_id, "champion_version": champion or "none"}
    registry.record_gate(name, registered.version, registered.run_id, result.gate, context)
    seconds = time.perf_counter() - started
    if not result.gate.promote:
        logger.info("version %s kept out: %s", registered.version, result.gate.reason)
        return RetrainOutcome(
            request, "kept", result.gate.reason, registered.version, None, seconds
        )
    promotion = promote_version(settings, registered.version, result.gate.reason, request)
    return RetrainOutcome(
        request, "promoted", result.gate.reason, registered.version, promotion, seconds
    )


def promote_version(
    settings: Settings, version: str, reason: str, request: RetrainRequest | None = None
) -> ModelUpdate:
    by = f"trainer ({request.reason.value} {request.request_id})" if request else "a person"
    return model_update(model_registry(settings).promote(settings.model_name, version, reason, by))


def rollback_champion(settings: Settings) -> ModelUpdate:
    return model_update(model_registry(settings).rollback(settings.model_name, "a person"))


def model_update(promotion: Promotion) -> ModelUpdate:
    return ModelUpdate(
        model_name=promotion.name,
        version=promotion.version,
        alias="champion",
        metrics=promotion.metrics,
        previous_version=promotion.previous,
        updated_at=datetime.now(UTC),
        thresholds=DecisionThresholds(**promotion.thresholds) if promotion.thresholds else None,
    )


async def publish_update(settings: Settings, update: ModelUpdate) -> None:
    """Tell every scorer (``model.updates``, keyed by model name) to load the new champion."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(
            settings.topic(MODEL_UPDATES.name),
            key=update.model_name.encode(),
            value=encode(update),
        )
    finally:
        await producer.stop()
