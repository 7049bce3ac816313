"""Look for full card numbers in what the system wrote: files (Parquet read as its values),
topics and Redis. The security check of the test suite runs it over everything the suite
wrote; a finding is reported masked, so the report itself holds no card number.

Redis's snapshot files (``*.rdb``, also the base of its append-only file) are compressed:
their bytes say nothing of the values (a float's digits split from its decimal point by a
compression boundary once read as a card number), so Redis is read through its server
instead (``scan_redis``)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from schemas.pan import find_pans
from schemas.topics import LABELS, TRANSACTIONS
from streams.kafka_admin import topic_partitions

CHUNK = 16 * 2**20
TAIL = 64  # bytes of a chunk read again with the next: longer than any card number
NUMBER_BYTES = frozenset(b"0123456789 .-")
COMPRESSED = (".rdb",)


@dataclasses.dataclass(frozen=True)
class Finding:
    where: str  # a file, or topic[partition]@offset
    masked: str  # the card number with only its last four digits


@dataclasses.dataclass(frozen=True)
class ScanReport:
    findings: list[Finding]
    files: int
    messages: int


def input_topic(topic: str) -> bool:
    """Where producers write (a hostile one may send a card number there; the system's job is
    to keep it out of everything it writes), with any prefix."""
    return topic.endswith((TRANSACTIONS.name, LABELS.name)) and not topic.endswith(
        (".scored", ".dlq")
    )


def scan_files(roots: Iterable[Path], skip: Callable[[Path], bool] = lambda _: False) -> ScanReport:
    findings, files = [], 0
    for root in roots:
        paths = (p for p in root.rglob("*") if p.is_file() and p.suffix not in COMPRESSED)
        for path in sorted(p for p in paths if not skip(p)):
            files += 1
            findings += [Finding(str(path), masked) for masked in _file_pans(path)]
    return ScanReport(findings, files, 0)


def _file_pans(path: Path) -> list[str]:
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            rows = pq.read_table(path).to_pylist()
        except Exception:  # not a readable Parquet file: scan its bytes
            return _byte_pans(path)
        return find_pans(orjson.dumps(rows, default=str))
    return _byte_pans(path)


def _byte_pans(path: Path) -> list[str]:
    found, tail = [], b""
    with path.open("rb") as data:
        while chunk := data.read(CHUNK):
            found += find_pans(tail + chunk)
            tail = carried(chunk)  # a number across the boundary is found in the next read
    return sorted(set(found)) if found else []


def carried(chunk: bytes, size: int = TAIL) -> bytes:
    """The end of ``chunk`` read again with the next one. It must not start inside a run of
    digits (or of a decimal's '.', spaces, dashes): cut there, a decimal's fraction lost its
    point and read as a card number. A run longer than the tail is no card number anyway.

    >>> carried(b'"x":0.5824175824175825,"y"', size=20)
    b',"y"'
    >>> carried(b'"card_id":"41111111', size=12)
    b'd":"41111111'
    """
    tail = chunk[-size:]
    start = 0
    if len(chunk) > size and chunk[-size - 1] in NUMBER_BYTES:
        while start < len(tail) and tail[start] in NUMBER_BYTES:
            start += 1
    return tail[start:]


def scan_redis(url: str, batch: int = 5_000) -> ScanReport:
    """Every key of the Redis at ``url`` and every string value (the feature state, marks,
    idempotency answers, the challenger), read through the server, ``batch`` keys a round
    trip (a suite leaves millions of keys)."""
    import redis

    client = redis.Redis.from_url(url)
    findings: list[Finding] = []
    keys = 0
    try:
        cursor = 0
        while True:
            cursor, found = client.scan(cursor, count=batch)
            keys += len(found)
            pipe = client.pipeline(transaction=False)
            for key in found:
                pipe.get(key)
            values = pipe.execute(raise_on_error=False)  # a key that is no string: an error
            for key, value in zip(found, values, strict=True):
                name = key if isinstance(key, bytes) else str(key).encode()
                where = f"redis:{name[:80]!r}"
                findings += [Finding(where, masked) for masked in find_pans(name)]
                if isinstance(value, bytes):
                    findings += [Finding(where, masked) for masked in find_pans(value)]
            if cursor == 0:
                break
    finally:
        client.close()
    return ScanReport(findings, keys, 0)


async def scan_topics(bootstrap: str, skip: Callable[[str], bool] = input_topic) -> ScanReport:
    """Every message of every topic but the internal ones and ``skip``'s, from the start."""
    counts = await topic_partitions(bootstrap)
    topics = sorted(t for t in counts if not t.startswith("_") and not skip(t))
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, max_partition_fetch_bytes=8 << 20
    )  # fewer round trips: a scan reads gigabytes
    await consumer.start()
    findings: list[Finding] = []
    messages = 0
    try:
        for topic in topics:  # one at a time: a partition's end is known before reading it
            partitions = [TopicPartition(topic, p) for p in range(counts[topic])]
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            ends = await consumer.end_offsets(partitions)
            idle = 0
            while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
                batches = await consumer.getmany(timeout_ms=1_000, max_records=10_000)
                for tp, batch in batches.items():
                    for message in batch:
                        messages += 1
                        where = f"{tp.topic}[{tp.partition}]@{message.offset}"
                        for part in (message.key, message.value):
                            found = find_pans(part or b"")
                            findings += [Finding(where, masked) for masked in found]
                idle = 0 if batches else idle + 1
                if idle >= 30:
                    raise RuntimeError(f"{topic}: no records for 30 s before its end offsets")
    finally:
        await consumer.stop()
    return ScanReport(findings, 0, messages)
