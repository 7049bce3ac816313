"""The training worker (``fraudstream trainer``): retrains on ``retrain.requests``, on a
weekly schedule, and publishes the champion it promotes on ``model.updates``.

A drift request waits until the training store holds enough labelled time after the drift
(``streams.lifecycle.request_due``), re-checked every ``trainer_poll_seconds``; one request
per drifted model version is acted on, however many drift agents sent one. The waiting
requests and the versions already answered are kept in the training store
(``PendingRequests``), so a restarted trainer resumes them. Retrains run one at a time, in a
thread, so the app keeps its consumer group membership meanwhile. A request that cannot be
decoded goes to the dead-letter topic with its origin.
"""

from __future__ import annotations

import asyncio
import enum
import functools
import logging
from collections.abc import Callable
from datetime import UTC

import faust
import orjson
from prometheus_client import CollectorRegistry, Counter, Gauge, GCCollector, ProcessCollector

from schemas.codec import decode, encode
from schemas.events import RetrainReason, RetrainRequest
from schemas.topics import DEAD_LETTERS, MODEL_UPDATES, RETRAIN_REQUESTS
from streams.app import faust_app, raw_topic
from streams.health import HEARTBEAT_EVERY_S, Health
from streams.labels_agent import decoded_or_dead
from streams.lifecycle import RetrainOutcome, manual_request, request_due, retrain
from streams.settings import Settings
from streams.training_store import TrainingStore

logger = logging.getLogger(__name__)

PENDING_FILE = "trainer-pending.json"


class Triage(enum.StrEnum):
    RUN = "run"  # now
    WAIT = "wait"  # for labelled post-drift data
    IGNORED = "ignored"  # its drifted version already has a retrain


class PendingRequests:
    """Drift requests waiting for labelled post-drift data, and the model versions whose drift
    already has a retrain, kept in the training store."""

    def __init__(self, store: TrainingStore) -> None:
        self.store = store
        data = orjson.loads(store.read_state(PENDING_FILE) or b"{}")
        self.waiting = [decode(RetrainRequest, orjson.dumps(r)) for r in data.get("waiting", [])]
        self.answered: set[str] = set(data.get("answered_versions", []))

    def triage(self, request: RetrainRequest) -> Triage:
        if request.reason != RetrainReason.DRIFT or request.drift is None:
            return Triage.RUN
        version = request.drift.model_version
        if version in self.answered:
            return Triage.IGNORED
        self.answered.add(version)
        self.waiting.append(request)
        self._save()
        return Triage.WAIT

    def take_due(self, is_due: Callable[[RetrainRequest], bool]) -> list[RetrainRequest]:
        """The waiting requests ``is_due`` says are due, no longer waiting."""
        due = [request for request in self.waiting if is_due(request)]
        if due:
            self.waiting = [request for request in self.waiting if request not in due]
            self._save()
        return due

    def _save(self) -> None:
        data = {
            "waiting": [orjson.loads(encode(request)) for request in self.waiting],
            "answered_versions": sorted(self.answered),
        }
        self.store.write_state(PENDING_FILE, orjson.dumps(data, option=orjson.OPT_INDENT_2))


RETRAIN_STATUSES = ("promoted", "kept", "skipped")  # RetrainOutcome.status


class TrainerMetrics:
    """The trainer's metrics: its retrains and gate outcomes, process and GC."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self.retrains = Counter(
            "fraudstream_trainer_retrains",
            "Retrains by outcome (promoted, kept: the gate said no, skipped)", ["status"],
            registry=self.registry,
        )  # fmt: skip
        for status in RETRAIN_STATUSES:  # every outcome a series from the start: rate() works
            self.retrains.labels(status)
        self.waiting = Gauge(
            "fraudstream_trainer_waiting_requests",
            "Drift requests waiting for labelled post-drift data", registry=self.registry,
        )  # fmt: skip


def build_trainer_app(
    settings: Settings, health: Health | None = None, metrics: TrainerMetrics | None = None
) -> faust.App:
    app = faust_app(
        settings,
        f"{settings.app_id}-trainer",
        # a retrain runs in a thread: the loop stays free to heartbeat, but be generous
        broker_rebalance_timeout=max(settings.broker_rebalance_timeout, 60.0),
    )
    topic = functools.partial(raw_topic, app, settings)

    updates, dead_letters = topic(MODEL_UPDATES.name), topic(DEAD_LETTERS.name)
    running = asyncio.Lock()
    health = health or Health(settings.liveness_timeout)
    health.serving(fallback=False)  # the trainer serves no model: ready once in its group
    metrics = metrics or TrainerMetrics()
    pending = PendingRequests(TrainingStore(settings.training_store_url))
    metrics.waiting.set(len(pending.waiting))
    if pending.waiting:
        logger.info("resuming %d waiting drift request(s)", len(pending.waiting))

    async def run(request: RetrainRequest) -> RetrainOutcome:
        async with running:
            logger.info("retraining for %s (%s)", request.request_id, request.reason.value)
            outcome = await asyncio.to_thread(retrain, settings, request)
            logger.warning(
                "retrain %s: %s, version %s, %s (%.0fs)", request.request_id, outcome.status,
                outcome.version, outcome.reason, outcome.seconds,
                extra={"request_id": request.request_id, "model_version": outcome.version},
            )  # fmt: skip
            metrics.retrains.labels(outcome.status).inc()
            if outcome.update is not None:
                await updates.send(
                    key=outcome.update.model_name.encode(), value=encode(outcome.update)
                )
            return outcome

    async def send_dead_letter(value: bytes) -> None:
        await dead_letters.send(value=value)

    async def requests(stream: faust.StreamT) -> None:
        async for event in stream.events():
            (request,) = await decoded_or_dead(RetrainRequest, [event.message], send_dead_letter)
            if request is None:
                continue
            triage = await asyncio.to_thread(pending.triage, request)
            metrics.waiting.set(len(pending.waiting))
            if triage is Triage.RUN:
                await run(request)
            elif triage is Triage.IGNORED:
                logger.info("drift of version %s already has a retrain: %s ignored",
                            request.drift.model_version if request.drift else "?",
                            request.request_id)  # fmt: skip
            else:
                logger.info("drift request %s waits for labelled post-drift data",
                            request.request_id)  # fmt: skip

    app.agent(topic(RETRAIN_REQUESTS.name), name="retrain-requests")(requests)

    background: set[asyncio.Future[RetrainOutcome]] = set()

    def start(request: RetrainRequest) -> None:
        """Run in the background: a timer must return before its next tick."""
        task = asyncio.ensure_future(run(request))
        background.add(task)
        task.add_done_callback(background.discard)

    @app.timer(interval=settings.trainer_poll_seconds)
    async def run_due_requests() -> None:
        is_due = functools.partial(request_due, settings)
        for request in await asyncio.to_thread(pending.take_due, is_due):
            start(request)
        metrics.waiting.set(len(pending.waiting))

    @app.timer(interval=HEARTBEAT_EVERY_S)
    async def heartbeat() -> None:
        health.beat()

    async def joined(sender: object, /, *args: object, signal: object, **kwargs: object) -> None:
        health.joined()

    app.on_partitions_assigned.connect(joined)

    @app.crontab(settings.retrain_cron, timezone=UTC)
    async def scheduled() -> None:
        start(manual_request(RetrainReason.SCHEDULE, {"cron": settings.retrain_cron}))

    return app
