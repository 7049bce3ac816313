"""The scoring path from raw messages to scored transactions and dead letters, no broker."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime

import numpy as np

from schemas.codec import decode, encode
from schemas.events import DeadLetter
from schemas.scored import ScoredTransaction
from scoring.decision import Thresholds
from scoring.features import FEATURE_NAMES, FeatureEngine, InMemoryFeatureStore
from scoring.features.store import Snapshot
from scoring.pipeline import BatchResult, InboundMessage, ScoringPipeline
from scoring.serving import RulesFallback, ScoreBatch

NOW = datetime(2026, 3, 1, 12, 0, 5, tzinfo=UTC)


def message(offset: int, **fields: object) -> InboundMessage:
    body = {
        "transaction_id": f"tx-{offset}",
        "event_time": "2026-03-01T12:00:00Z",
        "card_id": "card-1",
        "terminal_id": "term-1",
        "amount": 10.0 + offset,
        **fields,
    }
    return InboundMessage(json.dumps(body).encode(), "transactions", 3, offset, NOW)


def pipeline(scorer: object = None) -> ScoringPipeline:
    chosen = scorer or RulesFallback()
    return ScoringPipeline(
        FeatureEngine(InMemoryFeatureStore()), lambda: chosen, Thresholds(0.3, 0.9), lambda: NOW
    )


def test_valid_messages_are_scored_in_order_and_bad_ones_become_dead_letters() -> None:
    batch = [
        message(0),
        InboundMessage(b"{not json", "transactions", 3, 1, NOW),
        message(2, card_id="4111111111111111"),
        message(3, amount=-5),
        message(4),
    ]

    result = pipeline().score_batch(batch)

    assert [s.transaction.transaction_id for s in result.scored] == ["tx-0", "tx-4"]
    assert [(d.origin_offset, d.error.split(":")[0]) for d in result.dead_letters] == [
        (1, "invalid JSON"),
        (2, "card_id"),
        (3, "amount"),
    ]
    assert all(
        d.origin_topic == "transactions" and d.origin_partition == 3 for d in result.dead_letters
    )
    assert b"4111111111111111" not in encode(result.dead_letters[1])
    assert b"************1111" in decode(DeadLetter, encode(result.dead_letters[1])).raw


def test_scored_output_carries_model_features_and_times_and_round_trips() -> None:
    (scored,) = pipeline().score_batch([message(0)]).scored

    assert (scored.model_name, scored.model_version, scored.fallback) == ("rules", "fallback", True)
    assert scored.decision == "approve" and scored.fraud_probability == 0.01
    assert scored.features["amount"] == 10.0 and len(scored.features) == len(FEATURE_NAMES)
    assert (scored.ingest_time, scored.scored_time) == (NOW, NOW)
    assert decode(ScoredTransaction, encode(scored)) == scored


class NaNModel:
    name, version, fallback, thresholds = "broken", "9", False, None

    def score(self, rows: np.ndarray) -> ScoreBatch:
        return ScoreBatch(np.full(len(rows), np.nan), [[] for _ in rows])


def test_a_model_answering_nan_is_replaced_by_the_rules_for_that_batch() -> None:
    result = pipeline(NaNModel()).score_batch([message(0), message(1)])

    assert {(s.model_name, s.fallback) for s in result.scored} == {("rules", True)}


def test_a_batch_of_only_bad_messages_scores_nothing_and_loses_nothing() -> None:
    result = pipeline().score_batch([InboundMessage(b"", "transactions", 0, 7, NOW)])

    assert (len(result.scored), len(result.dead_letters)) == (0, 1)
    assert result.dead_letters[0].error.startswith("invalid JSON")


def test_each_scored_transaction_keeps_its_score_for_the_labels_agent() -> None:
    from scoring.pipeline import scores_of

    chosen = pipeline()
    chosen.score_batch([message(0), message(1)])

    assert scores_of(chosen.engine.store, ["tx-0", "tx-1", "tx-9"]) == {
        "tx-0": (0.01, "fallback"),
        "tx-1": (0.01, "fallback"),
    }


class _Unreachable(InMemoryFeatureStore):
    """A store that answers the way the Redis store does while Redis is away."""

    def read(self, *args: object, **kwargs: object) -> Snapshot:
        snapshot = super().read(*args, **kwargs)  # type: ignore[arg-type]
        return dataclasses.replace(snapshot, terminal_sums={}, complete=False)


class _Confident:
    name, version, fallback = "m", "7", False
    thresholds: Thresholds | None = None

    def score(self, rows: np.ndarray) -> ScoreBatch:
        return ScoreBatch(np.full(len(rows), 0.95), [[] for _ in rows])


def test_without_the_feature_store_the_rules_decide_and_the_output_says_degraded() -> None:
    up = ScoringPipeline(
        FeatureEngine(InMemoryFeatureStore()), _Confident, Thresholds(0.3, 0.9), lambda: NOW
    ).score_batch([message(0), message(1)])
    away = ScoringPipeline(
        FeatureEngine(_Unreachable()), _Confident, Thresholds(0.3, 0.9), lambda: NOW
    ).score_batch([message(0), message(1)])

    def flags(result: BatchResult) -> list[tuple[str, bool, bool]]:
        return [(s.model_version, s.fallback, s.degraded) for s in result.scored]

    assert flags(up) == [("7", False, False)] * 2
    assert flags(away) == [("fallback", True, True)] * 2
    assert [s.decision for s in away.scored] == ["approve", "approve"]  # the rules' 0.01
    assert away.writes.marks.keys() == up.writes.marks.keys()  # the state changes still wait


class _WithItsThresholds(_Confident):
    thresholds = Thresholds(0.96, 0.99)  # came with the version: 0.95 is approved here


def test_a_model_decides_with_the_thresholds_that_came_with_it() -> None:
    configured = Thresholds(0.3, 0.9)
    own = ScoringPipeline(
        FeatureEngine(InMemoryFeatureStore()), _WithItsThresholds, configured, lambda: NOW
    )
    plain = ScoringPipeline(
        FeatureEngine(InMemoryFeatureStore()), _Confident, configured, lambda: NOW
    )

    assert [s.decision for s in own.score_batch([message(0)]).scored] == ["approve"]
    assert [s.decision for s in plain.score_batch([message(0)]).scored] == ["decline"]
