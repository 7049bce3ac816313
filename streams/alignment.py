"""Partitions kept in step by event time, so terminal features do not depend on their pace.

A terminal's transactions arrive through every card partition, and terminal features sum the
terminal's completed days. A partition that runs ahead (a backlog, a replay, a rebalance, a
slow partition) would score a new day before the others delivered the day before of the same
terminal, and under-count it. The ``AlignedInbox`` hands the scorer a transaction only when
every other partition of the topic has passed its **release threshold**: the start of the
transaction's day (so every completed day is complete) and at most ``max_lead_s`` of event
time before it (so no partition runs far ahead). Within a batch, transactions come in
event-time order across partitions (each partition's own order kept).

A partition has passed a time when its next waiting transaction is at or after it, or, with
nothing waiting, when everything it has delivered is (its watermark) - or when it is caught
up: it has nothing more to deliver now. Partitions of other workers report the same through
Redis (``FrontierBoard``); one whose report is older than ``idle_s`` counts as passed, as
does a partition of this worker that has delivered nothing ``idle_s`` after it was assigned
(Kafka Streams' ``max.task.idle.ms`` and Flink's idleness play the same part). A leading
partition with ``2 x max_batch`` transactions waiting stops being fetched until half are
taken; the partition holding the oldest waiting transaction is never stopped.

Messages whose event time cannot be read, or that lie beyond the future skew limit, go at
once: they become dead letters, and holding them would hold their partition.

>>> release_threshold(86_400 * 3 + 30, max_lead_s=60)  # 30 s into a day: the day's start
259200.0
>>> release_threshold(86_400 * 3 + 7_200, max_lead_s=60)  # 2 h into it: a minute before
266340.0
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import math
import re
import time
from collections import defaultdict, deque
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import faust
import redis
from faust.types import TP, Message

from streams.consumer import BatchInbox

logger = logging.getLogger(__name__)

DAY_S = 86_400.0
RECHECK_S = 0.05  # with nothing releasable, look again this often for other workers' progress
_EVENT_TIME = re.compile(rb'"event_time"\s*:\s*"([^"]{1,64})"')

Frontiers = Mapping[int, float]  # partition -> the event time it has passed


def release_threshold(ts: float, max_lead_s: float) -> float:
    """What every other partition must have passed before an event at ``ts`` is scored."""
    return float(max(ts - ts % DAY_S, ts - max_lead_s))


def event_time_of(value: bytes | None, received_ts: float, max_future_skew_s: float) -> float:
    """The event time in a raw transaction, as epoch seconds; ``-inf`` (release at once) when
    it cannot be read or lies beyond the skew limit (the scorer makes it a dead letter).

    >>> event_time_of(b'{"event_time": "2026-03-01T12:00:00Z", "amount": 5}', 1.8e9, 300)
    1772366400.0
    >>> [event_time_of(v, 1.8e9, 300) for v in (b'{"event_time": "9999-12-31T00:00:00Z"}',
    ...                                           b'{"event_time": "soon"}', b"not json")]
    [-inf, -inf, -inf]
    """
    match = _EVENT_TIME.search(value or b"")
    if match is None:
        return -math.inf
    try:
        moment = datetime.fromisoformat(match.group(1).decode())
    except (ValueError, UnicodeDecodeError):
        return -math.inf
    if moment.tzinfo is None:
        return -math.inf
    ts = moment.timestamp()
    return ts if ts <= received_ts + max_future_skew_s else -math.inf


class AlignedInbox(BatchInbox):
    """A ``BatchInbox`` that releases transactions in step across the topic's partitions."""

    def __init__(
        self,
        app: faust.App,
        max_batch: int,
        within: float,
        partitions: int,
        max_lead_s: float,
        idle_s: float,
        max_future_skew_s: float,
        others: Callable[[], Frontiers] = dict,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(app, max_batch, within)
        self.partitions, self.max_lead_s, self.idle_s = partitions, max_lead_s, idle_s
        self.max_future_skew_s = max_future_skew_s
        self.others = others  # the frontiers other workers reported (``FrontierBoard``)
        self.clock = clock
        self.waiting: dict[int, deque[tuple[float, Message]]] = defaultdict(deque)
        self.taken: dict[int, deque[float]] = defaultdict(deque)  # not acknowledged yet
        self.watermark: dict[int, float] = {}  # the newest event time taken, per partition
        self.count = 0
        self.assigned_at = clock()
        self.cap = 2 * max_batch
        self.topic = ""

    def put(self, message: Message) -> None:
        """Called by the consumer for each message; never waits."""
        if not self.count:
            self.first_arrived = time.monotonic()
        self.arrived.set()  # also wakes a take() that holds transactions back
        self.topic = message.topic
        ts = event_time_of(message.value, message.timestamp, self.max_future_skew_s)
        self.waiting[message.partition].append((ts, message))
        self.count += 1
        if self.count >= self.max_batch:
            self.filled.set()
        if len(self.waiting[message.partition]) >= self.cap:
            self._pause_leaders()

    async def take(self) -> list[Message]:
        """The next batch of transactions every other partition has caught up with."""
        while True:
            while not self.count:
                self.arrived.clear()
                await self.arrived.wait()
            left = self.first_arrived + self.within - time.monotonic()
            if self.count < self.max_batch and left > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.filled.wait(), left)
            batch = self._release(self.max_batch)
            if batch:
                break
            self.arrived.clear()  # held back: wait for more input, or for the others
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.arrived.wait(), RECHECK_S)
        track = self.app.consumer.track_message
        for message in batch:
            track(message)
        if self.count < self.max_batch:
            self.filled.clear()
        self.first_arrived = 0.0 if self.count else self.first_arrived
        self._resume_drained()
        return batch

    def acknowledge(self, batch: list[Message]) -> None:
        super().acknowledge(batch)
        for message in batch:
            taken = self.taken.get(message.partition)
            if taken:
                taken.popleft()

    def clear(self) -> None:
        super().clear()
        self.waiting.clear()
        self.taken.clear()
        self.watermark.clear()
        self.count = 0
        self.assigned_at = self.clock()

    def frontiers(self) -> dict[int, float]:
        """What each partition of this worker has passed, counting only transactions whose
        state is stored (acknowledged): what other workers may rely on."""
        reported = {}
        for partition in self._assigned():
            pending = [ts for ts in self.taken.get(partition, ()) if ts > -math.inf]
            if self.waiting.get(partition):
                pending.append(self.waiting[partition][0][0])
            if pending:
                reported[partition] = min(pending)
            else:
                reported[partition] = self._passed_when_idle(partition)
        return reported

    def _release(self, limit: int) -> list[Message]:
        """Up to ``limit`` messages, oldest event time first across partitions, each only
        once every other partition has passed its release threshold."""
        passed = self._local_frontiers()
        passed.update({p: ts for p, ts in self._remote_frontiers().items() if p not in passed})
        heads = [(queue[0][0], p) for p, queue in self.waiting.items() if queue]
        heapq.heapify(heads)
        batch: list[Message] = []
        while heads and len(batch) < limit:
            ts, partition = heapq.heappop(heads)
            if ts > -math.inf:  # unreadable or beyond the skew limit: at once (a dead letter)
                need = release_threshold(ts, self.max_lead_s)
                if any(at < need for p, at in passed.items() if p != partition):
                    break  # thresholds only grow from here: every later head waits too
            queue = self.waiting[partition]
            _, message = queue.popleft()
            self.count -= 1
            batch.append(message)
            self.taken[partition].append(ts)
            if ts > self.watermark.get(partition, -math.inf):
                self.watermark[partition] = ts
            passed[partition] = queue[0][0] if queue else self._passed_when_idle(partition)
            if queue:
                heapq.heappush(heads, (queue[0][0], partition))
        return batch

    def _local_frontiers(self) -> dict[int, float]:
        passed = {}
        for partition in self._assigned():
            queue = self.waiting.get(partition)
            passed[partition] = queue[0][0] if queue else self._passed_when_idle(partition)
        return passed

    def _passed_when_idle(self, partition: int) -> float:
        """What a partition with nothing waiting here has passed: everything, when it has
        nothing more to deliver (or has delivered nothing ``idle_s`` after its assignment);
        else its watermark."""
        if self._caught_up(partition):
            return math.inf
        if partition not in self.watermark:
            idle = self.clock() - self.assigned_at >= self.idle_s
            return math.inf if idle else -math.inf
        return self.watermark[partition]

    def _remote_frontiers(self) -> dict[int, float]:
        assigned = set(self._assigned())
        remote = [p for p in range(self.partitions) if p not in assigned]
        if not remote:
            return {}
        reported = self.others()
        unknown = math.inf if self.clock() - self.assigned_at >= self.idle_s else -math.inf
        return {partition: reported.get(partition, unknown) for partition in remote}

    def _assigned(self) -> list[int]:
        topic = self.topic
        if not topic:
            return sorted(self.waiting)
        return sorted(tp.partition for tp in self.app.consumer.assignment() if tp.topic == topic)

    def _caught_up(self, partition: int) -> bool:
        consumer = self.app.consumer
        tp = TP(self.topic, partition)
        end = consumer.highwater(tp)
        read = consumer._read_offset.get(tp)  # type: ignore[attr-defined]  # Faust keeps it
        return end is not None and (read + 1 if read is not None else 0) >= end

    def _pause_leaders(self) -> None:
        """Stop fetching partitions with ``cap`` waiting, but never the one holding the oldest
        waiting transaction (the others wait for it)."""
        heads = {p: queue[0][0] for p, queue in self.waiting.items() if queue}
        oldest = min(heads, key=heads.__getitem__)
        for partition, queue in self.waiting.items():
            tp = TP(self.topic, partition)
            if partition != oldest and len(queue) >= self.cap and tp not in self.paused:
                self.paused.add(tp)
                self.app.consumer.on_buffer_full(tp)

    def _resume_drained(self) -> None:
        for tp in list(self.paused):
            if len(self.waiting.get(tp.partition, ())) <= self.cap // 2:
                self.paused.discard(tp)
                self.app.consumer.on_buffer_drop(tp)


