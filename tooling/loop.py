"""Watching the closed loop from outside: a consumer of the scored, drift, retrain and model
update topics that keeps what ``make demo`` prints and the end-to-end test checks.

It reads with plain aiokafka, outside every consumer group, from the start of each topic.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections import Counter
from datetime import date, datetime

import numpy as np
import orjson
from aiokafka import AIOKafkaConsumer

from schemas.codec import decode
from schemas.events import DriftReport, ModelUpdate, RetrainRequest, Severity
from schemas.topics import DRIFT_REPORTS, MODEL_UPDATES, RETRAIN_REQUESTS, SCORED
from streams.settings import Settings


@dataclasses.dataclass
class FirstSeen:
    version: str
    wall: float  # time.time() when the watcher saw the first event scored by it
    event_time: datetime


@dataclasses.dataclass
class LoopState:
    scored: int = 0
    versions: Counter[str] = dataclasses.field(default_factory=Counter)
    decisions: dict[str, str] = dataclasses.field(default_factory=dict)  # id -> decision
    version_of: dict[str, str] = dataclasses.field(default_factory=dict)  # id -> model version
    latencies: list[float] = dataclasses.field(default_factory=list)  # ingest -> scored, s
    champion_score: dict[str, float] = dataclasses.field(default_factory=dict)  # id -> p
    challenger_score: dict[str, float] = dataclasses.field(default_factory=dict)  # in shadow
    first_seen: dict[str, FirstSeen] = dataclasses.field(default_factory=dict)
    reports: list[DriftReport] = dataclasses.field(default_factory=list)
    requests: list[RetrainRequest] = dataclasses.field(default_factory=list)
    updates: list[tuple[float, ModelUpdate]] = dataclasses.field(default_factory=list)
    latest_event_time: datetime | None = None
    last_wall: float = 0.0  # time.time() of the latest scored event seen
    # time.time() when the first scored event of each event day was seen
    first_wall_of_day: dict[date, float] = dataclasses.field(default_factory=dict)

    def first_severe(self) -> DriftReport | None:
        return next((r for r in self.reports if r.severity == Severity.SEVERE), None)

    def latency_percentiles(self) -> tuple[float, float, float]:
        if not self.latencies:
            return (float("nan"),) * 3
        p50, p95, p99 = np.percentile(self.latencies, [50, 95, 99])
        return float(p50), float(p95), float(p99)


class LoopWatcher:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.state = LoopState()
        self._task: asyncio.Task[None] | None = None
        self._consumer: AIOKafkaConsumer | None = None

    async def start(self) -> None:
        topics = [self.settings.topic(t.name) for t in (SCORED, DRIFT_REPORTS, RETRAIN_REQUESTS)]
        self._consumer = AIOKafkaConsumer(
            *topics,
            self.settings.topic(MODEL_UPDATES.name),
            bootstrap_servers=self.settings.kafka_bootstrap,
            group_id=None,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await self._consumer.start()
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer is not None:
            await self._consumer.stop()

    async def _run(self) -> None:
        assert self._consumer is not None
        names = {self.settings.topic(t.name): t.name for t in (
            SCORED, DRIFT_REPORTS, RETRAIN_REQUESTS, MODEL_UPDATES)}  # fmt: skip
        while True:
            batches = await self._consumer.getmany(timeout_ms=200, max_records=5_000)
            now = time.time()
            for tp, records in batches.items():
                kind = names[tp.topic]
                for record in records:
                    self._take(kind, record.value or b"", now)

    def _take(self, kind: str, value: bytes, now: float) -> None:
        state = self.state
        if kind == SCORED.name:
            event = orjson.loads(value)
            transaction_id = event["transaction"]["transaction_id"]
            version = str(event["model_version"])
            state.scored += 1
            state.last_wall = now
            state.versions[version] += 1
            state.decisions[transaction_id] = event["decision"]
            state.version_of[transaction_id] = version
            state.champion_score[transaction_id] = event["fraud_probability"]
            if event.get("challenger_probability") is not None:
                state.challenger_score[transaction_id] = event["challenger_probability"]
            scored_at = datetime.fromisoformat(event["scored_time"])
            ingest = datetime.fromisoformat(event["ingest_time"])
            state.latencies.append((scored_at - ingest).total_seconds())
            event_time = datetime.fromisoformat(event["transaction"]["event_time"])
            if state.latest_event_time is None or event_time > state.latest_event_time:
                state.latest_event_time = event_time
            if version not in state.first_seen:
                state.first_seen[version] = FirstSeen(version, now, event_time)
            state.first_wall_of_day.setdefault(event_time.date(), now)
        elif kind == DRIFT_REPORTS.name:
            state.reports.append(decode(DriftReport, value))
        elif kind == RETRAIN_REQUESTS.name:
            state.requests.append(decode(RetrainRequest, value))
        else:
            state.updates.append((now, decode(ModelUpdate, value)))
