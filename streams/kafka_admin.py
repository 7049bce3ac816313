"""Create topics up front with fixed partition counts.

Faust crashes with ``PartitionsMismatch`` when an auto-created source topic has another
partition count than a table's changelog, so every topic is made here before agents start.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

logger = logging.getLogger(__name__)


class TopicMismatch(RuntimeError):
    """An existing topic has another partition count than the one configured."""


async def ensure_topics(bootstrap: str, partitions: Mapping[str, int]) -> list[str]:
    """Create the missing topics; check existing ones. Returns the names that were created."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    await admin.start()
    try:
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
        if missing:
            new_topics = [
                NewTopic(name, partitions[name], replication_factor=1) for name in missing
            ]
            response = (await admin.create_topics(new_topics)).to_object()
            for result in response.get("topic_errors", response.get("topics", [])):
                # 36 = TOPIC_ALREADY_EXISTS: another worker made it between our look and create
                if result["error_code"] not in (0, 36):
                    raise TopicMismatch(f"could not create topic {result['topic']}: {result}")
            logger.info("created topics %s", missing)
        return missing
    finally:
        await admin.close()


async def _partition_counts(admin: AIOKafkaAdminClient) -> dict[str, int]:
    """Partition counts of all topics (naming topics in a metadata request auto-creates them)."""
    counts = {}
    for topic in await admin.describe_topics(None):
        if topic["error_code"] == 0:
            counts[topic["topic"]] = len(topic["partitions"])
    return counts
