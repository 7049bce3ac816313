"""The agents that consume the scored stream (training store, drift, the challenger's
learner) and the helpers every agent uses to read Faust events.

One Faust agent serves all three consumers of ``transactions.scored``: Faust's per-event
cost is paid once. The training store is written before a batch is acknowledged, so a crash
replays (and rewrites) a batch instead of losing it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

import faust
import numpy as np
import orjson

from schemas.codec import encode
from schemas.events import Label
from schemas.topics import DRIFT_REPORTS, LABELS, RETRAIN_REQUESTS, SCORED
from streams.labels_agent import by_partition, decoded_or_dead
from streams.scorer import SendValue

if TYPE_CHECKING:
    from streams.wiring import WorkerParts

logger = logging.getLogger(__name__)

CHALLENGER_EVERY_S = 5.0  # how often the learner publishes and the scorers pick it up


def add_sink_agents(
    app: faust.App,
    topic: Callable[[str], faust.TopicT],
    parts: WorkerParts,
    agents: tuple[str, ...],
    label_batch: int = 500,
    send_dead_letter: SendValue | None = None,
) -> None:
    """The agents of ``agents`` that read the scored stream, on ``app``; ``topic`` makes a
    topic by its schema name."""
    drift_reports, retrain_requests = topic(DRIFT_REPORTS.name), topic(RETRAIN_REQUESTS.name)

    keep, watch, learn = "training-store" in agents, "drift" in agents, "challenger" in agents

    async def scored_sinks(stream: faust.StreamT) -> None:
        batches = stream.take_events(5_000, within=2.0)  # type: ignore[attr-defined]
        async for events in batches:
            parsed = await asyncio.to_thread(_parse, events)
            times = np.array([_event_time(event) for event in parsed])  # for drift and learner
            if learn:
                await asyncio.to_thread(parts.learner.learn_scored, parsed, times)
            if keep:
                messages = [event.message for event in events]
                for origin, rows in by_partition(list(zip(messages, parsed, strict=True))):
                    written = await asyncio.to_thread(parts.store.write_scored_events, rows, origin)
                    parts.metrics.training_rows.labels("scored").inc(written)
            if watch:
                await drift(parsed, times)

    async def drift(parsed: list[dict], times: np.ndarray) -> None:
        for result in await asyncio.to_thread(parts.drift.handle, parsed, times):
            report = result.report
            if parts.drift.wants_html(result):
                report = await asyncio.to_thread(parts.drift.write_html, result)
            drifted = [f.feature for f in report.features if f.drifted]
            logger.info(
                "drift window %s..%s of %s/%s: %d events, severity %s, share %.2f %s",
                f"{report.window_start:%Y-%m-%d %H:%M}", f"{report.window_end:%Y-%m-%d %H:%M}",
                report.model_name, report.model_version, report.events, report.severity,
                report.drift_share, drifted,
            )  # fmt: skip
            await drift_reports.send(key=report.model_version.encode(), value=encode(report))
            if result.request is not None:
                logger.warning("severe drift: asking to retrain (%s)", result.request.request_id)
                await retrain_requests.send(value=encode(result.request))

    if keep or watch or learn:
        app.agent(topic(SCORED.name), name="scored-sinks")(scored_sinks)
    if learn:

        @app.agent(topic(LABELS.name), name="challenger-labels")
        async def challenger_labels(stream: faust.StreamT) -> None:
            batches = stream.take_events(label_batch, within=1.0)  # type: ignore[attr-defined]
            async for events in batches:
                # the labels agent sends the undecodable ones to the dead-letter topic
                decoded = await decoded_or_dead(Label, [e.message for e in events], ignore)
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


def _parse(events: list[faust.EventT]) -> list[dict]:
    return [orjson.loads(event.message.value or b"{}") for event in events]


def _event_time(event: dict) -> float:
    return datetime.fromisoformat(event["transaction"]["event_time"]).timestamp()


async def ignore(value: bytes) -> None:
    """For a second reader of a topic whose first reader sends its dead letters."""
