"""Create topics up front with fixed partition counts.

Faust crashes with ``PartitionsMismatch`` when an auto-created source topic has another
partition count than a table's changelog, so every topic is made here before agents start.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

from aiokafka import AIOKafkaClient
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.client import CoordinationType

from streams.startup import is_transient_kafka_error

logger = logging.getLogger(__name__)

TOPIC_ALREADY_EXISTS = 36


class TopicMismatch(RuntimeError):
    """An existing topic has another partition count than the one configured."""


@asynccontextmanager
async def admin_client(bootstrap: str, **options: Any) -> AsyncIterator[AIOKafkaAdminClient]:
    """A started admin client, closed on the way out."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **options)
    await admin.start()
    try:
        yield admin
    finally:
        await admin.close()


async def group_coordinator_ready(bootstrap: str, group: str) -> None:
    """Return once the broker names a coordinator for ``group``; raise what it answers
    otherwise (``GroupCoordinatorNotAvailableError``, retriable, while a fresh broker creates
    ``__consumer_offsets``: asking is what makes it create the topic)."""
    client = AIOKafkaClient(bootstrap_servers=bootstrap, request_timeout_ms=5_000)
    try:
        await client.bootstrap()
        await client.coordinator_lookup(CoordinationType.GROUP, group)
    finally:
        await client.close()


async def ensure_topics(bootstrap: str, partitions: Mapping[str, int]) -> list[str]:
    """Create the missing topics; check existing ones. Returns the names that were created."""
    async with admin_client(bootstrap, request_timeout_ms=10_000) as admin:
        existing = {
            name: count
            for name, count in (await _partition_counts(admin)).items()
            if name in partitions
        }
        for name, count in existing.items():
            if count != partitions[name]:
                raise TopicMismatch(
                    f"topic {name} has {count} partitions, {partitions[name]} configured"
                )
        missing = [name for name in partitions if name not in existing]
        created = []
        if missing:
            new_topics = [
                NewTopic(name, partitions[name], replication_factor=1) for name in missing
            ]
            response = (await admin.create_topics(new_topics)).to_object()
            for result in response.get("topic_errors", response.get("topics", [])):
                name, code = result.get("topic", result.get("name")), result["error_code"]
                if code == 0:
                    created.append(name)
                elif code != TOPIC_ALREADY_EXISTS:  # someone else made it since we looked
                    raise TopicMismatch(f"could not create topic {name}: {result}")
            await _until_visible(admin, missing)
            logger.info("created topics %s", created)
        return created


async def _until_visible(
    admin: AIOKafkaAdminClient, names: list[str], timeout: float = 30.0
) -> None:
    """Wait until the broker's metadata lists the topics (it lags the controller briefly)."""

    async def invisible() -> set[str]:
        return set(names) - set(await _partition_counts(admin))

    def failure(left: set[str]) -> Exception:
        return TopicMismatch(f"topics {sorted(left)} not visible {timeout:.0f}s after creation")

    await _poll_until(invisible, timeout, 0.1, failure)


async def _poll_until(
    missing: Callable[[], Awaitable[set[str]]],
    timeout: float,
    every: float,
    failure: Callable[[set[str]], Exception],
) -> None:
    """Ask ``missing`` every ``every`` seconds until it names nothing; past ``timeout``,
    raise ``failure`` of what it still names."""
    deadline = asyncio.get_running_loop().time() + timeout
    while left := await missing():
        if asyncio.get_running_loop().time() > deadline:
            raise failure(left)
        await asyncio.sleep(every)


async def _partition_counts(admin: AIOKafkaAdminClient) -> dict[str, int]:
    """Partition counts of all topics (naming topics in a metadata request auto-creates them)."""
    counts = {}
    for topic in await admin.describe_topics(None):
        if topic["error_code"] == 0:
            counts[topic["topic"]] = len(topic["partitions"])
    return counts


async def until_consuming(bootstrap: str, groups: list[str], timeout: float = 120.0) -> None:
    """Wait until each consumer group is ``Stable`` with a member: its workers have joined
    and hold their partitions, so what is sent next is read at once, not queued behind a
    worker's start (several seconds here: imports, the model, the group join)."""

    def failure(left: set[str]) -> Exception:
        return TimeoutError(
            f"no consumer in group(s) {', '.join(sorted(left))} after {timeout:.0f}s"
        )

    async with admin_client(bootstrap, request_timeout_ms=10_000) as admin:

        async def without_consumer() -> set[str]:
            return {name for name in groups if not await _stable_with_member(admin, name)}

        async def without_consumer_yet() -> set[str]:
            try:
                return await without_consumer()
            except Exception as error:  # a fresh broker: no coordinator for a moment
                if not is_transient_kafka_error(error):
                    raise
                return set(groups)

        await _poll_until(without_consumer_yet, timeout, 0.2, failure)


async def _stable_with_member(admin: AIOKafkaAdminClient, name: str) -> bool:
    # one group a request: aiokafka 0.14 reads a DescribeGroups v3 answer with the v2 layout
    # (no authorized_operations after each group), so a second group in the same answer is
    # misread; the last group's extra field is ignored
    [response] = await admin.describe_consumer_groups([name])
    return any(
        group["group"] == name and group["state"] == "Stable" and group["members"]
        for group in response.to_object()["groups"]
    )


async def topic_partitions(bootstrap: str) -> dict[str, int]:
    """Partition counts of every topic on the broker."""
    async with admin_client(bootstrap) as admin:
        return await _partition_counts(admin)
