"""The REST facade over an in-memory feature store: auth, validation, idempotency, limits and
the same score as the pipeline. (Over real Redis and Kafka: tests/integration/test_api.py.)"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api import ApiConfig, ApiParts, create_app, parse_keys
from api.idempotency import InMemoryIdempotency
from schemas.codec import decode
from schemas.events import Label
from schemas.scored import ScoredTransaction
from schemas.transaction import Transaction
from scoring.decision import Thresholds
from scoring.features import FeatureEngine, FeatureInput, InMemoryFeatureStore
from scoring.model_holder import ModelHolder
from scoring.pipeline import InboundMessage, ScoringPipeline
from scoring.serving import RulesFallback

KEYS = parse_keys("checkout:checkout-secret-0001:predict,team:fraud-team-secret-02")
PREDICT_KEY = {"X-API-Key": "checkout-secret-0001"}
ALL_KEY = {"X-API-Key": "fraud-team-secret-02"}
T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC).timestamp()


def body(tx: str = "tx-new", amount: float = 40.0, **changes: Any) -> dict[str, Any]:
    return {
        "transaction_id": tx,
        "event_time": datetime.fromtimestamp(T0 + 600, UTC).isoformat(),
        "card_id": "card-1",
        "terminal_id": "term-A",
        "amount": amount,
        **changes,
    }


class CopyingStore:
    def __init__(self, store: InMemoryFeatureStore) -> None:
        self.store = store

    def read(self, *args: Any) -> Any:
        return copy.deepcopy(self.store.read(*args))

    def apply(self, writes: Any) -> None:
        raise AssertionError("the API must not write feature state")

    def forget(self) -> None:
        pass

    def stage(self, writes: Any) -> None:
        pass

    def reads_current(self, card_id: str) -> bool:
        return False


class Harness:
    def __init__(self, **config: Any) -> None:
        self.store = InMemoryFeatureStore()
        # history: the card paid 10 and 20 earlier that day
        FeatureEngine(self.store).process([
            FeatureInput("h1", T0, "card-1", "term-A", 10.0),
            FeatureInput("h2", T0 + 60, "card-1", "term-A", 20.0),
        ])  # fmt: skip
        # the API reads state like Redis without a card cache: copies, never the store's own
        engine = FeatureEngine(CopyingStore(self.store))
        self.pipeline = ScoringPipeline(engine, RulesFallback, Thresholds(0.3, 0.9))
        self.published: list[tuple[str, bytes, bytes]] = []
        self.ready = {"redis": True, "kafka": True}
        self.publish_error: Exception | None = None

        async def publish(topic: str, key: bytes, value: bytes) -> None:
            if self.publish_error is not None:
                raise self.publish_error
            self.published.append((topic, key, value))

        def check(name: str) -> Any:
            async def answer() -> bool:
                return self.ready[name]

            return answer

        parts = ApiParts(
            pipeline=self.pipeline,
            models=ModelHolder(lambda version: RulesFallback(), cache_file=_nowhere()),
            publish=publish,
            idempotency=InMemoryIdempotency(),
            checks={name: check(name) for name in self.ready},
        )
        self.client = TestClient(create_app(ApiConfig(keys=KEYS, **config), parts))


def paths_answered_directly(app: Any) -> list[str]:
    """The paths of the /predict calls ``app`` answers before Starlette's stack, as they come."""
    paths: list[str] = []
    answer_directly = app.direct[("POST", "/predict")]

    async def counted(scope: Any, receive: Any, send: Any) -> None:
        paths.append(scope["path"])
        await answer_directly(scope, receive, send)

    app.direct[("POST", "/predict")] = counted
    return paths


def _nowhere() -> Any:
    from pathlib import Path

    return Path("/nonexistent/model.pkl")


def test_predict_answers_what_the_pipeline_answers_for_the_same_state() -> None:
    harness = Harness()
    response = harness.client.post("/predict", json=body(), headers=PREDICT_KEY)

    assert response.status_code == 200
    scored = decode(ScoredTransaction, response.content)
    message = InboundMessage(json.dumps(body()).encode(), "x", 0, 0, scored.ingest_time)
    expected = harness.pipeline.prepare([message]).scored[0]
    assert (scored.fraud_probability, scored.decision) == (
        expected.fraud_probability,
        expected.decision,
    )
    assert scored.features == expected.features
    assert scored.features["card_tx_count_1d"] == 3  # the history and the transaction itself
    assert scored.features["card_amount_sum_1d"] == 70.0
    assert harness.published == []  # recording is off by default
    assert set(harness.store.cards["card-1"]["id"]) == {"h1", "h2"}  # the API never writes


