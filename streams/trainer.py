"""The training worker (``fraudstream trainer``): retrains on ``retrain.requests``, on a
weekly schedule, and publishes the champion it promotes on ``model.updates``.

A drift request waits until the training store holds enough labelled time after the drift
(``streams.lifecycle.request_due``), re-checked every ``trainer_poll_seconds``; one request
per drifted model version is acted on, however many drift agents sent one. Retrains run one
at a time, in a thread, so the app keeps its consumer group membership meanwhile.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from datetime import UTC

import faust

from schemas.codec import DecodeError, decode, encode
from schemas.events import RetrainReason, RetrainRequest
from schemas.topics import MODEL_UPDATES, RETRAIN_REQUESTS
from streams.app import faust_app, raw_topic
from streams.lifecycle import RetrainOutcome, manual_request, request_due, retrain
from streams.settings import Settings

logger = logging.getLogger(__name__)


def build_trainer_app(settings: Settings) -> faust.App:
    app = faust_app(
        settings,
        f"{settings.app_id}-trainer",
        # a retrain runs in a thread: the loop stays free to heartbeat, but be generous
        broker_rebalance_timeout=max(settings.broker_rebalance_timeout, 60.0),
    )
    topic = functools.partial(raw_topic, app, settings)

    updates = topic(MODEL_UPDATES.name)
    running = asyncio.Lock()
    pending: list[RetrainRequest] = []
    drifted_versions: set[str] = set()  # versions whose drift already has a retrain

    async def run(request: RetrainRequest) -> RetrainOutcome:
        async with running:
            logger.info("retraining for %s (%s)", request.request_id, request.reason.value)
            outcome = await asyncio.to_thread(retrain, settings, request)
            logger.warning(
                "retrain %s: %s, version %s, %s (%.0fs)", request.request_id, outcome.status,
                outcome.version, outcome.reason, outcome.seconds,
            )  # fmt: skip
            if outcome.update is not None:
                await updates.send(
                    key=outcome.update.model_name.encode(), value=encode(outcome.update)
                )
            return outcome

    async def requests(stream: faust.StreamT) -> None:
        async for raw in stream:
            try:
                request = decode(RetrainRequest, raw)
            except DecodeError as error:
                logger.warning("ignored a malformed retrain request: %s", error)
                continue
            if request.reason != RetrainReason.DRIFT:
                await run(request)
                continue
            version = str(request.evidence.get("model_version", ""))
            if version in drifted_versions:
                logger.info("drift of version %s already has a retrain: %s ignored", version,
                            request.request_id)  # fmt: skip
                continue
            drifted_versions.add(version)
            pending.append(request)
            logger.info("drift request %s waits for labelled post-drift data", request.request_id)

    app.agent(topic(RETRAIN_REQUESTS.name), name="retrain-requests")(requests)

    background: set[asyncio.Future[RetrainOutcome]] = set()

    def start(request: RetrainRequest) -> None:
        """Run in the background: a timer must return before its next tick."""
        task = asyncio.ensure_future(run(request))
        background.add(task)
        task.add_done_callback(background.discard)

    @app.timer(interval=settings.trainer_poll_seconds)
    async def run_due_requests() -> None:
        for request in list(pending):
            if await asyncio.to_thread(request_due, settings, request):
                pending.remove(request)
                start(request)

    @app.crontab(settings.retrain_cron, timezone=UTC)
    async def scheduled() -> None:
        start(manual_request(RetrainReason.SCHEDULE, {"cron": settings.retrain_cron}))

    return app
