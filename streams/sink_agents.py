"""The agents that consume the scored stream (training store, drift, the challenger's
learner), and the challenger's labels.

One Faust agent serves all three consumers of ``transactions.scored``: Faust's per-event
cost is paid once. The training store is written before a batch is acknowledged, so a crash
replays (and rewrites) a batch instead of losing it. The work is in ``ScoredSinks``, whose
inputs are injected (``tests/unit/test_agents.py`` runs it without a broker).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import faust
import numpy as np

from schemas.codec import encode
from schemas.events import Label
from schemas.scored import ScoredEvent
from schemas.topics import DRIFT_REPORTS, LABELS, RETRAIN_REQUESTS, SCORED
from streams.challenger import ChallengerLearner
from streams.drift_agent import DriftAgent
from streams.labels_agent import by_partition, decoded_or_dead, no_dead_letters
from streams.metrics import WorkerMetrics
from streams.scorer import KafkaMessage, SendValue
from streams.training_store import TrainingStore

if TYPE_CHECKING:
    from streams.wiring import WorkerParts

logger = logging.getLogger(__name__)

CHALLENGER_EVERY_S = 5.0  # how often the learner publishes and the scorers pick it up
SCORED_BATCH, SCORED_WITHIN_S = 5_000, 2.0

SendKeyed = Callable[[bytes, bytes], Awaitable[None]]  # key, value


@dataclasses.dataclass
class ScoredSinks:
    """What each batch of scored events feeds: the challenger's learner, the training store,
    the drift agent (each optional: the agents a process runs)."""

    metrics: WorkerMetrics
    send_drift_report: SendKeyed
    send_retrain_request: SendValue
    learner: ChallengerLearner | None = None
    store: TrainingStore | None = None
    drift: DriftAgent | None = None

    async def handle(self, messages: list[KafkaMessage]) -> None:
        parsed = await asyncio.to_thread(
            lambda: [ScoredEvent.parse(m.value or b"") for m in messages]
        )
        times = np.array([event.event_time for event in parsed])  # for drift and learner
        if self.learner is not None:
            await asyncio.to_thread(self.learner.learn_scored, parsed, times)
        if self.store is not None:
            for origin, rows in by_partition(list(zip(messages, parsed, strict=True))):
                data = [event.data for event in rows]
                written = await asyncio.to_thread(self.store.write_scored_events, data, origin)
                self.metrics.training_rows.labels("scored").inc(written)
        if self.drift is not None:
            await self.watch(self.drift, parsed, times)

    async def watch(self, drift: DriftAgent, parsed: list[ScoredEvent], times: np.ndarray) -> None:
        for result in await asyncio.to_thread(drift.handle, parsed, times):
            report = result.report
            if drift.wants_html(result):
                report = await asyncio.to_thread(drift.write_html, result)
            drifted = [f.feature for f in report.features if f.drifted]
            logger.info(
                "drift window %s..%s of %s/%s: %d events, severity %s, share %.2f %s",
                f"{report.window_start:%Y-%m-%d %H:%M}", f"{report.window_end:%Y-%m-%d %H:%M}",
                report.model_name, report.model_version, report.events, report.severity,
                report.drift_share, drifted,
            )  # fmt: skip
            await self.send_drift_report(report.model_version.encode(), encode(report))
            if result.request is not None:
                logger.warning("severe drift: asking to retrain (%s)", result.request.request_id)
                await self.send_retrain_request(encode(result.request))


def add_sink_agents(
    app: faust.App,
    topic: Callable[[str], faust.TopicT],
    parts: WorkerParts,
    agents: tuple[str, ...],
    label_batch: int = 500,
) -> None:
    """The agents of ``agents`` that read the scored stream, on ``app``; ``topic`` makes a
    topic by its schema name."""
    drift_reports, retrain_requests = topic(DRIFT_REPORTS.name), topic(RETRAIN_REQUESTS.name)
    keep, watch, learn = "training-store" in agents, "drift" in agents, "challenger" in agents

    async def send_drift_report(key: bytes, value: bytes) -> None:
        await drift_reports.send(key=key, value=value)

    async def send_retrain_request(value: bytes) -> None:
        await retrain_requests.send(value=value)

    sinks = ScoredSinks(
        parts.metrics, send_drift_report, send_retrain_request,
        learner=parts.learner if learn else None, store=parts.store if keep else None,
        drift=parts.drift if watch else None,
    )  # fmt: skip

    async def scored_sinks(stream: faust.StreamT) -> None:
        batches = stream.take_events(SCORED_BATCH, within=SCORED_WITHIN_S)  # type: ignore[attr-defined]
        async for events in batches:
            await sinks.handle([event.message for event in events])

    if keep or watch or learn:
        app.agent(topic(SCORED.name), name="scored-sinks")(scored_sinks)
    if learn:

        @app.agent(topic(LABELS.name), name="challenger-labels")
        async def challenger_labels(stream: faust.StreamT) -> None:
            batches = stream.take_events(label_batch, within=1.0)  # type: ignore[attr-defined]
            async for events in batches:
                # the labels agent sends the undecodable ones to the dead-letter topic
                messages = [event.message for event in events]
                decoded = await decoded_or_dead(Label, messages, no_dead_letters)
                labels = [label for label in decoded if label is not None]
                ids = [label.transaction_id for label in labels]
                frauds = [label.is_fraud for label in labels]
                await asyncio.to_thread(parts.learner.learn_labels, ids, frauds)

        @app.task
        async def resume_challenger() -> None:
            parts.learner.resume(await asyncio.to_thread(parts.challenger.refresh))

        @app.timer(interval=CHALLENGER_EVERY_S)
        async def publish_challenger() -> None:
            if parts.learner.challenger.learned:
                data = await asyncio.to_thread(parts.learner.dumps)
                await asyncio.to_thread(parts.challenger.publish, data)