def test_recording_publishes_the_transaction_to_the_stream() -> None:
    harness = Harness(record=True)
    harness.client.post("/predict", json=body(), headers=PREDICT_KEY)

    ((topic, key, value),) = harness.published
    assert (topic, key) == ("transactions", b"card-1")
    assert decode(Transaction, value) == Transaction.model_validate(body())


def test_keys_are_required_and_scoped() -> None:
    client = Harness().client
    label = {"transaction_id": "h1", "is_fraud": True, "labelled_at": "2026-03-09T00:00:00Z"}

    assert client.post("/predict", json=body()).status_code == 401
    assert client.post("/predict", json=body(), headers={"X-API-Key": "nope"}).status_code == 401
    assert client.post("/labels", json=label, headers=PREDICT_KEY).status_code == 403
    assert client.post("/labels", json=label, headers=ALL_KEY).status_code == 202
    assert client.get("/health").json() == {"status": "ok"}


def test_predict_documents_the_key_and_headers_it_reads_itself() -> None:
    """/predict reads its key and Idempotency-Key without FastAPI's dependencies, so its
    OpenAPI entry is written by hand: it must say what /predict/batch says."""
    document = Harness().client.app.openapi()
    predict = document["paths"]["/predict"]["post"]
    batch = document["paths"]["/predict/batch"]["post"]

    assert predict["security"] == batch["security"] == [{"APIKeyHeader": []}]
    assert predict["parameters"] == batch["parameters"]
    assert [p["name"] for p in predict["parameters"]] == ["idempotency-key"]
    assert document["components"]["securitySchemes"]["APIKeyHeader"]["name"] == "X-API-Key"
    assert predict["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Transaction"
    }


def test_labels_go_to_the_labels_topic_keyed_by_transaction() -> None:
    harness = Harness()
    label = {"transaction_id": "h1", "is_fraud": True, "labelled_at": "2026-03-09T00:00:00Z"}

    response = harness.client.post("/labels", json=label, headers=ALL_KEY)

    assert response.json() == {"accepted": True, "transaction_id": "h1"}
    ((topic, key, value),) = harness.published
    assert (topic, key, decode(Label, value).is_fraud) == ("labels", b"h1", True)


@pytest.mark.parametrize(
    "changes, field, words",
    [
        ({"amount": -3}, "amount", "greater than or equal to 0"),
        ({"card_id": "4111 1111 1111 1111"}, "card_id", "card number"),
        ({"currency": "EURO"}, "currency", "ISO 4217"),
        ({"event_time": "2026-03-02T10:10:00"}, "event_time", "timezone"),
        ({"amount": None}, "amount", "must be a number"),
        ({"amount": "12.5"}, "amount", "must be a number"),
        ({"amount": True}, "amount", "must be a number"),
        ({"event_time": 1772366400}, "event_time", "ISO 8601"),
    ],
)
def test_bad_input_is_a_422_naming_the_field_without_echoing_it(
    changes: dict[str, Any], field: str, words: str
) -> None:
    response = Harness().client.post("/predict", json=body(**changes), headers=PREDICT_KEY)

    assert response.status_code == 422
    (problem,) = response.json()["detail"]
    assert problem["field"] == field and words in problem["problem"]
    assert b"4111" not in response.content