class FrontierBoard:
    """The frontiers of every worker's partitions, in one Redis hash per topic: each worker
    writes its own (``publish``) and reads the others' (``read``, at most every
    ``RECHECK_S``); a report older than ``idle_s`` is left out (its worker is gone, or idle)."""

    def __init__(self, client: Any, key: str, idle_s: float) -> None:
        self.client, self.key, self.idle_s = client, key, idle_s
        self._read_at = -math.inf
        self._cached: dict[int, float] = {}

    def publish(self, frontiers: Frontiers) -> None:
        if not frontiers:
            return
        now = time.time()
        try:
            self.client.hset(self.key, mapping={p: f"{ts} {now}" for p, ts in frontiers.items()})
        except redis.RedisError as error:  # the others treat this worker as idle meanwhile
            logger.debug("could not publish the partitions' frontiers: %s", error)

    def read(self) -> dict[int, float]:
        if time.monotonic() - self._read_at < RECHECK_S:
            return self._cached
        self._read_at = time.monotonic()
        try:
            reports = self.client.hgetall(self.key)
        except redis.RedisError as error:  # what was read last stands; it ages out below
            logger.debug("could not read the partitions' frontiers: %s", error)
            return self._cached
        fresh, now = {}, time.time()
        for field, value in reports.items():
            ts, _, at = value.decode().partition(" ")
            if now - float(at) <= self.idle_s:
                fresh[int(field)] = float(ts)
        self._cached = fresh
        return fresh
