"""The scoring agent: take a batch, score it, send its outputs, store its state, acknowledge.

Its inputs are injected (the inbox, the pipeline, the senders, the saver), so its batch
policy is tested without a broker (``tests/unit/test_scoring_agent.py``):

- outputs go out in the order the inbox delivered the batch, dead letters after them;
- a batch's feature state is stored in one saver thread (batches in order) while the next
  batch is scored, unless the next reads what an unsaved batch changes: then it waits;
- at most ``max_unsaved`` batches are being stored at once;
- a batch is acknowledged (its offsets committable) once its outputs are sent and its state
  stored, never before; a store that fails is never acknowledged and stops the worker.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from schemas.codec import encode
from scoring.pipeline import BatchResult, InboundMessage, ScoringPipeline, utc_now

logger = logging.getLogger(__name__)

MAX_UNSAVED_BATCHES = 2  # scored batches whose state is still being stored

# Turns of the event loop the scorer gives up after queueing a batch's outputs: aiokafka's
# sender takes three (its wait wakes, its task runs, the request task writes to the socket).
# Under load the next batch is already waiting, and without them the outputs sat in the
# producer's buffer while it was scored: at 2,000 tx/s, output appended -> received 12-15.5
# ms p50, 35-46 ms p99; with three, 6.9-8.9 and 15-29 (six turns did no better).
HAND_OVER_TURNS = 3


class KafkaMessage(Protocol):
    """What the scorer reads of a consumed message (Faust's ``Message`` has it)."""

    value: bytes | None
    topic: str
    partition: int
    offset: int
    timestamp: float


class Inbox(Protocol):
    async def take(self) -> Sequence[KafkaMessage]: ...
    def acknowledge(self, batch: Any) -> None: ...  # what ``take`` gave


class BatchObserver(Protocol):
    def observe_batch(self, result: BatchResult, now: datetime) -> None: ...
    def stored(self) -> None: ...


SendOutputs = Callable[[list[tuple[bytes, bytes]]], Awaitable[None]]  # (key, value) in order
SendValue = Callable[[bytes], Awaitable[None]]


async def hand_over(turns: int) -> None:
    """Let callbacks and tasks that are ready run before going on, ``turns`` times."""
    for _ in range(turns):
        await asyncio.sleep(0)


def inbound(message: KafkaMessage) -> InboundMessage:
    return InboundMessage(
        message.value or b"", message.topic, message.partition, message.offset,
        datetime.fromtimestamp(message.timestamp, UTC),
    )  # fmt: skip


@dataclasses.dataclass
class ScoringAgent:
    pipeline: ScoringPipeline
    send_outputs: SendOutputs
    send_dead_letter: SendValue
    observer: BatchObserver
    crash: Callable[[BaseException], None]  # stops the worker; called once per failure
    saver: concurrent.futures.Executor = dataclasses.field(
        default_factory=lambda: concurrent.futures.ThreadPoolExecutor(
            1, thread_name_prefix="feature-state"
        )
    )
    max_unsaved: int = MAX_UNSAVED_BATCHES
    hand_over_turns: int = HAND_OVER_TURNS
    # scored batches whose state is being stored, oldest first, with the store's future
    storing: collections.deque[tuple[BatchResult, asyncio.Future[None]]] = dataclasses.field(
        default_factory=collections.deque
    )

    async def run(self, inbox: Inbox, after_first: Callable[[], None] = lambda: None) -> None:
        """Score batches until cancelled; ``after_first`` runs once the first is out."""
        await self.score_one(inbox)
        after_first()
        while True:
            await self.score_one(inbox)

    async def score_one(self, inbox: Inbox) -> BatchResult:
        batch = await inbox.take()
        decoded = self.pipeline.decode([inbound(message) for message in batch])
        while any(self.pipeline.reads_unsaved(decoded, unsaved) for unsaved, _ in self.storing):
            await self.stored_oldest()
        result = self.pipeline.score(decoded)
        await self.send_outputs(result.encoded())
        await hand_over(self.hand_over_turns)
        for letter in result.dead_letters:
            where = f"{letter.origin_partition}]@{letter.origin_offset}"
            logger.warning(
                "dead letter %s[%s: %s", letter.origin_topic, where, letter.error,
                extra={"origin_topic": letter.origin_topic, "reason": letter.reason,
                       "origin_partition": letter.origin_partition,
                       "origin_offset": letter.origin_offset},
            )  # fmt: skip
            await self.send_dead_letter(encode(letter))
        self.observer.observe_batch(result, utc_now())  # its outputs are out
        while len(self.storing) >= self.max_unsaved:
            await self.stored_oldest()
        self.storing.append((result, self.store_state(inbox, batch, result)))
        while self.storing and self.storing[0][1].done():
            await self.stored_oldest()
        return result

    async def stored_oldest(self) -> None:
        """Wait for the oldest batch being stored; a failed store stops the scorer."""
        try:
            await self.storing[0][1]
        finally:
            self.storing.popleft()

    async def settled(self) -> None:
        """Every batch taken so far stored (or failed): before the card cache is dropped on a
        rebalance. A failure is the scorer's to report, not this caller's."""
        for _, pending in list(self.storing):
            try:
                await asyncio.shield(pending)
            except Exception:  # reported by the scorer itself
                continue

    def store_state(
        self, inbox: Inbox, batch: Sequence[KafkaMessage], result: BatchResult
    ) -> asyncio.Future[None]:
        """Store ``result``'s state in the one saver thread (so batches are stored in
        order), then acknowledge ``batch`` - promptly, even if no other batch follows."""
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self.saver, self.pipeline.save, result)

        def acknowledge(done: asyncio.Future[None]) -> None:
            if done.cancelled():
                return
            if (error := done.exception()) is not None:
                # never acknowledged; the worker stops now, not when the next batch comes
                logger.error("storing a batch's feature state failed, the worker stops: %s", error)
                self.crash(error)
                return
            inbox.acknowledge(batch)
            self.observer.stored()

        future.add_done_callback(acknowledge)
        return future
