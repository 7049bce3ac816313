"""How our Faust apps are put together (no broker: nothing here connects)."""

import asyncio
from pathlib import Path

import faust

from streams.app import FETCH_MAX_WAIT_MS, faust_app
from streams.settings import Settings


async def _fetch_wait_ms(app: faust.App) -> int:
    consumer = app.consumer._thread._create_consumer(loop=asyncio.get_running_loop())  # type: ignore[attr-defined]
    try:
        return int(consumer._fetch_max_wait_ms)
    finally:
        await consumer.stop()


def test_worker_fetches_wait_briefly_not_faust_s_one_and_a_half_seconds(tmp_path: Path) -> None:
    # a fetch for quiet partitions only (model.updates) must not hold back the busy ones
    ours = faust_app(Settings(home=tmp_path), "fetch-wait-ours")
    plain = faust.App("fetch-wait-plain", broker="kafka://127.0.0.1:1", datadir=str(tmp_path))

    assert asyncio.run(_fetch_wait_ms(ours)) == FETCH_MAX_WAIT_MS == 10
    assert asyncio.run(_fetch_wait_ms(plain)) == 1500  # what Faust sets; the reason for ours