def test_an_event_time_ahead_of_the_clock_is_a_422_naming_event_time() -> None:
    client = Harness().client
    ahead = (datetime.now(UTC) + timedelta(hours=1)).isoformat()

    one = client.post("/predict", json=body(event_time=ahead), headers=PREDICT_KEY)
    batch = client.post(
        "/predict/batch",
        json={"transactions": [body("ok"), body("ahead", event_time=ahead)]},
        headers=PREDICT_KEY,
    )
    ancient = client.post(
        "/predict", json=body(event_time="1970-01-01T00:00:00Z"), headers=PREDICT_KEY
    )

    assert one.status_code == batch.status_code == ancient.status_code == 422
    assert [p["field"] for p in one.json()["detail"]] == ["event_time"]
    assert "FRAUD_MAX_FUTURE_SKEW" in one.json()["detail"][0]["problem"]
    assert [p["field"] for p in batch.json()["detail"]] == ["transactions.1.event_time"]
    assert "FRAUD_MAX_EVENT_AGE_DAYS" in ancient.json()["detail"][0]["problem"]


def test_a_zero_value_authorisation_is_scored() -> None:
    response = Harness().client.post("/predict", json=body(amount=0), headers=PREDICT_KEY)

    assert response.status_code == 200
    assert response.json()["transaction"]["amount"] == 0.0


def test_the_same_idempotency_key_replays_and_another_body_conflicts() -> None:
    harness = Harness(record=True)
    headers = {**PREDICT_KEY, "Idempotency-Key": "order-77"}

    first = harness.client.post("/predict", json=body(), headers=headers)
    again = harness.client.post("/predict", json=body(), headers=headers)
    other = harness.client.post("/predict", json=body(amount=41.0), headers=headers)

    assert first.status_code == again.status_code == 200
    assert again.content == first.content  # same scored_time: the stored answer
    assert again.headers["Idempotent-Replayed"] == "true"
    assert other.status_code == 409
    assert len(harness.published) == 1  # the replay was not recorded twice


def test_batches_keep_order_and_have_a_size_limit() -> None:
    client = Harness(max_batch=2).client
    two = {"transactions": [body("a", 5.0), body("b", 500.0)]}

    response = client.post("/predict/batch", json=two, headers=PREDICT_KEY)
    too_many = client.post(
        "/predict/batch", json={"transactions": [body(str(i)) for i in range(3)]},
        headers=PREDICT_KEY,
    )  # fmt: skip

    results = response.json()["results"]
    assert [r["transaction"]["transaction_id"] for r in results] == ["a", "b"]
    assert too_many.status_code == 422
    assert too_many.json()["detail"][0]["field"] == "transactions"


def test_large_bodies_and_bursts_are_refused() -> None:
    client = Harness(max_body_bytes=300, rate_per_key=3).client
    large = body(merchant_category="x" * 32, customer_id="c" * 64, terminal_id="t" * 64)

    assert client.post("/predict", json=large, headers=PREDICT_KEY).status_code == 413
    statuses = [client.get("/model", headers=PREDICT_KEY).status_code for _ in range(6)]
    assert statuses[:3] == [200, 200, 200] and 429 in statuses[3:]


