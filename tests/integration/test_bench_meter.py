"""The benchmark's CPU meter on the real services: it finds the broker and Redis that
``fraudstream services up`` runs, and counts the forks Redis makes meanwhile."""

from __future__ import annotations

import os
import time

import pytest
import redis

from tests.conftest import Endpoints
from tooling.bench import CpuMeter


def test_the_meter_reports_the_local_broker_and_redis_and_counts_a_fork(
    services: Endpoints,
) -> None:
    if services.source != "local services":
        pytest.skip("the broker and Redis are not this machine's own processes")
    client = redis.Redis.from_url(services.redis_url)
    try:
        with CpuMeter.of_run(services.settings(), {"nothing measured": os.getpid()}) as meter:
            forks = client.info("stats")["total_forks"]
            # a fork, as a log rewrite makes (after the rewrite, if one is running now)
            client.bgsave(schedule=True)
            deadline = time.monotonic() + 30
            while (
                client.info("stats")["total_forks"] == forks
                or client.info("persistence")["rdb_bgsave_in_progress"]
            ):
                assert time.monotonic() < deadline, "Redis did not take its snapshot"
                time.sleep(0.05)
    finally:
        client.close()
    rows = {row.name: row for row in meter.results("here")}
    assert {
        "CPU here: nothing measured",
        "CPU here: load generator (this process)",
        "CPU here: Kafka broker",
        "CPU here: Redis",
        "machine busy here",
    } <= set(rows)
    # at least the snapshot's fork; a log rewrite Redis starts by itself meanwhile adds one
    assert rows["Redis forks (log rewrites) here"].value >= 1
