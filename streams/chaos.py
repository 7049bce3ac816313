"""Fault injection on the real services: a steady simulated load through real scoring
workers while something breaks, then an account of every transaction.

Each scenario reports what was sent, how many distinct transactions were scored, how many
were lost (sent, valid, never scored), how many scored outputs were duplicates (the same
transaction scored again: at-least-once delivery after a crash), how many the rules decided,
the dead letters, and the longest time the output stopped after a fault (recovery).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import signal
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from schemas.codec import decode
from schemas.events import DeadLetter
from schemas.pan import find_pans
from schemas.topics import DEAD_LETTERS, SCORED, TRANSACTIONS
from streams.app import create_topics, spawn_worker
from streams.bench import _transactions
from streams.settings import Settings

WORKER_AGENTS = ("score", "model-updates")
_ID = b'"transaction_id":"'  # how the scorer writes the id first: cut out, not parsed


@dataclasses.dataclass(frozen=True)
class Outcome:
    scenario: str
    sent: int  # messages on `transactions`, valid and not
    valid: int
    scored: int  # distinct transactions on `transactions.scored`
    lost: int  # valid, sent, never scored
    duplicated: int  # scored outputs beyond the first for a transaction
    fallback: int  # outputs the rules decided
    dead_letters: int
    recovery_s: float  # the longest stop of the output after a fault (0: no fault)
    note: str = ""

    def row(self) -> str:
        return (
            f"| {self.scenario} | {self.sent:,} | {self.scored:,} | {self.lost:,} | "
            f"{self.duplicated:,} | {self.fallback:,} | {self.dead_letters:,} | "
            f"{self.recovery_s:.1f} s | {self.note} |"
        )


TABLE_HEAD = (
    "| scenario | sent | scored | lost | duplicated | fallback | dead letters | recovery | note |\n"
    "|---|---|---|---|---|---|---|---|---|"
)


def isolated(settings: Settings, name: str) -> Settings:
    run = uuid.uuid4().hex[:8]
    return dataclasses.replace(
        settings, topic_prefix=f"chaos-{name}-{run}.", app_id=f"fraudstream-chaos-{name}-{run}",
        metrics_port=0,
    )  # fmt: skip


class Outputs:
    """Reads `transactions.scored` and the dead letters from the start, counting by id."""

    def __init__(self, settings: Settings) -> None:
        self.consumer = AIOKafkaConsumer(
            settings.topic(SCORED.name), settings.topic(DEAD_LETTERS.name),
            bootstrap_servers=settings.kafka_bootstrap, auto_offset_reset="earliest",
            max_partition_fetch_bytes=4 * 2**20,
        )  # fmt: skip
        self.scored_topic = settings.topic(SCORED.name)
        self.scored: Counter[bytes] = Counter()
        self.fallback = 0
        self.dead_letters: list[DeadLetter] = []
        self.arrivals: list[float] = []  # monotonic time of each scored batch received
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Outputs:
        await self.consumer.start()
        self.task = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *_: object) -> None:
        if self.task is not None:
            self.task.cancel()
        await self.consumer.stop()

    async def _read(self) -> None:
        while True:
            for tp, messages in (await self.consumer.getmany(timeout_ms=200)).items():
                if tp.topic != self.scored_topic:
                    self.dead_letters += [decode(DeadLetter, m.value or b"") for m in messages]
                    continue
                self.arrivals.append(time.monotonic())
                for message in messages:
                    value = message.value or b""
                    start = value.index(_ID) + len(_ID)
                    self.scored[value[start : value.index(b'"', start)]] += 1
                    self.fallback += b'"fallback":true' in value

    async def until(self, ids: set[bytes], dead: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not (ids <= self.scored.keys() and len(self.dead_letters) >= dead):
            if self.task is not None and self.task.done():
                self.task.result()  # the reader failed: its error, not a count of "lost"
            if time.monotonic() > deadline:
                return
            await asyncio.sleep(0.2)
        await asyncio.sleep(2.0)  # anything still on its way is a duplicate to count

    def longest_stop_after(self, faults: list[float]) -> float:
        """For each fault, how long until output flowed again; the longest."""
        longest = 0.0
        for fault in faults:
            later = [t for t in self.arrivals if t > fault]
            if later:
                longest = max(longest, later[0] - fault)
        return longest


async def publish(
    settings: Settings, items: Sequence[tuple[bytes | None, bytes]], rate: float
) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap, acks="all", linger_ms=5,
        max_request_size=4 * 2**20,
    )  # fmt: skip
    await producer.start()
    topic, started = settings.topic(TRANSACTIONS.name), time.monotonic()
    try:
        for index, (key, value) in enumerate(items):
            await producer.send(topic, key=key, value=value)
            if index % 200 == 0:
                await asyncio.sleep(max(0.0, started + index / rate - time.monotonic()))
        await producer.flush()
    finally:
        await producer.stop()


def _id(value: bytes) -> bytes:
    return json.loads(value)["transaction_id"].encode()


async def kill_nine(
    settings: Settings, logs: Path, count: int = 100_000, rate: float = 2_000.0,
    every_s: float = 20.0,
) -> Outcome:  # fmt: skip
    """``kill -9`` of the scoring worker every ``every_s`` seconds while ``count``
    transactions stream in at ``rate``; a new worker starts at once each time."""
    settings = isolated(settings, "kill9")
    items = _transactions(count)
    ids = {_id(value) for _, value in items}
    await create_topics(settings)
    workers = [spawn_worker(settings, logs / "kill9-workers.log", WORKER_AGENTS)]
    kills: list[float] = []
    async with Outputs(settings) as outputs:
        sending = asyncio.create_task(publish(settings, items, rate))
        try:
            while not sending.done():
                await asyncio.wait({sending}, timeout=every_s)
                if sending.done():
                    break
                workers[-1].send_signal(signal.SIGKILL)
                workers[-1].wait()
                kills.append(time.monotonic())
                workers.append(spawn_worker(settings, logs / "kill9-workers.log", WORKER_AGENTS))
            await sending
            await outputs.until(ids, 0, timeout=240)
        finally:
            _stop(workers)
    return _outcome(
        "kill -9 of the scoring worker every ~20 s", items, ids, outputs, kills,
        f"{len(kills)} kills at {rate:,.0f} tx/s",
    )  # fmt: skip


def hostile_messages(count: int) -> list[bytes]:
    """Wrong types, missing fields, huge fields, invalid JSON, binary noise, full card
    numbers: each kind in turn."""
    base = {"transaction_id": "h", "event_time": "2026-01-05T10:00:00Z", "card_id": "card-h",
            "terminal_id": "term-h", "amount": 12.5}  # fmt: skip

    def kinds(i: int) -> Iterator[bytes]:
        tx = {**base, "transaction_id": f"hostile-{i}"}
        yield b"{not json at all"
        yield b""
        yield bytes(range(256)) * 4  # binary noise
        yield json.dumps({**tx, "amount": "twelve"}).encode()
        yield json.dumps({**tx, "amount": -1}).encode()
        yield json.dumps({**tx, "event_time": "yesterday"}).encode()
        yield json.dumps({k: v for k, v in tx.items() if k != "card_id"}).encode()
        yield json.dumps({**tx, "card_id": "4111 1111 1111 1111"}).encode()
        yield json.dumps({**tx, "card_id": "5500000000000004"}).encode()
        yield json.dumps({**tx, "merchant_category": "x" * 200_000}).encode()
        yield json.dumps({**tx, "amount": {"nested": [1, 2, 3]}}).encode()
        yield json.dumps([tx, tx]).encode()
        yield json.dumps({**tx, "amount": 1e309}).encode().replace(b"Infinity", b"1e309")

    messages: list[bytes] = []
    i = 0
    while len(messages) < count:
        messages += list(kinds(i))
        i += 1
    return messages[:count]


async def hostile(
    settings: Settings, logs: Path, valid: int = 20_000, bad: int = 10_000, rate: float = 2_000.0
) -> Outcome:
    """``bad`` malformed and hostile messages mixed into ``valid`` transactions."""
    settings = isolated(settings, "hostile")
    good = list(_transactions(valid))
    ids = {_id(value) for _, value in good}
    poison = hostile_messages(bad)
    items: list[tuple[bytes | None, bytes]] = []
    step = max(1, len(good) // max(len(poison), 1))
    for index, item in enumerate(good):
        items.append(item)
        if index % step == 0 and poison:
            items.append((None, poison.pop()))
    items += [(None, message) for message in poison]
    await create_topics(settings)
    worker = spawn_worker(settings, logs / "hostile-worker.log", WORKER_AGENTS)
    async with Outputs(settings) as outputs:
        try:
            await publish(settings, items, rate)
            await outputs.until(ids, bad, timeout=240)
            alive = worker.poll() is None
        finally:
            _stop([worker])
    letters = outputs.dead_letters
    pans = sum(len(find_pans(letter.raw)) for letter in letters)
    unexplained = sum(not letter.error.strip() for letter in letters)
    note = (
        f"worker {'alive' if alive else 'DIED'} throughout; {unexplained} dead letters without "
        f"a reason; {pans} card numbers in them"
    )
    return _outcome("10,000 malformed or hostile messages", items, ids, outputs, [], note)


def _outcome(
    scenario: str,
    items: Sequence[tuple[bytes | None, bytes]],
    ids: set[bytes],
    outputs: Outputs,
    faults: list[float],
    note: str,
) -> Outcome:
    scored = set(outputs.scored) & ids
    return Outcome(
        scenario=scenario,
        sent=len(items),
        valid=len(ids),
        scored=len(scored),
        lost=len(ids - scored),
        duplicated=sum(outputs.scored.values()) - len(outputs.scored),
        fallback=outputs.fallback,
        dead_letters=len(outputs.dead_letters),
        recovery_s=outputs.longest_stop_after(faults),
        note=note,
    )


def _stop(workers: list[subprocess.Popen[bytes]]) -> None:
    for worker in workers:
        if worker.poll() is None:
            worker.terminate()
            worker.wait(timeout=60)