def test_model_ready_and_cors() -> None:
    harness = Harness()
    model = harness.client.get("/model", headers=PREDICT_KEY).json()
    assert (model["name"], model["version"], model["fallback"]) == ("rules", "fallback", True)
    # the rules carry no thresholds of their own: the configured ones decide, and say so
    assert model["thresholds"] == {"review": 0.3, "decline": 0.9}
    assert model["thresholds_source"] == "configured"

    on_rules = harness.client.get("/ready")  # answers, but with the rules: not ready
    assert on_rules.status_code == 503 and on_rules.json()["model_loaded"] is False
    accepting = Harness(ready_on_fallback=True)  # where the rules alone are declared enough
    assert accepting.client.get("/ready").status_code == 200
    accepting.ready["kafka"] = False
    not_ready = accepting.client.get("/ready")
    assert not_ready.status_code == 503 and not_ready.json()["kafka"] is False

    preflight = harness.client.options(
        "/predict",
        headers={"Origin": "https://shop.example", "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in preflight.headers  # closed by default


def test_calls_in_the_same_turn_are_scored_together_one_card_per_group() -> None:
    import asyncio

    from api.coalescer import Coalescer as _Coalescer

    groups: list[list[str]] = []

    def score(transactions: list[Transaction], late: list[bool]) -> list[bytes]:
        assert late == [False] * len(transactions)
        groups.append([t.transaction_id for t in transactions])
        if "boom" in groups[-1]:
            raise RuntimeError("redis went away")
        return [f"scored {t.transaction_id}".encode() for t in transactions]

    together = _Coalescer(score, limit=3)
    cards = {"a": "card-1", "b": "card-2", "c": "card-1", "d": "card-3", "e": "card-4"}
    calls = [Transaction.model_validate(body(tx, card_id=card)) for tx, card in cards.items()]

    async def run() -> tuple[list[bytes], bytes, BaseException | bytes]:
        first = await asyncio.gather(*(together(t) for t in calls))
        alone = await together(calls[0])
        failed = await asyncio.gather(
            together(Transaction.model_validate(body("boom"))), return_exceptions=True
        )
        return first, alone, failed[0]

    first, alone, failed = asyncio.run(run())

    assert first == [f"scored {tx}".encode() for tx in cards]  # each caller its own answer
    # one group of at most 3 with card-1 once; the repeat and the overflow go in the next
    assert groups[:2] == [["a", "b", "d"], ["c", "e"]]
    assert alone == b"scored a" and groups[2] == ["a"]
    assert isinstance(failed, RuntimeError)


def test_predict_is_answered_alike_directly_and_through_the_cors_stack() -> None:
    """Without an Origin, /predict is answered before Starlette's stack (``app.direct``); a
    browser's call with CORS open takes the stack. Both give the same answers."""
    harness = Harness(cors_origins=("https://shop.example",), max_body_bytes=300)
    app = harness.client.app
    direct_calls = paths_answered_directly(app)
    browser = {"Origin": "https://shop.example"}
    statuses = []
    cases = [
        (body(), PREDICT_KEY),  # scored
        (body(amount=-5.0), PREDICT_KEY),  # 422
        (body(), {}),  # 401
        (body(customer_id="c" * 64, terminal_id="t" * 64, merchant_category="x" * 32), ALL_KEY),
    ]
    for sent, headers in cases:
        direct = harness.client.post("/predict", json=sent, headers=headers)
        stacked = harness.client.post("/predict", json=sent, headers={**headers, **browser})

        statuses.append(direct.status_code)
        assert direct.status_code == stacked.status_code
        assert direct.headers["content-type"] == stacked.headers["content-type"]
        assert stacked.headers["access-control-allow-origin"] == "https://shop.example"
        assert "access-control-allow-origin" not in direct.headers
        if direct.status_code == 200:
            first, second = (decode(ScoredTransaction, r.content) for r in (direct, stacked))
            assert (first.fraud_probability, first.features) == (
                second.fraud_probability,
                second.features,
            )
        else:
            assert direct.json() == stacked.json()
    assert statuses == [200, 422, 401, 413]
    assert direct_calls == ["/predict"] * len(cases)


def test_direct_predict_counts_its_calls_and_answers_a_failure_with_a_500() -> None:
    harness = Harness()

    def unreachable(*args: Any) -> Any:
        raise ConnectionError("Redis went away")

    harness.client.post("/predict", json=body(), headers=PREDICT_KEY)
    harness.client.post("/predict", json=body(amount="lots"), headers=PREDICT_KEY)
    harness.pipeline.engine.store.read = unreachable  # type: ignore[method-assign]
    failed = harness.client.post("/predict", json=body(), headers=PREDICT_KEY)
    metrics = harness.client.get("/metrics").text

    assert failed.status_code == 500
    assert failed.json() == {"detail": "internal error; the call did not complete"}
    for status in (200, 422, 500):
        expected = f'fraudstream_api_requests_total{{route="/predict",status="{status}"}} 1.0'
        assert expected in metrics
    assert 'fraudstream_api_latency_seconds_count{route="/predict"} 3.0' in metrics


def test_direct_predict_under_a_proxy_prefix_and_a_caller_that_leaves() -> None:
    """Mounted under a prefix (``--root-path``), /predict is still answered directly, the
    other routes through Starlette's; a caller that leaves before its body came is counted
    as 499 and gets nothing."""
    harness = Harness()
    app = harness.client.app
    direct_calls = paths_answered_directly(app)
    proxied = TestClient(app, root_path="/fraud")

    scored = proxied.post("/fraud/predict", json=body(), headers=PREDICT_KEY)
    assert scored.status_code == 200
    assert decode(ScoredTransaction, scored.content).transaction.transaction_id == "tx-new"
    assert proxied.get("/fraud/health").status_code == 200
    assert direct_calls == ["/fraud/predict"]

    sent: list[Any] = []

    async def leaves() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    async def record(message: Any) -> None:
        sent.append(message)

    scope = {
        "type": "http", "method": "POST", "path": "/predict", "root_path": "",
        "headers": [(b"x-api-key", b"checkout-secret-0001")], "query_string": b"",
    }  # fmt: skip
    asyncio.run(app(scope, leaves, record))
    metrics = harness.client.get("/metrics").text

    assert sent == []
    assert 'fraudstream_api_requests_total{route="/predict",status="499"} 1.0' in metrics
    assert 'fraudstream_api_requests_total{route="/predict",status="200"} 1.0' in metrics


def test_every_route_answers_a_failure_as_json_without_echoing_the_call() -> None:
    harness = Harness()
    client = TestClient(harness.client.app, raise_server_exceptions=False)

    def unreachable(*args: Any) -> Any:
        raise ConnectionError("Redis went away")

    harness.pipeline.engine.store.read = unreachable  # type: ignore[method-assign]
    harness.publish_error = ConnectionError("Kafka went away")
    label = {"transaction_id": "h1", "is_fraud": True, "labelled_at": "2026-03-09T00:00:00Z"}
    answers = [
        client.post("/predict", json=body(), headers=PREDICT_KEY),
        client.post("/predict/batch", json={"transactions": [body()]}, headers=PREDICT_KEY),
        client.post("/labels", json=label, headers=ALL_KEY),
    ]
    metrics = client.get("/metrics").text

    assert [answer.status_code for answer in answers] == [500, 500, 500]
    for answer in answers:
        assert answer.headers["content-type"] == "application/json"
        assert answer.json() == {"detail": "internal error; the call did not complete"}
    for route in ("/predict", "/predict/batch", "/labels"):
        assert f'fraudstream_api_requests_total{{route="{route}",status="500"}} 1.0' in metrics


def test_a_browsers_failed_call_keeps_its_cors_headers_and_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    harness = Harness(cors_origins=("https://shop.example",))
    client = TestClient(harness.client.app, raise_server_exceptions=False)

    def unreachable(*args: Any) -> Any:
        raise ConnectionError("Redis went away")

    harness.pipeline.engine.store.read = unreachable  # type: ignore[method-assign]
    browser = {**PREDICT_KEY, "Origin": "https://shop.example"}
    with caplog.at_level(logging.ERROR, logger="api"):
        answers = [
            client.post("/predict", json=body(), headers=browser),
            client.post("/predict/batch", json={"transactions": [body()]}, headers=browser),
        ]

    for answer in answers:
        assert answer.status_code == 500
        assert answer.json() == {"detail": "internal error; the call did not complete"}
        assert answer.headers["access-control-allow-origin"] == "https://shop.example"
    failures = [r for r in caplog.records if r.exc_info and "Redis went away" in str(r.exc_info[1])]
    assert [r.getMessage() for r in failures] == [
        "POST /predict failed",
        "POST /predict/batch failed",
    ]


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ("ops:$(openssl rand -hex 16)", "holds characters a generated key has not"),
        ("ops:short-key", "is shorter than 16 characters"),
        ("ops:0000000000000000000000", "has fewer than 10 distinct characters"),
    ],
)
def test_a_key_that_is_not_a_generated_token_is_refused_by_name(entry: str, problem: str) -> None:
    with pytest.raises(ValueError, match=rf"the API key of 'ops' {problem}"):
        parse_keys(entry)


def test_the_env_template_s_key_command_makes_a_key_the_api_accepts() -> None:
    import re
    import secrets
    from pathlib import Path

    template = (Path(__file__).resolve().parents[2] / ".env.example").read_text()
    assert "openssl rand -hex 16" in template  # as in the template: 16 random bytes, in hex
    generated = f"ops:{secrets.token_hex(16)}"
    assert next(iter(parse_keys(generated).values())).name == "ops"
    assert re.search(r'^#\s+echo "FRAUD_API_KEYS=ops:\$\(openssl rand -hex 16\)" >> \.env$',
                     template, re.M)  # fmt: skip
