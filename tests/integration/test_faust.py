"""A Faust agent reads one topic and writes another, on topics made up front."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from streams.kafka_admin import TopicMismatch, ensure_topics, topic_partitions
from tests.conftest import Endpoints
from tooling.smoke import run_smoke


def test_faust_agent_echoes_every_record_exactly_once(services: Endpoints) -> None:
    result = asyncio.run(run_smoke(services.settings(), count=500, partitions=3, timeout=90))

    assert (result.sent, result.received, result.missing, result.duplicates, result.not_echoed) == (
        500,
        500,
        0,
        0,
        0,
    )


def test_topics_are_created_with_fixed_partitions_and_a_mismatch_is_refused(
    kafka_bootstrap: str,
) -> None:
    topic = f"it.partitions.{uuid.uuid4().hex[:8]}"

    assert asyncio.run(ensure_topics(kafka_bootstrap, {topic: 4})) == [topic]
    assert asyncio.run(ensure_topics(kafka_bootstrap, {topic: 4})) == []  # idempotent
    assert asyncio.run(topic_partitions(kafka_bootstrap))[topic] == 4
    with pytest.raises(TopicMismatch, match="has 4 partitions, 6 configured"):
        asyncio.run(ensure_topics(kafka_bootstrap, {topic: 6}))
