"""From a batch of raw ``transactions`` messages to scored transactions and dead letters.

Everything here is per batch except what cannot be: decoding each message. No Kafka, no
Faust: the stream agent hands in raw messages with their origin and sends what comes out,
so the whole path is tested without a broker.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import numpy as np
import orjson

from schemas.codec import DecodeError, decode
from schemas.events import DeadLetter, DeadLetterReason
from schemas.scored import ScoredTransaction
from schemas.transaction import Transaction
from scoring.challenger import OnlineChallenger
from scoring.decision import ReasonCode, Thresholds
from scoring.event_time import EventTimeRules, Judgement, Timeliness, Verdict
from scoring.features import FEATURE_NAMES, FeatureEngine, FeatureInput
from scoring.features.store import FeatureStore, StateWrites
from scoring.serving import RulesFallback, Scorer

Clock = Callable[[], datetime]
INVALID: DeadLetterReason = "invalid"  # a dead letter's reason: not decoded or not valid
REFUSED_AS: dict[Verdict, DeadLetterReason] = {Verdict.FUTURE: "future", Verdict.TOO_OLD: "too_old"}


logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class InboundMessage:
    value: bytes
    topic: str
    partition: int
    offset: int
    ingest_time: datetime  # when the broker took it (the Kafka message timestamp)


@dataclasses.dataclass(frozen=True)
class DecodedBatch:
    transactions: list[Transaction]
    messages: list[InboundMessage]  # the accepted ones, aligned with ``transactions``
    dead_letters: list[DeadLetter]
    late: list[bool] | None = None  # aligned with ``transactions``: scored, state unchanged

    @functools.cached_property
    def inputs(self) -> list[FeatureInput]:
        return [FeatureInput.of(t) for t in self.transactions]


@dataclasses.dataclass(frozen=True)
class BatchResult:
    """A scored batch, column by column: building a pydantic object per transaction cost more
    than scoring it, so the output JSON is built straight from these (``encoded``) and the
    objects only when someone asks (``scored``)."""

    transactions: list[Transaction]
    messages: list[InboundMessage]  # the accepted ones, aligned with ``transactions``
    rows: np.ndarray  # features, ``FEATURE_NAMES`` order
    probabilities: np.ndarray
    decisions: np.ndarray  # of ``Decision`` values
    reasons: list[list[ReasonCode]]
    scorer: Scorer  # the model that scored this batch (one batch, one model)
    scored_time: datetime
    dead_letters: list[DeadLetter]
    writes: StateWrites  # the batch's feature-state changes and score marks, until saved
    challenger_probabilities: np.ndarray | None = None  # the online challenger's, in shadow
    challenger_version: str | None = None
    degraded: bool = False  # the feature store was unreachable: features from memory, rules
    late: list[bool] | None = None  # aligned with ``transactions`` (``scoring.event_time``)

    def __len__(self) -> int:
        return len(self.transactions)

    def encoded(self) -> list[tuple[bytes, bytes]]:
        """(key, value) of each ``transactions.scored`` message: the card id and the
        ``ScoredTransaction`` JSON."""
        to_json = Transaction.__pydantic_serializer__.to_json
        scorer, scored_time = self.scorer, self.scored_time
        fallback, degraded = scorer.fallback, self.degraded
        challenger_version = self.challenger_version
        challengers = (
            self.challenger_probabilities.tolist()
            if self.challenger_probabilities is not None
            else [None] * len(self.transactions)
        )
        lates = self.late or [False] * len(self.transactions)
        return [
            (
                transaction.card_id.encode(),
                orjson.dumps(
                    {
                        "transaction": orjson.Fragment(to_json(transaction)),
                        "fraud_probability": probability,
                        "decision": decision,
                        "reasons": reasons,
                        "model_name": scorer.name,
                        "model_version": scorer.version,
                        "fallback": fallback,
                        "degraded": degraded,
                        "features": dict(zip(FEATURE_NAMES, row, strict=True)),
                        "ingest_time": message.ingest_time,
                        "scored_time": scored_time,
                        "challenger_probability": challenger,
                        "challenger_version": challenger_version,
                        "late": late,
                        "schema_version": 1,
                    },
                    option=orjson.OPT_UTC_Z,
                ),
            )
            for transaction, message, probability, decision, reasons, row, challenger, late in zip(
                self.transactions,
                self.messages,
                self.probabilities.tolist(),
                self.decisions.tolist(),
                self.reasons,
                self.rows.tolist(),
                challengers,
                lates,
                strict=True,
            )
        ]

    @functools.cached_property
    def scored(self) -> list[ScoredTransaction]:
        """The outputs as validated objects, read back from exactly the bytes ``encoded``
        sends (slow: for tests and small batches)."""
        return [ScoredTransaction.model_validate_json(value) for _, value in self.encoded()]


def shadow_scores(challenger: OnlineChallenger | None, rows: np.ndarray) -> np.ndarray | None:
    """The challenger's probabilities; ``None`` (and a warning) if it cannot give them: a
    shadow model never stops the champion from deciding."""
    if challenger is None:
        return None
    try:
        scores = np.clip(challenger.score(rows), 0.0, 1.0)
    except Exception as error:  # a river failure must not cost a decision
        logger.warning("the challenger could not score a batch: %s", error)
        return None
    return scores if np.isfinite(scores).all() else None


def utc_now() -> datetime:
    return datetime.now(UTC)


def scores_of(store: FeatureStore, transaction_ids: Sequence[str]) -> dict[str, tuple[float, str]]:
    """The probability and model version each transaction was first scored with, where known
    (kept with the transaction's mark: ``[terminal, day, probability, version]``)."""
    marks = store.read([f"tx:{i}" for i in transaction_ids], ()).marks
    found = {}
    for transaction_id in transaction_ids:
        value = marks.get(f"tx:{transaction_id}")
        if value is not None:
            mark = orjson.loads(value)
            if len(mark) == 4:
                found[transaction_id] = (float(mark[2]), str(mark[3]))
    return found


class ScoringPipeline:
    def __init__(
        self,
        engine: FeatureEngine,
        current_scorer: Callable[[], Scorer],
        thresholds: Thresholds,
        clock: Clock = utc_now,
        current_challenger: Callable[[], OnlineChallenger | None] = lambda: None,
        timeliness: Timeliness | None = None,
    ) -> None:
        self.engine = engine
        self.timeliness = timeliness or Timeliness(EventTimeRules())
        self.current_challenger = current_challenger
        self.current_scorer = current_scorer  # read once per batch: a swap never splits one
        self.thresholds = thresholds
        self.clock = clock

    def decode(self, messages: Sequence[InboundMessage]) -> DecodedBatch:
        """Validate each message and judge its event time: transactions to score (some
        flagged late), the rest dead letters with their reason."""
        transactions: list[Transaction] = []
        accepted: list[InboundMessage] = []
        late: list[bool] = []
        dead: list[DeadLetter] = []
        for message in messages:
            try:
                transaction = decode(Transaction, message.value)
            except DecodeError as error:
                dead.append(self.dead_letter(message, str(error)))
                continue
            judgement = self.judge(transaction, message)
            if judgement.kind.refused:
                reason = REFUSED_AS[judgement.kind]
                dead.append(self.dead_letter(message, judgement.problem, reason))
                continue
            transactions.append(transaction)
            accepted.append(message)
            late.append(judgement.kind is Verdict.LATE)
        return DecodedBatch(transactions, accepted, dead, late)

    def judge(self, transaction: Transaction, message: InboundMessage) -> Judgement:
        """The event-time verdict on ``transaction``, received as ``message`` (its channel
        is the message's topic and partition)."""
        return self.timeliness.judge(
            (message.topic, message.partition),
            transaction.event_time.timestamp(),
            message.ingest_time.timestamp(),
        )

    def prepare(self, messages: Sequence[InboundMessage]) -> BatchResult:
        """Score a batch; its state changes wait in ``writes`` for ``save``, so the caller
        can store them while it sends the outputs."""
        return self.score(self.decode(messages))

    def reads_unsaved(self, batch: DecodedBatch, unsaved: BatchResult) -> bool:
        """Whether scoring ``batch`` reads feature state that ``unsaved`` changes and has not
        stored yet: then its ``save`` must finish first (``FeatureEngine.depends_on``)."""
        return self.engine.depends_on(unsaved.writes, batch.inputs)

    def score_transactions(
        self,
        transactions: list[Transaction],
        messages: list[InboundMessage],
        dead: list[DeadLetter] | None = None,
        late: list[bool] | None = None,
    ) -> BatchResult:
        """Score validated transactions (``messages``: where each came from and when; their
        event times judged already); nothing is stored until ``save``."""
        return self.score(DecodedBatch(transactions, messages, dead or [], late))

    def score(self, batch: DecodedBatch) -> BatchResult:
        """Score a decoded batch; nothing is stored until ``save``."""
        transactions, messages, dead = batch.transactions, batch.messages, batch.dead_letters
        scorer = self.current_scorer()
        rows, writes = self.engine.compute(batch.inputs, batch.late)
        if not transactions:  # models refuse empty input
            nothing = np.zeros(0)
            return BatchResult(
                [], [], rows, nothing, nothing, [], scorer, self.clock(), dead, writes
            )
        if writes.from_memory:
            # the feature store is away: no terminal counters, only the card histories this
            # process held; the documented rules decide on that, not a model trained on more
            scorer = RulesFallback()
        scores = scorer.score(rows)
        if not np.isfinite(scores.probabilities).all():
            # a model that answers NaN must not decide: the rules do, and say so
            scorer = RulesFallback()
            scores = scorer.score(rows)
        # with each new transaction's mark, its score: the labels agent measures the model
        version, marks = scorer.version, writes.marks
        for transaction, probability in zip(
            transactions, scores.probabilities.tolist(), strict=True
        ):
            key = f"tx:{transaction.transaction_id}"
            if key in marks:  # not a replay: the first score is the one that counts
                marks[key] = f"{marks[key][:-1]},{probability},{orjson.dumps(version).decode()}]"
        challenger = self.current_challenger()
        return BatchResult(
            transactions,
            messages,
            rows,
            scores.probabilities,
            (scorer.thresholds or self.thresholds).decide(scores.probabilities),
            scores.reasons,
            scorer,
            self.clock(),
            dead,
            writes,
            shadow_scores(challenger, rows),
            challenger.version if challenger is not None else None,
            degraded=writes.from_memory,
            late=batch.late,
        )

    def save(self, result: BatchResult) -> None:
        """Store the batch's feature state and score marks, all or nothing."""
        self.engine.save(result.writes)

    def score_batch(self, messages: Sequence[InboundMessage]) -> BatchResult:
        """``prepare`` and ``save`` in one call."""
        result = self.prepare(messages)
        self.save(result)
        return result

    def dead_letter(
        self, message: InboundMessage, error: str, reason: DeadLetterReason = INVALID
    ) -> DeadLetter:
        return DeadLetter.of(
            message.value, error, message.topic, message.partition, message.offset,
            self.clock(), reason,
        )  # fmt: skip
