"""Security check, run after every other test: no full card number in any topic, log or file
the system wrote during the suite (the streaming tests send hostile input that holds one).

Scanned: every topic but the producers' input topics (``transactions``, ``labels``, with any
prefix: what a hostile producer sent is there by definition), every file under pytest's
temporary directories (worker, API and Prometheus logs, training stores, reports, demo data)
and under FRAUD_HOME (MLflow store and artifacts, Redis's append-only file, model caches) but
the broker's own segment files (their topics are read through the broker instead) and Redis's
compressed snapshots (its keys and values are read through the server instead).
"""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from streams.kafka_admin import ensure_topics
from streams.settings import Settings
from tests.conftest import Endpoints
from tooling.pan_scan import scan_files, scan_redis, scan_topics


async def send_raw(bootstrap: str, topic: str, value: bytes) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic, value)
    finally:
        await producer.stop()


@pytest.mark.last
@pytest.mark.timeout(1200)  # it reads everything the suite wrote: gigabytes, millions of keys
def test_no_card_number_in_any_topic_log_or_file_the_suite_wrote(
    services: Endpoints, tmp_path_factory: pytest.TempPathFactory
) -> None:
    settings = Settings.from_env(os.environ)
    segments = settings.kafka_data_dir.absolute()
    roots = [tmp_path_factory.getbasetemp(), settings.home.absolute()]

    def broker_segment(path: Path) -> bool:
        return path.absolute().is_relative_to(segments)

    # a control the scan must find: a card number planted in a topic of its own
    control = f"pan-scan-control-{uuid.uuid4().hex[:8]}"
    asyncio.run(ensure_topics(services.kafka_bootstrap, {control: 1}))
    asyncio.run(send_raw(services.kafka_bootstrap, control, b'{"card_id":"4000056655665556"}'))

    files = scan_files([root for root in roots if root.exists()], skip=broker_segment)
    topics = asyncio.run(scan_topics(services.kafka_bootstrap))

    planted = [f for f in topics.findings if f.where.startswith(f"{control}[")]
    assert [f.masked for f in planted] == ["************5556"]
    state = scan_redis(services.redis_url)
    findings = files.findings + state.findings + [f for f in topics.findings if f not in planted]
    assert not findings, "card numbers (masked here) written by the system:\n" + "\n".join(
        f"{finding.where}: {finding.masked}" for finding in findings[:50]
    )
    assert files.files > 0 and topics.messages > 0  # it looked at something
    print(f"scanned {files.files} files and {topics.messages} messages: no card number")  # noqa: T201
