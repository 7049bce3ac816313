"""First contact: a broker formatted a moment ago does not listen for a few seconds, then
answers metadata before it can coordinate a consumer group (``COORDINATOR_NOT_AVAILABLE``
while it creates ``__consumer_offsets``). A worker started at once must wait all of that out
and score; ``services up`` must not say the broker is up before a group can be coordinated."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka.errors import KafkaError

from schemas.codec import decode, encode
from schemas.scored import ScoredTransaction
from schemas.topics import SCORED, TRANSACTIONS
from schemas.transaction import Transaction
from streams.kafka_admin import topic_partitions
from streams.settings import Settings
from tests.conftest import Endpoints
from tests.integration.test_streaming import Reader, send
from tooling.processes import spawn_worker
from tooling.services.kafka import LocalKafka, group_coordinator_answers
from tooling.services.process import free_port


def brand_new_broker_settings(services: Endpoints, home: Path) -> Settings:
    """Our own Kafka (fresh data directory, free ports); Redis and MLflow of the session."""
    run = uuid.uuid4().hex[:8]
    return services.settings(home=home, app_id=f"fraudstream-fresh-{run}", partitions=3,
                          model_name=f"it-fresh-{run}", metrics_port=0).replace(
        kafka_bootstrap_override=None, kafka_port=free_port(), kafka_controller_port=free_port(),
    )  # fmt: skip


@pytest.fixture
def brand_new_broker(services: Endpoints, tmp_path: Path) -> Iterator[Settings]:
    """A broker started from a freshly formatted data directory, handed over as soon as its
    process runs: it does not listen yet, and nothing has asked it for a coordinator."""
    settings = brand_new_broker_settings(services, tmp_path / "home")
    kafka = LocalKafka(settings)
    kafka.up(ready="started")
    try:
        yield settings
    finally:
        kafka.down()


def test_a_worker_started_on_a_brand_new_broker_scores(
    brand_new_broker: Settings, tmp_path: Path
) -> None:
    settings = brand_new_broker
    transaction = Transaction.model_validate(
        {"transaction_id": "fresh-1", "event_time": "2026-03-01T12:00:00Z",
         "card_id": "card-fresh", "terminal_id": "term-fresh", "amount": 12.5}
    )  # fmt: skip
    worker = spawn_worker(settings, tmp_path / "worker.log", ("score", "model-updates"))

    log = tmp_path / "worker.log"

    async def scored_once() -> list[bytes]:
        async with asyncio.timeout(120):  # the worker makes the topics once the broker answers
            while not await scored_topic_exists(settings):
                assert worker.poll() is None, f"the worker exited:\n{log.read_text()[-3000:]}"
                await asyncio.sleep(0.5)
        async with Reader(settings, SCORED.name) as scored:
            await send(settings, TRANSACTIONS.name, [(b"card-fresh", encode(transaction))])
            return await scored.read(1, timeout=120)

    try:
        answers = asyncio.run(scored_once())
        assert worker.poll() is None, log.read_text()[-3000:]
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    [answer] = [decode(ScoredTransaction, raw) for raw in answers]
    assert answer.transaction.transaction_id == "fresh-1"


async def scored_topic_exists(settings: Settings) -> bool:
    try:
        return settings.topic(SCORED.name) in await topic_partitions(settings.kafka_bootstrap)
    except KafkaError:  # not listening yet
        return False


def test_services_up_waits_until_a_group_can_be_coordinated(
    services: Endpoints, tmp_path: Path
) -> None:
    settings = brand_new_broker_settings(services, tmp_path / "home")
    kafka = LocalKafka(settings)
    try:
        kafka.up()
        # asked once, with no retry: the coordinator is there already
        assert group_coordinator_answers(settings.kafka_bootstrap)
        assert kafka.status().running
    finally:
        kafka.down()
