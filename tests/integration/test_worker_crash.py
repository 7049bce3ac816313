"""kill -9 a scoring worker mid-stream and start another: every transaction is scored, and
no transaction is counted twice in the feature state."""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from pathlib import Path

import pytest
import redis

from schemas.codec import decode, encode
from schemas.scored import ScoredTransaction
from schemas.topics import SCORED, TRANSACTIONS
from scoring.adapters.redis_codec import parse_history, unpack_rings
from simulator.generator import SimulationConfig, simulate
from simulator.records import transaction_records
from streams.app import create_topics
from streams.settings import Settings
from tests.conftest import Endpoints
from tests.integration.test_streaming import Reader, send
from tooling.processes import spawn_worker


def own_run(services: Endpoints, tmp_path: Path, name: str, partitions: int) -> Settings:
    """Topics, consumer group and model name of this test run alone."""
    run = f"{name}{uuid.uuid4().hex[:8]}"
    return services.settings(
        home=tmp_path, topic_prefix=f"{run}.", app_id=f"fraudstream-{run}",
        partitions=partitions, model_name=f"it-{run}", metrics_port=0,
    )  # fmt: skip


def test_kill_9_mid_stream_loses_nothing_and_counts_nothing_twice(
    services: Endpoints, tmp_path: Path
) -> None:
    settings = own_run(services, tmp_path, "crash", partitions=3)
    worker_settings = settings.replace(batch_size=100)
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
    prefix = settings.redis_prefix("features")
    marks = list(client.scan_iter(f"{prefix}:mark:tx:*", count=1_000))
    rings = [client.get(key) for key in client.scan_iter(f"{prefix}:terminal:*", count=1_000)]
    terminal_total = int(unpack_rings(rings)[:, 0].sum())
    card_ids: list[str] = []
    for key in client.scan_iter(f"{prefix}:history:*", count=1_000):
        card_ids += parse_history(client.get(key))["id"]
    assert len(marks) == len(records)
    assert terminal_total == len(records)  # each transaction counted once at its terminal
    assert sorted(card_ids) == sorted(r.transaction_id for r in records)  # and once at its card
    print(f"duplicates on {SCORED.name}: {len(scored_ids) - len(set(scored_ids))}")  # noqa: T201


@pytest.mark.parametrize("broken", ["card", "terminal"])
def test_a_scorer_that_fails_stops_its_worker_and_its_batch_is_scored_after_a_restart(
    services: Endpoints, tmp_path: Path, broken: str
) -> None:
    settings = own_run(services, tmp_path, "fail", partitions=1)
    simulation = simulate(SimulationConfig(seed=8, days=2, customers=50, terminals=20))
    records = transaction_records(simulation.transactions.head(20))
    # the last transaction sent is the only one at its terminal: the failing batch is the last
    alone = next(r for r in records if sum(o.terminal_id == r.terminal_id for o in records) == 1)
    records = [r for r in records if r is not alone] + [alone]
    items = [(r.card_id.encode(), encode(r)) for r in records]
    client = redis.Redis.from_url(settings.redis_url)
    # another program wrote a key of ours: a card history that is not the store's JSON
    # fails the batch's read; a terminal's counters that are a hash fail its write
    prefix = settings.redis_prefix("features")
    if broken == "card":
        key = f"{prefix}:history:{alone.card_id}"
        client.set(key, "not a card history")
    else:
        key = f"{prefix}:terminal:{alone.terminal_id}"
        client.hset(key, "not", "a ring")
    log = tmp_path / "worker.log"
    wanted = {r.transaction_id for r in records}

    async def run_failure() -> tuple[int, set[str]]:  # the first worker's exit code, ids scored
        await create_topics(settings)
        async with Reader(settings, SCORED.name) as scored:
            worker = spawn_worker(settings, log)
            await send(settings, TRANSACTIONS.name, items)
            deadline = time.monotonic() + 120
            while worker.poll() is None and time.monotonic() < deadline:
                await asyncio.sleep(0.5)
            if worker.poll() is None:
                worker.kill()
            failed_with = worker.wait()
            client.delete(key)
            again = spawn_worker(settings, log)
            seen: set[str] = set()
            try:
                deadline = time.monotonic() + 120
                while seen != wanted and time.monotonic() < deadline:
                    seen |= {
                        decode(ScoredTransaction, raw).transaction.transaction_id
                        for raw in await scored.read(1, timeout=60)
                    }
            finally:
                again.terminate()
                again.wait(timeout=60)
        return failed_with, seen

    failed_with, seen = asyncio.run(run_failure())

    assert failed_with == 1, log.read_text()[-3000:]
    assert ("a card history must be" if broken == "card" else "WRONGTYPE") in log.read_text()
    assert seen == wanted
