"""The scorer's batch policy, with no broker: seeded batches in, exact outputs and
acknowledgements out, failures included (``streams.scorer``)."""

from __future__ import annotations

import asyncio
import concurrent.futures
from typing import Any

import orjson
import pytest

from schemas.codec import decode
from schemas.events import DeadLetter
from scoring.decision import Thresholds
from scoring.features import FeatureEngine, InMemoryFeatureStore
from scoring.pipeline import BatchResult, InboundMessage, ScoringPipeline
from scoring.serving import RulesFallback
from simulator.generator import SimulationConfig, simulate
from simulator.records import transaction_records
from streams.scorer import ScoringAgent
from tests.unit.agent_doubles import NOW, HeldSaver, Inbox, Message, Observer, Outputs, Sent, turns

RECORDS = transaction_records(
    simulate(SimulationConfig(seed=11, days=2, customers=40, terminals=20)).transactions.head(60)
)


def pipeline() -> ScoringPipeline:
    return ScoringPipeline(
        FeatureEngine(InMemoryFeatureStore()), RulesFallback, Thresholds(0.3, 0.9), lambda: NOW
    )


def messages(records: list[Any], first_offset: int = 0) -> list[Message]:
    return [
        Message(r.model_dump_json().encode(), "transactions", 0, first_offset + i)
        for i, r in enumerate(records)
    ]


def agent(
    scoring: ScoringPipeline, saver: concurrent.futures.Executor | None = None, **options: Any
) -> tuple[ScoringAgent, Outputs, Sent, Observer, list[BaseException]]:
    outputs, letters, observer, crashes = Outputs(), Sent(), Observer(), []
    made = ScoringAgent(
        scoring, outputs, letters, observer, crashes.append,
        saver or concurrent.futures.ThreadPoolExecutor(1), hand_over_turns=0, **options,
    )  # fmt: skip
    return made, outputs, letters, observer, crashes


def offline(records: list[Any]) -> list[tuple[bytes, bytes]]:
    """What one pipeline scores for the same transactions in one pass."""
    replay = pipeline()
    inbound = [InboundMessage(m.value or b"", m.topic, m.partition, m.offset, NOW)
               for m in messages(records)]  # fmt: skip
    return replay.score_batch(inbound).encoded()


def test_outputs_equal_the_offline_scores_in_delivery_order_and_each_batch_is_acknowledged() -> (
    None
):
    batches = [messages(RECORDS[:25]), messages(RECORDS[25:40], 25), messages(RECORDS[40:], 40)]
    inbox = Inbox(batches)
    scorer, outputs, letters, observer, crashes = agent(pipeline())

    async def run() -> None:
        for _ in batches:
            await scorer.score_one(inbox)
        await scorer.settled()

    asyncio.run(run())

    assert outputs.items == offline(RECORDS)
    assert [key for key, _ in outputs.items] == [r.card_id.encode() for r in RECORDS]
    assert inbox.acknowledged == [list(range(0, 25)), list(range(25, 40)), list(range(40, 60))]
    assert (len(observer.batches), observer.stored_count, letters.items, crashes) == (3, 3, [], [])


def test_a_batch_is_acknowledged_only_once_its_state_is_stored() -> None:
    saver = HeldSaver()
    inbox = Inbox([messages(RECORDS[:10])])
    scorer, outputs, *_ = agent(pipeline(), saver)

    async def run() -> tuple[int, list[list[int]]]:
        await scorer.score_one(inbox)
        await turns()
        before = (len(outputs.items), list(inbox.acknowledged))
        saver.release()
        await scorer.settled()
        await turns()
        return before

    sent_before, acknowledged_before = asyncio.run(run())

    assert (sent_before, acknowledged_before) == (10, [])  # outputs out, offsets held
    assert inbox.acknowledged == [list(range(10))]


