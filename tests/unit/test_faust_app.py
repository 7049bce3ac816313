"""How our Faust apps are put together (no broker: nothing here connects)."""

import asyncio
from pathlib import Path
from types import SimpleNamespace

import faust

from streams.app import faust_app
from streams.consumer import DELIVERED, FETCH_MAX_WAIT_MS
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


def test_the_conductor_hands_inbox_topics_to_their_inbox_and_the_rest_to_faust(
    tmp_path: Path,
) -> None:
    app = faust_app(Settings(home=tmp_path), "inbox-routing")
    inbox = app.inbox(app.topic("tx", value_serializer="raw"), max_batch=10, within=0.0)
    ours = SimpleNamespace(topic="tx", partition=0, offset=7)
    theirs = SimpleNamespace(topic="labels", partition=0, offset=3)

    delivered = app.topics.on_message(ours)
    handed_on = app.topics.on_message(theirs)
    handed_on.close()  # Faust's own delivery: a coroutine for its drain loop to run

    assert delivered is DELIVERED
    assert inbox.messages == [ours]
    assert asyncio.iscoroutine(handed_on)


def test_the_drain_loop_makes_no_task_for_an_inbox_delivery(tmp_path: Path) -> None:
    app = faust_app(Settings(home=tmp_path), "inbox-drain")
    suspended = asyncio.Event()

    async def run() -> tuple[object, bool]:
        waiting = suspended.wait()
        result = await app.consumer.wait_first(DELIVERED, waiting)
        return result, waiting.cr_frame is None  # closed without ever running

    assert asyncio.run(run()) == (None, True)
