"""Event time on the real broker and Redis: a far-future transaction is a dead letter and the
card keeps its history; a 1970 one is refused; a two-day late one is scored and counted."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from schemas.codec import decode
from schemas.events import DeadLetter
from schemas.scored import ScoredTransaction
from schemas.topics import DEAD_LETTERS, SCORED, TRANSACTIONS
from streams.app import create_topics
from streams.wiring import make_parts
from tests.conftest import Endpoints
from tests.integration.test_streaming import Reader, isolated, running_worker, send


def test_bad_clocks_on_the_stream(services: Endpoints, tmp_path: Path) -> None:
    settings = isolated(services, tmp_path)
    now = datetime.now(UTC).replace(microsecond=0)
    sent = 0

    def payment(event_time: datetime | str) -> tuple[bytes, bytes]:
        nonlocal sent
        sent += 1
        stamp = event_time if isinstance(event_time, str) else event_time.isoformat()
        body = {"transaction_id": f"clock-{sent}", "event_time": stamp, "card_id": "cfut2",
                "terminal_id": "term-clock", "amount": 25.0}  # fmt: skip
        return b"cfut2", json.dumps(body).encode()

    def counts(raw: list[bytes]) -> list[tuple[str, float, bool]]:
        scored = [decode(ScoredTransaction, value) for value in raw]
        return [
            (s.transaction.transaction_id, s.features["card_tx_count_30d"], s.late) for s in scored
        ]

    async def run() -> dict[str, list]:
        await create_topics(settings)
        parts = make_parts(settings)
        seen: dict[str, list] = {}
        async with (
            running_worker(settings, parts),
            Reader(settings, SCORED.name) as scored,
            Reader(settings, DEAD_LETTERS.name) as dead,
        ):
            minutes = [now - timedelta(minutes=m) for m in (9, 8, 7)]
            await send(settings, TRANSACTIONS.name, [payment(t) for t in minutes])
            seen["first"] = counts(await scored.read(3))
            await send(settings, TRANSACTIONS.name, [payment("9999-12-31T23:59:59Z")])
            seen["future"] = [decode(DeadLetter, v) for v in await dead.read(1)]
            later = [now - timedelta(minutes=m) for m in (6, 5)]
            await send(settings, TRANSACTIONS.name, [payment(t) for t in later])
            seen["after"] = counts(await scored.read(2))
            await send(settings, TRANSACTIONS.name, [payment("1970-01-01T00:00:00Z")])
            seen["ancient"] = [decode(DeadLetter, v) for v in await dead.read(1)]
            late_then_next = [now - timedelta(days=2), now - timedelta(minutes=4)]
            await send(settings, TRANSACTIONS.name, [payment(t) for t in late_then_next])
            seen["late"] = counts(await scored.read(2))
        return seen

    seen = asyncio.run(run())

    assert seen["first"] == [("clock-1", 1, False), ("clock-2", 2, False), ("clock-3", 3, False)]
    [future] = seen["future"]
    assert future.reason == "future" and "FRAUD_MAX_FUTURE_SKEW" in future.error
    assert future.origin_topic == settings.topic(TRANSACTIONS.name)
    # the history survived the future-dated transaction: 4 and 5, not 1 and 1
    assert seen["after"] == [("clock-5", 4, False), ("clock-6", 5, False)]
    [ancient] = seen["ancient"]
    assert ancient.reason == "too_old"
    # two days late: it sees none of the five before it in event time... and is counted
    assert seen["late"] == [("clock-8", 1, False), ("clock-9", 7, False)]
