"""kill -9 a scoring worker mid-stream and start another: every transaction is scored, and
no transaction is counted twice in the feature state."""

from __future__ import annotations

import asyncio
import dataclasses
import signal
import time
import uuid
from pathlib import Path

import orjson
import redis

from schemas.codec import decode, encode
from schemas.scored import ScoredTransaction
from schemas.topics import SCORED, TRANSACTIONS
from scoring.features.redis_store import unpack_rings
from streams.app import create_topics, spawn_worker
from streams.simulator.generator import SimulationConfig, simulate
from streams.simulator.records import transaction_records
from tests.conftest import Endpoints
from tests.integration.test_streaming import Reader, send


def test_kill_9_mid_stream_loses_nothing_and_counts_nothing_twice(
    services: Endpoints, tmp_path: Path
) -> None:
    run = uuid.uuid4().hex[:8]
    settings = services.settings(
        home=tmp_path, topic_prefix=f"crash{run}.", app_id=f"fraudstream-crash-{run}",
        partitions=3, model_name=f"it-crash-{run}", metrics_port=0,
    )  # fmt: skip
    worker_settings = dataclasses.replace(settings, batch_size=100)
    simulation = simulate(SimulationConfig(seed=6, days=4, customers=300, terminals=120))
    records = transaction_records(simulation.transactions.head(3_000))
    items = [(r.card_id.encode(), encode(r)) for r in records]
    log = tmp_path / "workers.log"

    async def run_crash() -> list[bytes]:
        await create_topics(settings)
        first = spawn_worker(worker_settings, log)
        async with Reader(settings, SCORED.name) as scored:
            await send(settings, TRANSACTIONS.name, items[:1_000])
            seen = await scored.read(300, timeout=120)  # it is working...
            first.send_signal(signal.SIGKILL)  # ...and dies without a word
            first.wait()
            await send(settings, TRANSACTIONS.name, items[1_000:])
            second = spawn_worker(worker_settings, log)
            try:
                unique = {decode(ScoredTransaction, raw).transaction.transaction_id for raw in seen}
                deadline = time.monotonic() + 180
                while len(unique) < len(items) and time.monotonic() < deadline:
                    more = await scored.read(1, timeout=60)
                    seen += more
                    unique |= {
                        decode(ScoredTransaction, raw).transaction.transaction_id for raw in more
                    }
                return seen
            finally:
                second.terminate()
                second.wait(timeout=60)

    outputs = asyncio.run(run_crash())
    scored_ids = [decode(ScoredTransaction, raw).transaction.transaction_id for raw in outputs]

    assert set(scored_ids) == {r.transaction_id for r in records}, log.read_text()[-3000:]
    client = redis.Redis.from_url(settings.redis_url)
    prefix = f"{settings.topic_prefix}fs"
    marks = list(client.scan_iter(f"{prefix}:mark:tx:*", count=1_000))
    rings = [client.get(key) for key in client.scan_iter(f"{prefix}:terminal:*", count=1_000)]
    terminal_total = int(unpack_rings(rings)[:, 0].sum())
    card_ids: list[str] = []
    for key in client.scan_iter(f"{prefix}:card:*", count=1_000):
        card_ids += [orjson.loads(member)[1] for member in client.zrange(key, 0, -1)]
    assert len(marks) == len(records)
    assert terminal_total == len(records)  # each transaction counted once at its terminal
    assert sorted(card_ids) == sorted(r.transaction_id for r in records)  # and once at its card
    print(f"duplicates on {SCORED.name}: {len(scored_ids) - len(set(scored_ids))}")  # noqa: T201
