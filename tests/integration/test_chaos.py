"""Fault injection on the real services (the issue's sizes): a scoring worker killed with
SIGKILL every ~20 s during 100,000 transactions, and 10,000 malformed or hostile messages in
the stream. Nothing may be lost; duplicates are counted, not forbidden (at-least-once: a
worker killed after producing a batch but before committing its offsets scores it again)."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from pathlib import Path

import pytest

from streams.chaos import TABLE_HEAD, hostile, kill_nine
from streams.settings import Settings
from tests.conftest import Endpoints
from tests.integration.test_streaming import register_two_versions


def chaos_settings(services: Endpoints, tmp_path: Path) -> Settings:
    settings = services.settings(home=tmp_path, model_name=f"it-chaos-{uuid.uuid4().hex[:8]}")
    register_two_versions(settings)  # a real champion (LightGBM) scores, not the rules
    return dataclasses.replace(settings, partitions=3)


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
    outcome = asyncio.run(hostile(chaos_settings(services, tmp_path), tmp_path))
    print(f"\n{TABLE_HEAD}\n{outcome.row()}")  # noqa: T201

    assert outcome.sent == 30_000 and outcome.valid == 20_000
    assert outcome.lost == 0 and outcome.scored == 20_000
    assert outcome.dead_letters == 10_000
    assert outcome.note == (
        "worker alive throughout; 0 dead letters without a reason; 0 card numbers in them"
    )