def test_a_batch_that_reads_an_unsaved_card_waits_for_that_state_others_do_not() -> None:
    card = RECORDS[0].card_id
    same_card = [r for r in RECORDS if r.card_id == card]
    others = [r for r in RECORDS if r.card_id != card]
    assert len(same_card) >= 2
    saver = HeldSaver()
    first, other, again = (
        messages(same_card[:1]),
        messages(others[:5], 1),
        messages(same_card[1:2], 6),
    )
    inbox = Inbox([first, other, again])
    scorer, outputs, *_ = agent(pipeline(), saver, max_unsaved=5)

    async def run() -> list[int]:
        await scorer.score_one(inbox)
        await scorer.score_one(inbox)  # other cards: scored while the first is unsaved
        waiting = asyncio.ensure_future(scorer.score_one(inbox))
        await turns()
        sent_while_held = len(outputs.items)
        saver.release()
        await waiting
        await scorer.settled()
        await turns()
        return [sent_while_held, len(outputs.items)]

    assert asyncio.run(run()) == [6, 7]
    assert inbox.acknowledged == [[0], [1, 2, 3, 4, 5], [6]]


def test_no_more_than_max_unsaved_batches_are_being_stored() -> None:
    saver = HeldSaver()
    cards = list(dict.fromkeys(r.card_id for r in RECORDS))
    one_each = [next(r for r in RECORDS if r.card_id == c) for c in cards[:3]]
    inbox = Inbox([messages([r], i) for i, r in enumerate(one_each)])
    scorer, outputs, *_ = agent(pipeline(), saver, max_unsaved=2)

    async def run() -> list[int]:
        await scorer.score_one(inbox)
        await scorer.score_one(inbox)
        third = asyncio.ensure_future(scorer.score_one(inbox))
        await turns()
        # the third batch is scored and sent, then waits for room before it is stored
        held = [len(outputs.items), len(scorer.storing), int(third.done())]
        saver.release()
        await third
        await scorer.settled()
        return held

    assert asyncio.run(run()) == [3, 2, 0]


def test_a_store_that_fails_stops_the_worker_and_its_batch_is_never_acknowledged() -> None:
    class FailingSave(ScoringPipeline):
        def save(self, result: BatchResult) -> None:
            raise ConnectionError("state store gone")

    failing = FailingSave(
        FeatureEngine(InMemoryFeatureStore()), RulesFallback, Thresholds(0.3, 0.9), lambda: NOW
    )
    inbox = Inbox([messages(RECORDS[:5])])
    scorer, _, _, _, crashes = agent(failing)

    async def run() -> None:
        await scorer.score_one(inbox)
        await scorer.stored_oldest()  # what the scorer waits on before it reuses the room

    with pytest.raises(ConnectionError, match="state store gone"):
        asyncio.run(run())
    assert inbox.acknowledged == []
    assert [str(error) for error in crashes] == ["state store gone"]


def test_an_undecodable_message_is_a_dead_letter_with_its_origin_and_the_rest_score() -> None:
    batch = messages(RECORDS[:3])
    batch.insert(1, Message(b'{"card_id": "x"', "transactions", 2, 77))
    inbox = Inbox([batch])
    scorer, outputs, letters, _, _ = agent(pipeline())

    async def run() -> None:
        await scorer.score_one(inbox)
        await scorer.settled()
        await turns()

    asyncio.run(run())

    assert [key for key, _ in outputs.items] == [r.card_id.encode() for r in RECORDS[:3]]
    (letter,) = [decode(DeadLetter, value) for value in letters.items]
    assert (letter.origin_topic, letter.origin_partition, letter.origin_offset) == (
        "transactions", 2, 77,
    )  # fmt: skip
    assert letter.reason == "invalid" and letter.raw == b'{"card_id": "x"'
    assert inbox.acknowledged == [[0, 77, 1, 2]]
    assert orjson.loads(outputs.items[0][1])["transaction"]["transaction_id"] == (
        RECORDS[0].transaction_id
    )
