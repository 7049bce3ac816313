"""Promote and roll back by hand, with two scoring workers sharing the partitions: each
command moves the champion in MLflow and every worker swaps (not one member of the group)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from retraining.adapters.mlflow_registry import MlflowRegistry
from retraining.registry import version_thresholds
from schemas.codec import decode, encode
from schemas.scored import ScoredTransaction
from schemas.topics import SCORED, TRANSACTIONS
from simulator.generator import SimulationConfig, simulate
from simulator.records import transaction_records
from streams.app import create_topics, group_id
from streams.kafka_admin import admin_client
from streams.settings import Settings, to_env
from tests.conftest import Endpoints
from tests.integration.test_streaming import Reader, isolated, register_two_versions, send
from tooling.cli import main
from tooling.processes import spawn_worker

AGENTS = ("score", "model-updates")


async def group_members(settings: Settings) -> int:
    async with admin_client(settings.kafka_bootstrap) as admin:
        (described,) = await admin.describe_consumer_groups([group_id(settings, AGENTS)])
    return len(described.to_object()["groups"][0]["members"])  # type: ignore[attr-defined]


async def versions_of(settings: Settings, reader: Reader, batch: list) -> set[str]:
    await send(settings, TRANSACTIONS.name, batch)
    return {decode(ScoredTransaction, raw).model_version for raw in await reader.read(len(batch))}


async def until_all(settings: Settings, reader: Reader, probes: list, version: str) -> None:
    """Send probe batches until one comes back scored by ``version`` alone."""
    deadline = time.monotonic() + 90
    for start in range(0, len(probes), 40):
        if await versions_of(settings, reader, probes[start : start + 40]) == {version}:
            return
        assert time.monotonic() < deadline, f"the workers did not all swap to {version}"
        await asyncio.sleep(1)
    raise AssertionError(f"the workers did not all swap to {version}")


def test_promote_and_rollback_reach_every_worker(
    services: Endpoints, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = isolated(services, tmp_path).replace(partitions=4, metrics_port=0)
    register_two_versions(settings)  # version 1 is champion
    for name, value in to_env(settings).items():
        monkeypatch.setenv(name, value)
    simulation = simulate(SimulationConfig(seed=4, days=4, customers=300, terminals=100))
    batches = [
        (t.card_id.encode(), encode(t)) for t in transaction_records(simulation.transactions)
    ]
    assert len(batches) >= 1_400
    first, probes, last = batches[:200], batches[200:1_200], batches[1_200:]

    async def run() -> list[set[str]]:
        await create_topics(settings, (group_id(settings, AGENTS),))
        workers = [spawn_worker(settings, tmp_path / f"worker{i}.log", AGENTS) for i in (1, 2)]
        try:
            deadline = time.monotonic() + 120
            while await group_members(settings) < 2:
                assert time.monotonic() < deadline, "two workers never shared the group"
                await asyncio.sleep(1)
            seen = []
            async with Reader(settings, SCORED.name) as reader:
                seen.append(await versions_of(settings, reader, first))
                assert await asyncio.to_thread(main, ["promote", "2"]) == 0
                await until_all(settings, reader, probes[:500], "2")
                seen.append(await versions_of(settings, reader, last[:100]))
                assert await asyncio.to_thread(main, ["rollback"]) == 0
                await until_all(settings, reader, probes[500:], "1")
                seen.append(await versions_of(settings, reader, last[100:]))
            return seen
        finally:
            for worker in workers:
                worker.terminate()
                worker.wait(timeout=30)

    assert asyncio.run(run()) == [{"1"}, {"2"}, {"1"}]
    client = MlflowClient(settings.mlflow_tracking_uri)
    assert str(client.get_model_version_by_alias(settings.model_name, "champion").version) == "1"
    promoted = client.get_model_version(settings.model_name, "2").tags
    assert promoted["previous_champion"] == "1" and promoted["promoted_by"] == "a person"
    restored = client.get_model_version(settings.model_name, "1").tags
    assert restored["promotion_reason"] == "rollback from version 2"
    # each version's thresholds are in the model the scorers load, and on the version
    for version in ("1", "2"):
        model = MlflowRegistry(settings.mlflow_tracking_uri).load_version(
            settings.model_name, version
        )
        tags = client.get_model_version(settings.model_name, version).tags
        assert model.thresholds is not None
        assert version_thresholds(tags) == pytest.approx(
            {"review": model.thresholds.review, "decline": model.thresholds.decline}, abs=1e-6
        )
