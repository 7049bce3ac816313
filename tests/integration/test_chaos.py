"""Fault injection on the real services, at the issue's sizes: a scoring worker killed with
SIGKILL every ~20 s during 100,000 transactions; the broker, Redis and the MLflow server each
stopped and restarted under load; 10,000 malformed or hostile messages in the stream; a
backlog of 1,000,000. Nothing may be lost; duplicates are counted, not forbidden
(at-least-once: a worker killed after producing a batch but before committing its offsets
scores it again). Part of ``make test``; ``make chaos`` runs only these."""

from __future__ import annotations

import asyncio
import math
import uuid
from pathlib import Path

import pytest
import redis

from streams.settings import Settings
from tests.conftest import Endpoints
from tests.integration.test_streaming import register_two_versions
from tooling.chaos import (
    TABLE_HEAD,
    backlog,
    bad_clocks,
    broker_restart,
    hostile,
    kill_nine,
    mlflow_outage,
    redis_outage,
)

pytestmark = pytest.mark.chaos


def chaos_settings(services: Endpoints, tmp_path: Path, champion: bool = True) -> Settings:
    settings = services.settings(home=tmp_path, model_name=f"it-chaos-{uuid.uuid4().hex[:8]}")
    if champion:  # a real champion (LightGBM) scores, not the rules
        register_two_versions(settings)
    return settings.replace(partitions=3)


@pytest.mark.timeout(900)
def test_kill_9_every_20_seconds_loses_nothing(services: Endpoints, tmp_path: Path) -> None:
    outcome = asyncio.run(kill_nine(chaos_settings(services, tmp_path), tmp_path, 100_000))
    print(f"\n{TABLE_HEAD}\n{outcome.row()}")  # noqa: T201

    assert outcome.sent == outcome.valid == 100_000
    assert outcome.lost == 0 and outcome.scored == 100_000
    assert int(outcome.note.split()[0]) >= 2  # "N kills at ...": ~50 s of load, one each 20 s
    assert outcome.fallback == 0  # the champion decided everything, across restarts


@pytest.mark.timeout(600)
def test_hostile_messages_all_become_dead_letters_and_crash_nothing(
    services: Endpoints, tmp_path: Path
) -> None:
    client = redis.Redis.from_url(services.redis_url)
    left_before = sum(1 for _ in client.scan_iter("chaos-hostile-*", count=10_000))
    outcome = asyncio.run(hostile(chaos_settings(services, tmp_path), tmp_path))
    print(f"\n{TABLE_HEAD}\n{outcome.row()}")  # noqa: T201

    assert outcome.sent == 30_000 and outcome.valid == 20_000
    assert outcome.lost == 0 and outcome.scored == 20_000
    # the run's feature state (20,000 transactions' keys) is gone from the shared Redis
    assert sum(1 for _ in client.scan_iter("chaos-hostile-*", count=10_000)) == left_before
    client.close()
    assert outcome.dead_letters == 10_000
    assert outcome.note == (
        "worker alive throughout; 0 dead letters without a reason; 0 card numbers in them"
    )


@pytest.mark.timeout(600)
def test_bad_clocks_change_no_other_transaction_and_each_is_accounted_for(
    services: Endpoints, tmp_path: Path
) -> None:
    outcome = asyncio.run(bad_clocks(chaos_settings(services, tmp_path), tmp_path))
    print(f"\n{TABLE_HEAD}\n{outcome.row()}")  # noqa: T201

    assert outcome.sent == 21_500 and outcome.valid == 20_500  # the late ones are scored
    assert outcome.lost == 0 and outcome.scored == 20_500
    assert outcome.measures == {"future": 500, "too_old": 500, "flagged": 500, "changed": 0}
    assert outcome.dead_letters == 1_000


@pytest.mark.timeout(600)
def test_a_broker_restart_mid_run_loses_nothing(services: Endpoints, tmp_path: Path) -> None:
    outcome = asyncio.run(broker_restart(chaos_settings(services, tmp_path), tmp_path))
    print(f"\n{TABLE_HEAD}\n{outcome.row()}")  # noqa: T201

    assert outcome.sent == outcome.valid == 60_000
    assert outcome.lost == 0 and outcome.scored == 60_000
    assert outcome.fallback == 0
    assert outcome.measures == {"alive": 1.0}
    assert math.isfinite(outcome.recovery_s)  # the model decided outputs after the restart


@pytest.mark.timeout(600)
def test_a_redis_outage_degrades_scoring_and_loses_no_state(
    services: Endpoints, tmp_path: Path
) -> None:
    outcome = asyncio.run(redis_outage(chaos_settings(services, tmp_path), tmp_path))
    print(f"\n{TABLE_HEAD}\n{outcome.row()}")  # noqa: T201

    assert outcome.sent == outcome.valid == 60_000
    assert outcome.lost == 0 and outcome.scored == 60_000
    assert outcome.measures["alive"] == 1.0
    degraded = outcome.measures["degraded"]
    assert degraded > 0  # ~10 s of the stream was scored from memory by the rules...
    assert outcome.fallback == degraded  # ...and only that: the model decided the rest
    assert outcome.measures["without_state"] == 0  # the held writes all reached Redis
    assert math.isfinite(outcome.recovery_s)  # and the model decided again once it was back


@pytest.mark.timeout(900)
def test_an_mlflow_outage_keeps_the_cached_model_and_applies_the_update_on_return(
    services: Endpoints, tmp_path: Path
) -> None:
    settings = chaos_settings(services, tmp_path, champion=False)  # it has its own registry
    outcome = asyncio.run(mlflow_outage(settings, tmp_path))
    print(f"\n{TABLE_HEAD}\n{outcome.row()}")  # noqa: T201

    assert outcome.sent == outcome.valid >= 100_000  # more while it waited for the update
    assert outcome.lost == 0 and outcome.scored == outcome.sent
    assert outcome.fallback == 0  # the cached model decided throughout, even after the restart
    assert sorted(outcome.measures) == ["v1", "v2"]  # the cached version 1, then version 2
    assert 0 < outcome.recovery_s < 30  # version 2 only after MLflow returned, soon after


@pytest.mark.timeout(1800)
def test_a_backlog_of_a_million_transactions_drains_without_loss(
    services: Endpoints, tmp_path: Path
) -> None:
    outcome = asyncio.run(backlog(chaos_settings(services, tmp_path), tmp_path))
    print(f"\n{TABLE_HEAD}\n{outcome.row()}")  # noqa: T201

    assert outcome.sent == outcome.valid == 1_000_000
    assert outcome.lost == 0 and outcome.scored == 1_000_000
    assert outcome.fallback == 0 and outcome.duplicated == 0  # nothing crashed, nothing redone
    assert outcome.measures["alive"] == 1.0
    assert outcome.measures["lag_peak"] > 500_000  # the lag was visible while it waited
    assert outcome.measures["lag_end"] == 0
    # the partitions were drained in step: features as the offline replay's (issue 33)
    assert (outcome.measures["sampled"], outcome.measures["differing"]) == (20_000, 0)
