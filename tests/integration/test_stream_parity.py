"""Online = offline the hard way: a seeded simulation published at full speed, in event-time
order, keyed by card, over six partitions, then scored by one worker and by two sharing
them: every feature of every transaction equals the offline replay's. Terminal features sum
the terminal's completed days, whose transactions come through every partition: without the
event-time alignment (``streams.alignment``) a partition that ran ahead under-counted them."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
import redis

from retraining.dataset import replay_features
from schemas.codec import encode
from schemas.topics import SCORED, TRANSACTIONS
from scoring.features import FEATURE_NAMES
from simulator.generator import SimulationConfig, simulate
from simulator.records import transaction_records
from streams.app import create_topics
from streams.settings import Settings
from tests.conftest import Endpoints
from tests.integration.test_streaming import Reader, send
from tooling.bench import delete_keys
from tooling.processes import spawn_worker

# the reproduction: 9,193 transactions, 2.8 % of them under-counted without alignment
SIMULATION = SimulationConfig(seed=7, days=12, customers=400, terminals=300)


@dataclasses.dataclass(frozen=True)
class Parity:
    transactions: int
    differing: int  # transactions with any feature unlike the offline replay
    by_feature: dict[str, int]


def stream_parity(
    services: Endpoints, tmp_path: Path, workers: int, max_partition_lead: float = 60.0
) -> Parity:
    """Publish the simulation at full speed, then score it with ``workers`` workers."""
    run = uuid.uuid4().hex[:8]
    settings = services.settings(
        home=tmp_path, topic_prefix=f"parity{run}.", app_id=f"fraudstream-parity-{run}",
        partitions=6, model_name=f"it-parity-{run}", metrics_port=0,
        max_partition_lead=max_partition_lead,
    )  # fmt: skip
    transactions = simulate(SIMULATION).transactions
    offline = replay_features(transactions, None, settings.label_delay_days)
    items = [(r.card_id.encode(), encode(r)) for r in transaction_records(transactions)]
    online = asyncio.run(_score_online(settings, items, workers, tmp_path))
    rows = np.array([online[i] for i in transactions["transaction_id"]])
    unequal = rows != offline
    return Parity(
        len(transactions),
        int(unequal.any(axis=1).sum()),
        {name: int(n) for name, n in zip(FEATURE_NAMES, unequal.sum(axis=0), strict=True) if n},
    )


async def _score_online(
    settings: Settings, items: list[tuple[bytes, bytes]], workers: int, logs: Path
) -> dict[str, list[float]]:
    await create_topics(settings)
    await send(settings, TRANSACTIONS.name, items)  # the whole history first: a backlog
    spawned = [
        spawn_worker(settings, logs / f"worker-{n}.log", ("score", "model-updates"))
        for n in range(workers)
    ]
    features: dict[str, list[float]] = {}
    try:
        async with Reader(settings, SCORED.name) as scored:
            deadline = time.monotonic() + 300
            while len(features) < len(items) and time.monotonic() < deadline:
                for value in await scored.read(1, timeout=300):
                    output = json.loads(value)
                    values = output["features"]
                    features[output["transaction"]["transaction_id"]] = [
                        values[name] for name in FEATURE_NAMES
                    ]
    finally:
        for worker in spawned:
            worker.terminate()
            worker.wait(timeout=60)
        client = redis.Redis.from_url(settings.redis_url)
        delete_keys(client, f"{settings.topic_prefix}*")
        client.close()
    return features


@pytest.mark.timeout(900)
@pytest.mark.parametrize("workers", [1, 2])
def test_features_scored_at_full_speed_over_six_partitions_equal_the_offline_replay(
    services: Endpoints, tmp_path: Path, workers: int
) -> None:
    parity = stream_parity(services, tmp_path, workers)

    assert parity.transactions == 9_193
    assert (parity.differing, parity.by_feature) == (0, {})
