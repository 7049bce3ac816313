"""`fraudstream simulate --kafka`, as the compose stack's simulator runs it: every transaction
and label reaches the topics of the configured prefix, and its log carries no progress bar
(no carriage returns or cursor codes) when it is not a terminal."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path

from schemas.topics import LABELS, TRANSACTIONS
from simulator.generator import SimulationConfig, simulate
from streams.settings import to_env
from tests.conftest import Endpoints
from tests.integration.test_streaming import Reader, isolated

SIMULATION = SimulationConfig(seed=5, days=12, customers=60, terminals=30)


def test_simulate_publishes_everything_to_the_prefixed_topics_without_a_bar(
    services: Endpoints, tmp_path: Path
) -> None:
    settings = isolated(services, tmp_path)
    expected = simulate(SIMULATION)
    ran = subprocess.run(
        [sys.executable, "-m", "tooling.cli", "simulate", "--kafka", "--days", "12",
         "--customers", "60", "--terminals", "30", "--seed", "5", "--rate", "100000"],
        env=os.environ | to_env(settings), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "\r" not in ran.stdout + ran.stderr and "\x1b" not in ran.stdout + ran.stderr

    async def read(topic: str, count: int) -> list[bytes]:
        async with Reader(settings, topic) as reader:
            return await reader.read(count, timeout=60.0)

    # labels go out when due (a week after their transaction): those due within the 12 days
    said = re.search(r"published (\d+) transactions and (\d+) labels", ran.stdout + ran.stderr)
    assert said is not None and int(said.group(1)) == len(expected.transactions)
    assert 0 < int(said.group(2)) < len(expected.labels)
    transactions = asyncio.run(read(TRANSACTIONS.name, len(expected.transactions)))
    labels = asyncio.run(read(LABELS.name, int(said.group(2))))
    assert (len(transactions), len(labels)) == (len(expected.transactions), int(said.group(2)))
