"""Sources and sinks for testing agents without a broker: an inbox of seeded batches, a
message as Faust's consumer hands it over, collecting senders, a saver that waits."""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import dataclasses
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from scoring.pipeline import BatchResult

NOW = datetime(2026, 1, 5, tzinfo=UTC)


@dataclasses.dataclass
class Message:
    value: bytes | None
    topic: str
    partition: int
    offset: int
    timestamp: float = NOW.timestamp()


class Inbox:
    """Hands out the seeded batches in order; records what is acknowledged."""

    def __init__(self, batches: list[list[Message]]) -> None:
        self.batches = collections.deque(batches)
        self.acknowledged: list[list[int]] = []

    async def take(self) -> list[Message]:
        return self.batches.popleft()

    def acknowledge(self, batch: list[Message]) -> None:
        self.acknowledged.append([message.offset for message in batch])


class Sent:
    """An async sender that keeps what it was given."""

    def __init__(self) -> None:
        self.items: list[Any] = []

    async def __call__(self, item: Any) -> None:
        self.items.append(item)


class Outputs(Sent):
    async def __call__(self, messages: list[tuple[bytes, bytes]]) -> None:
        self.items.extend(messages)


class Observer:
    def __init__(self) -> None:
        self.batches: list[BatchResult] = []
        self.stored_count = 0

    def observe_batch(self, result: BatchResult, now: datetime) -> None:
        self.batches.append(result)

    def stored(self) -> None:
        self.stored_count += 1


class HeldSaver(concurrent.futures.ThreadPoolExecutor):
    """One saver thread whose saves wait until ``release`` (then all go, in order)."""

    def __init__(self) -> None:
        super().__init__(1)
        self.go = threading.Event()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        def held() -> Any:
            self.go.wait(10)
            return fn(*args, **kwargs)

        return super().submit(held)

    def release(self) -> None:
        self.go.set()


async def turns(count: int = 20) -> None:
    for _ in range(count):
        await asyncio.sleep(0)
