"""The event-time aligned inbox: a partition ahead waits for the others to pass its threshold,
batches come in event-time order, idle and caught-up partitions hold nothing, leaders pause
(no broker: the consumer records what the inbox asks of it and says what it has read)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from faust.types import TP

from streams.alignment import AlignedInbox

DAY1 = datetime(2026, 3, 1, tzinfo=UTC)
RECEIVED = datetime(2026, 12, 7, tzinfo=UTC).timestamp()


class Consumer:
    """Two partitions of ``t`` assigned; ``ends`` says how far each has been written."""

    def __init__(self, partitions: tuple[int, ...] = (0, 1)) -> None:
        self.partitions = partitions
        self.ends: dict[int, int] = {p: 1_000 for p in partitions}  # plenty still to read
        self._read_offset: dict[TP, int] = {}
        self.calls: list[tuple[str, Any]] = []

    def assignment(self) -> set[TP]:
        return {TP("t", p) for p in self.partitions}

    def highwater(self, tp: TP) -> int:
        return self.ends[tp.partition]

    def track_message(self, message: Any) -> None:
        pass

    def ack(self, message: Any) -> None:
        self.calls.append(("ack", message.offset))

    def on_buffer_full(self, tp: TP) -> None:
        self.calls.append(("pause", tp.partition))

    def on_buffer_drop(self, tp: TP) -> None:
        self.calls.append(("resume", tp.partition))


def inbox(consumer: Consumer, max_batch: int = 10, **options: Any) -> AlignedInbox:
    app = SimpleNamespace(consumer=consumer)
    settings = {"partitions": 2, "max_lead_s": 60.0, "idle_s": 60.0, "max_future_skew_s": 300.0}
    return AlignedInbox(app, max_batch, 0.0, **{**settings, **options})  # type: ignore[arg-type]


def deliver(target: AlignedInbox, consumer: Consumer, partition: int, at: datetime) -> None:
    offset = consumer._read_offset.get(TP("t", partition), -1) + 1
    consumer._read_offset[TP("t", partition)] = offset
    value = json.dumps({"event_time": at.isoformat(), "n": f"{partition}@{offset}"}).encode()
    target.put(SimpleNamespace(topic="t", partition=partition, offset=offset, value=value,
                               timestamp=RECEIVED))  # type: ignore[arg-type]  # fmt: skip


def names(batch: list[Any]) -> list[str]:
    return [json.loads(m.value)["n"] for m in batch]


def take_now(target: AlignedInbox) -> list[str]:
    async def soon() -> list[str]:
        try:
            return names(await asyncio.wait_for(target.take(), 0.2))
        except TimeoutError:
            return []

    return asyncio.run(soon())


def test_a_partition_on_a_new_day_waits_until_the_others_have_passed_its_start() -> None:
    consumer = Consumer()
    aligned = inbox(consumer)
    deliver(aligned, consumer, 1, DAY1 + timedelta(hours=23))
    first = take_now(aligned)  # p1 at day 1 23:00; p0 has delivered nothing yet
    deliver(aligned, consumer, 0, DAY1 + timedelta(days=1, minutes=5))
    # p0 has passed 23:00 (it is on day 2): p1's transaction goes; p0's, on day 2, waits
    # for p1, which may still hold day 1 for the terminals
    held = take_now(aligned)
    deliver(aligned, consumer, 1, DAY1 + timedelta(days=1, minutes=3))
    in_step = take_now(aligned)  # p1 passed day 2's start, but p0 leads it by 2 minutes
    consumer.ends = {0: 1, 1: 2}  # both have delivered all they hold
    released = take_now(aligned)

    assert first == []  # p0 has not shown where it is (not idle yet, not caught up)
    assert held == ["1@0"]
    assert in_step == ["1@1"]  # more than max_lead_s (60 s) ahead of p1: p0 still waits
    assert released == ["0@0"]


def test_a_caught_up_partition_holds_nothing_back_and_batches_follow_event_time() -> None:
    consumer = Consumer()
    aligned = inbox(consumer)
    for minute, partition in [(0, 0), (5, 0), (1, 1), (2, 1), (9, 0)]:
        deliver(aligned, consumer, partition, DAY1 + timedelta(hours=12, minutes=minute))
    consumer.ends = {0: 3, 1: 2}  # everything written has been read

    assert take_now(aligned) == ["0@0", "1@0", "1@1", "0@1", "0@2"]


def test_a_partition_silent_since_its_assignment_counts_as_idle() -> None:
    now = [0.0]
    consumer = Consumer()
    aligned = inbox(consumer, idle_s=2.0, clock=lambda: now[0])
    deliver(aligned, consumer, 0, DAY1 + timedelta(hours=1))
    before = take_now(aligned)
    now[0] = 2.5  # p1 delivered nothing in 2 s: idle

    assert before == [] and take_now(aligned) == ["0@0"]


def test_another_workers_partition_holds_back_until_its_report_passes() -> None:
    reports = {1: (DAY1 + timedelta(hours=10)).timestamp()}
    consumer = Consumer(partitions=(0,))  # p1 belongs to another worker
    aligned = inbox(consumer, others=lambda: reports)
    deliver(aligned, consumer, 0, DAY1 + timedelta(hours=11))
    held = take_now(aligned)  # more than a minute ahead of p1
    reports[1] = (DAY1 + timedelta(hours=11, seconds=-30)).timestamp()

    assert held == [] and take_now(aligned) == ["0@0"]


def test_unreadable_and_future_dated_transactions_go_at_once() -> None:
    consumer = Consumer()
    aligned = inbox(consumer)
    deliver(aligned, consumer, 0, datetime(9999, 12, 31, tzinfo=UTC))
    aligned.put(SimpleNamespace(topic="t", partition=1, offset=7, value=b"{not json",
                                timestamp=RECEIVED))  # type: ignore[arg-type]  # fmt: skip

    assert len(asyncio.run(aligned.take())) == 2


def test_leaders_pause_at_the_cap_the_oldest_never_and_resume_when_drained() -> None:
    consumer = Consumer()
    aligned = inbox(consumer, max_batch=2)  # cap: 4 waiting in a partition
    for minute in range(5):
        deliver(aligned, consumer, 0, DAY1 + timedelta(days=1, minutes=minute))
    deliver(aligned, consumer, 1, DAY1 + timedelta(hours=20))
    for minute in range(4):
        deliver(aligned, consumer, 1, DAY1 + timedelta(hours=21, minutes=minute))
    paused = list(consumer.calls)
    consumer.ends = {0: 5, 1: 5}
    for _ in range(5):
        take_now(aligned)

    assert paused == [("pause", 0)]  # p1 holds the oldest transaction: never paused
    assert ("resume", 0) in consumer.calls


def test_frontiers_count_only_what_is_acknowledged() -> None:
    consumer = Consumer()
    aligned = inbox(consumer)
    for hour, partition in [(1, 0), (2, 1), (3, 0), (4, 1)]:
        deliver(aligned, consumer, partition, DAY1 + timedelta(hours=hour))

    async def take_two() -> list[Any]:
        return await aligned.take()

    consumer.ends = {0: 2, 1: 2}
    batch = asyncio.run(take_two())
    unstored = aligned.frontiers()
    aligned.acknowledge(batch)

    assert unstored == {0: (DAY1 + timedelta(hours=1)).timestamp(),
                        1: (DAY1 + timedelta(hours=2)).timestamp()}  # fmt: skip
    assert aligned.frontiers() == {0: float("inf"), 1: float("inf")}  # stored, caught up
