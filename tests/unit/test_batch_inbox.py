"""The scorer's inbox: batches, waiting, Faust's pause for full buffers, acks (no broker: the
consumer here only records what the inbox asks of it)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from faust.types import TP

from streams.consumer import DELIVERED, BatchInbox


class RecordingConsumer:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def on_buffer_full(self, tp: TP) -> None:
        self.calls.append(("full", tp))

    def on_buffer_drop(self, tp: TP) -> None:
        self.calls.append(("drop", tp))

    def ack(self, message: Any) -> None:
        self.calls.append(("ack", message.offset))

    def track_message(self, message: Any) -> None:
        self.calls.append(("taken", message.offset))

    def flow(self) -> list[tuple[str, Any]]:
        return [call for call in self.calls if call[0] in ("full", "drop")]


def _inbox(max_batch: int, within: float, limit: int = 0) -> tuple[BatchInbox, RecordingConsumer]:
    consumer = RecordingConsumer()
    return BatchInbox(SimpleNamespace(consumer=consumer), max_batch, within, limit), consumer  # type: ignore[arg-type]


def _message(offset: int, partition: int = 0) -> SimpleNamespace:
    return SimpleNamespace(topic="t", partition=partition, offset=offset)


def test_a_full_batch_is_taken_at_once_in_delivery_order() -> None:
    async def run() -> list[list[int]]:
        inbox, _ = _inbox(max_batch=3, within=60.0)  # a wait that would fail the test
        for offset in range(7):
            inbox.put(_message(offset))  # type: ignore[arg-type]
        first = await inbox.take()
        second = await inbox.take()
        return [[m.offset for m in first], [m.offset for m in second]]

    assert asyncio.run(run()) == [[0, 1, 2], [3, 4, 5]]


def test_a_part_batch_waits_within_for_more_then_goes() -> None:
    async def run() -> tuple[list[int], list[int]]:
        inbox, _ = _inbox(max_batch=10, within=0.05)
        inbox.put(_message(0))  # type: ignore[arg-type]
        taking = asyncio.ensure_future(inbox.take())
        await asyncio.sleep(0.01)
        inbox.put(_message(1))  # type: ignore[arg-type]  # arrives while the batch waits
        first = await taking
        inbox.put(_message(2))  # type: ignore[arg-type]
        return [m.offset for m in first], [m.offset for m in await inbox.take()]

    assert asyncio.run(run()) == ([0, 1], [2])


def test_a_message_that_waited_within_already_goes_at_once() -> None:
    async def run() -> bool:
        inbox, _ = _inbox(max_batch=10, within=0.05)
        inbox.put(_message(0))  # type: ignore[arg-type]
        await asyncio.sleep(0.06)  # the scorer was busy with the previous batch
        taking = asyncio.ensure_future(inbox.take())
        await asyncio.sleep(0)  # one turn of the loop: no further wait
        return taking.done()

    assert asyncio.run(run()) is True


def test_an_empty_inbox_waits_for_the_first_message() -> None:
    async def run() -> tuple[bool, list[int]]:
        inbox, _ = _inbox(max_batch=2, within=0.0)
        taking = asyncio.ensure_future(inbox.take())
        await asyncio.sleep(0.02)
        waited = not taking.done()
        inbox.put(_message(4))  # type: ignore[arg-type]
        return waited, [m.offset for m in await taking]

    assert asyncio.run(run()) == (True, [4])


def test_beyond_the_limit_partitions_pause_until_half_is_taken() -> None:
    async def run() -> list[tuple[str, Any]]:
        inbox, consumer = _inbox(max_batch=2, within=0.0, limit=4)
        for offset, partition in enumerate([0, 1, 0, 1, 1, 0]):
            inbox.put(_message(offset, partition))  # type: ignore[arg-type]
        paused = consumer.flow()
        await inbox.take()  # 4 left: still above half the limit
        still = consumer.flow()
        await inbox.take()  # 2 left: fetching resumes
        return [*paused, ("taken 2", None), *still[len(paused) :], ("taken 4", None),
                *sorted(consumer.flow()[len(still) :])]  # fmt: skip

    assert asyncio.run(run()) == [
        ("full", TP("t", 1)),  # the 4th message reached the limit
        ("full", TP("t", 0)),  # the 6th, from the other partition
        ("taken 2", None),
        ("taken 4", None),
        ("drop", TP("t", 0)),
        ("drop", TP("t", 1)),
    ]


def test_a_taken_batch_is_in_work_until_acknowledged_and_clear_drops_what_waits() -> None:
    async def run() -> tuple[list[tuple[str, Any]], list[int]]:
        inbox, consumer = _inbox(max_batch=2, within=0.0)
        for offset in range(3):
            inbox.put(_message(offset))  # type: ignore[arg-type]
        inbox.acknowledge(await inbox.take())
        inbox.clear()  # partitions moved: the waiting message is read again by its owner
        inbox.put(_message(9))  # type: ignore[arg-type]
        return consumer.calls, [m.offset for m in await inbox.take()]

    assert asyncio.run(run()) == (
        [("taken", 0), ("taken", 1), ("ack", 0), ("ack", 1), ("taken", 9)],  # 2 never taken
        [9],
    )


def test_a_delivery_to_an_inbox_is_already_done_when_awaited() -> None:
    async def run() -> str:
        await DELIVERED
        return "done"

    assert asyncio.run(run()) == "done"
