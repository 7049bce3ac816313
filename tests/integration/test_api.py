"""The REST facade as a running process on the real Redis, Kafka and MLflow: the same score
as the stream, it follows model updates, labels reach the topic, and no generated input
makes it fail (schemathesis)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from mlflow.tracking import MlflowClient

from schemas.codec import decode, encode
from schemas.events import CHAMPION, Label, ModelUpdate
from schemas.scored import ScoredTransaction
from schemas.topics import LABELS, MODEL_UPDATES, SCORED, TRANSACTIONS
from streams.app import create_topics
from streams.settings import Settings
from streams.wiring import make_parts
from tests.conftest import ROOT, Endpoints
from tests.integration import fuzz_hooks  # noqa: F401 - recent date-times for the fuzz below
from tests.integration.test_streaming import (
    Reader,
    isolated,
    records,
    register_two_versions,
    running_worker,
    send,
)
from tooling.processes import spawn_api
from tooling.services.process import free_port

SECRET = "integration-secret-0001"
KEY = {"X-API-Key": SECRET}
JSON = {"Content-Type": "application/json"}


def api_settings(services: Endpoints, tmp_path: Path) -> Settings:
    # no model is registered here: the rules serve, which these tests declare acceptable (the
    # rule that the fallback alone is not ready is unit-tested in tests/unit/test_api.py)
    return isolated(
        services, tmp_path, api_keys=f"it:{SECRET}", api_port=free_port(), ready_on_fallback=True
    )


def url(settings: Settings) -> str:
    return f"http://{settings.api_host}:{settings.api_port}"


def test_predict_gives_the_streams_score_and_follows_model_updates(
    services: Endpoints, tmp_path: Path
) -> None:
    settings = api_settings(services, tmp_path)
    register_two_versions(settings)  # version 1 is champion
    items = records(seed=4, count=260)
    history, probe, after_swap = items[:250], items[250], items[251]
    asyncio.run(create_topics(settings))
    api = spawn_api(settings, tmp_path / "api.log")
    store = redis.Redis.from_url(settings.redis_url)

    async def run() -> tuple[dict, ScoredTransaction, dict, list[bytes]]:
        parts = make_parts(settings)
        async with (
            running_worker(settings, parts),
            Reader(settings, SCORED.name) as scored,
            Reader(settings, LABELS.name) as labels,
            httpx.AsyncClient(base_url=url(settings), headers=KEY) as client,
        ):
            await send(settings, TRANSACTIONS.name, history)
            await scored.read(len(history))
            marks = f"{settings.redis_prefix('features')}:mark:tx:*"
            while len(list(store.scan_iter(marks, count=1000))) < len(history):
                await asyncio.sleep(0.05)  # the last batch's state is stored after its output
            answer = (await client.post("/predict", content=probe[1], headers=JSON)).json()
            await send(settings, TRANSACTIONS.name, [probe])
            (streamed,) = [decode(ScoredTransaction, raw) for raw in await scored.read(1)]

            MlflowClient(settings.mlflow_tracking_uri).set_registered_model_alias(
                settings.model_name, CHAMPION, "2"
            )
            update = ModelUpdate(
                model_name=settings.model_name, version="2", alias=CHAMPION, metrics={},
                previous_version="1", updated_at=streamed.scored_time,
            )  # fmt: skip
            await send(settings, MODEL_UPDATES.name, [(b"m", encode(update))])
            deadline = time.monotonic() + 60
            while (await client.get("/model")).json()["version"] != "2":
                assert time.monotonic() < deadline, "the API did not swap to version 2"
                await asyncio.sleep(0.2)
            swapped = (await client.post("/predict", content=after_swap[1], headers=JSON)).json()
            label = {"transaction_id": streamed.transaction.transaction_id, "is_fraud": True,
                     "labelled_at": "2026-03-09T00:00:00Z"}  # fmt: skip
            assert (await client.post("/labels", json=label)).status_code == 202
            return answer, streamed, swapped, await labels.read(1)

    try:
        answer, streamed, swapped, labelled = asyncio.run(run())
    finally:
        api.terminate()
        api.wait(timeout=30)
        store.close()

    assert answer["transaction"]["transaction_id"] == streamed.transaction.transaction_id
    assert answer["features"]["card_tx_count_30d"] > 1  # the card has a history
    assert answer["features"] == streamed.features
    assert answer["fraud_probability"] == streamed.fraud_probability
    assert (answer["decision"], answer["model_version"]) == (streamed.decision, "1")
    assert answer["reasons"] == [r.model_dump() for r in streamed.reasons]
    assert swapped["model_version"] == "2"
    assert decode(Label, labelled[0]).transaction_id == streamed.transaction.transaction_id


@pytest.fixture(scope="module")
def running_api(services: Endpoints, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp_path = tmp_path_factory.mktemp("api")
    settings = api_settings(services, tmp_path)
    asyncio.run(create_topics(settings))
    api = spawn_api(settings, tmp_path / "api.log")
    try:
        yield url(settings)
    finally:
        api.terminate()
        api.wait(timeout=30)


# the seed with which the fuzz found five disagreements between the document and the server
FUZZ_SEED = "249684020320772303287893695091637364584"


def test_the_openapi_document_states_what_the_server_enforces(running_api: str) -> None:
    """Every schemathesis check (``--checks all``): a request valid by the document is
    accepted, one invalid by it is refused, every answer matches its documented schema and
    status, a call without the key is refused, and the stateful links hold. Date-times come
    from the last 30 days (``fuzz_hooks``: the event-time window the document states in
    words)."""
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "tests.integration.fuzz_hooks"}
    fuzz = subprocess.run(
        [sys.executable, "-m", "schemathesis.cli", "run", f"{running_api}/openapi.json",
         "--checks", "all", "--max-examples", "60", "--seed", FUZZ_SEED,
         "-H", f"X-API-Key: {SECRET}", "--no-color"],
        capture_output=True, text=True, timeout=600, check=False, env=env, cwd=ROOT,
    )  # fmt: skip

    assert fuzz.returncode == 0, fuzz.stdout[-6000:] + fuzz.stderr[-2000:]
    assert " passed" in fuzz.stdout


def test_no_generated_input_makes_the_api_fail(running_api: str) -> None:
    """Schemathesis generates bodies, headers and parameters from the OpenAPI document (with
    the key, without, with a wrong one); nothing may answer 5xx or echo a card number."""
    schema = schemathesis.openapi.from_url(f"{running_api}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} >= {"/predict", "/predict/batch", "/labels", "/model"}
    seen: Counter[tuple[str, int]] = Counter()
    for operation in operations:

        @given(case=operation.as_strategy())
        @hypothesis_settings(
            max_examples=60, deadline=None, database=None,
            suppress_health_check=list(HealthCheck),
        )  # fmt: skip
        def no_server_error(case: schemathesis.Case) -> None:
            for headers in (KEY, {}, {"X-API-Key": "not-a-key-" + uuid.uuid4().hex}):
                response = case.call(headers=headers)
                seen[case.path, response.status_code] += 1
                assert response.status_code < 500, (case.method, case.path, response.text[:500])
                assert b"4111111111111111" not in response.content

        no_server_error()

    # the fuzz reached the scoring path and the key check (requests the document calls
    # invalid are the --checks all run's: it asserts each is refused)
    assert seen["/predict", 200] and seen["/predict", 401]
    assert seen["/predict/batch", 200] and seen["/labels", 202]
