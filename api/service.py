"""Scoring for the routes: event-time admission, the coalesced score, the optional record."""

from datetime import UTC, datetime

from api.answers import Answer, field_problem
from api.coalescer import Coalescer
from api.metrics import ApiMetrics
from api.parts import ApiConfig, ApiParts
from schemas.transaction import Transaction
from scoring.event_time import Verdict
from scoring.pipeline import InboundMessage


class ScoringService:
    def __init__(self, config: ApiConfig, parts: ApiParts, metrics: ApiMetrics) -> None:
        self.config, self.parts, self.metrics = config, parts, metrics
        self.together = Coalescer(self.score_now, config.max_batch)

    def admitted(self, transactions: list[Transaction], field: str) -> list[bool] | Answer:
        """The event-time verdicts (``scoring.event_time``) on transactions received now:
        each one's late flag, or the 422 that names the first refused one's event_time."""
        message = InboundMessage(b"", "api", 0, 0, datetime.now(UTC))
        late = []
        for index, transaction in enumerate(transactions):
            judgement = self.parts.pipeline.judge(transaction, message)
            if judgement.kind.refused:
                return field_problem(field.format(index=index), judgement.problem)
            late.append(judgement.kind is Verdict.LATE)
        return late

    def score_now(self, transactions: list[Transaction], late: list[bool]) -> list[bytes]:
        message = InboundMessage(b"", "api", 0, 0, datetime.now(UTC))
        result = self.parts.pipeline.score_transactions(
            transactions, [message] * len(transactions), late=late
        )
        if result.scorer.fallback:
            self.metrics.fallback.inc(len(transactions))
        return [value for _, value in result.encoded()]

    async def record(self, transactions: list[Transaction]) -> None:
        if self.config.record:
            for transaction in transactions:
                value = transaction.model_dump_json().encode()
                await self.parts.publish("transactions", transaction.card_id.encode(), value)

    async def score(self, transactions: list[Transaction], late: list[bool]) -> list[bytes]:
        answers = self.score_now(transactions, late)
        await self.record(transactions)
        return answers

    async def score_one(self, transaction: Transaction, late: bool) -> bytes:
        """Scored together with the calls of the same turn (``Coalescer``), then recorded."""
        answer = await self.together(transaction, late)
        await self.record([transaction])
        return answer
