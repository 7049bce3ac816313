"""From a batch of raw ``transactions`` messages to scored transactions and dead letters.

Everything here is per batch except what cannot be: decoding each message. No Kafka, no
Faust: the stream agent hands in raw messages with their origin and sends what comes out,
so the whole path is tested without a broker.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import numpy as np

from schemas.codec import DecodeError, decode
from schemas.events import DeadLetter
from schemas.pan import redact_pans
from schemas.scored import Decision, ScoredTransaction
from schemas.transaction import Transaction
from scoring.decision import Thresholds
from scoring.features import FEATURE_NAMES, FeatureEngine, FeatureInput
from scoring.features.store import FeatureStore, StateWrites
from scoring.serving import RulesFallback, Scorer

Clock = Callable[[], datetime]


@dataclasses.dataclass(frozen=True)
class InboundMessage:
    value: bytes
    topic: str
    partition: int
    offset: int
    ingest_time: datetime  # when the broker took it (the Kafka message timestamp)


@dataclasses.dataclass(frozen=True)
class BatchResult:
    scored: list[ScoredTransaction]
    dead_letters: list[DeadLetter]
    scorer: Scorer  # the model that scored this batch (one batch, one model)


def utc_now() -> datetime:
    return datetime.now(UTC)


def score_key(transaction_id: str) -> str:
    """The feature store mark holding ``"<probability>|<model version>"`` of a transaction."""
    return f"score:{transaction_id}"


def scores_of(store: FeatureStore, transaction_ids: Sequence[str]) -> dict[str, tuple[float, str]]:
    """The probability and model version each transaction was scored with, where known."""
    marks = store.read([score_key(i) for i in transaction_ids], (), ()).marks
    found = {}
    for transaction_id in transaction_ids:
        value = marks.get(score_key(transaction_id))
        if value is not None:
            probability, version = value.split("|", 1)
            found[transaction_id] = (float(probability), version)
    return found


class ScoringPipeline:
    def __init__(
        self,
        engine: FeatureEngine,
        current_scorer: Callable[[], Scorer],
        thresholds: Thresholds,
        clock: Clock = utc_now,
    ) -> None:
        self.engine = engine
        self.current_scorer = current_scorer  # read once per batch: a swap never splits one
        self.thresholds = thresholds
        self.clock = clock

    def score_batch(self, messages: Sequence[InboundMessage]) -> BatchResult:
        transactions: list[Transaction] = []
        accepted: list[InboundMessage] = []
        dead: list[DeadLetter] = []
        for message in messages:
            try:
                transactions.append(decode(Transaction, message.value))
                accepted.append(message)
            except DecodeError as error:
                dead.append(self.dead_letter(message, str(error)))
        scorer = self.current_scorer()
        if not transactions:
            return BatchResult([], dead, scorer)
        rows = self.engine.process([FeatureInput.of(t) for t in transactions])
        scores = scorer.score(rows)
        if not np.isfinite(scores.probabilities).all():
            # a model that answers NaN must not decide: the rules do, and say so
            scorer = RulesFallback()
            scores = scorer.score(rows)
        decisions = self.thresholds.decide(scores.probabilities)
        scored_time = self.clock()
        scored = [
            ScoredTransaction.model_construct(  # every part is already validated or ours
                transaction=transaction,
                fraud_probability=float(probability),
                decision=Decision(decision),
                reasons=reasons,
                model_name=scorer.name,
                model_version=scorer.version,
                fallback=scorer.fallback,
                features=dict(zip(FEATURE_NAMES, row.tolist(), strict=True)),
                ingest_time=message.ingest_time,
                scored_time=scored_time,
                challenger_probability=None,
                challenger_version=None,
                schema_version=1,
            )
            for transaction, message, probability, decision, reasons, row in zip(
                transactions,
                accepted,
                scores.probabilities,
                decisions,
                scores.reasons,
                rows,
                strict=True,
            )
        ]
        # what each transaction scored, so the labels agent can measure the model it serves
        self.engine.store.apply(
            StateWrites(
                marks={
                    score_key(
                        s.transaction.transaction_id
                    ): f"{s.fraud_probability}|{s.model_version}"
                    for s in scored
                }
            )
        )
        return BatchResult(scored, dead, scorer)

    def dead_letter(self, message: InboundMessage, error: str) -> DeadLetter:
        return DeadLetter(
            raw=redact_pans(message.value[:65_536]),  # huge payloads are cut, PANs masked
            error=error,
            origin_topic=message.topic,
            origin_partition=message.partition,
            origin_offset=message.offset,
            failed_time=self.clock(),
        )
