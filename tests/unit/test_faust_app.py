"""How our Faust apps are put together (no broker: nothing here connects)."""

import asyncio
import gc
import io
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import faust
import mode.utils.loops
import uvloop

from streams.app import faust_app
from streams.consumer import DELIVERED, FETCH_MAX_WAIT_MS, FETCH_MIN_BYTES
from streams.gc_tuning import schedule_full_collections
from streams.settings import Settings


async def _fetch_limits(app: faust.App) -> tuple[int, int]:
    """(max wait in ms, min bytes) of the fetches the app's consumer will send."""
    consumer = app.consumer._thread._create_consumer(loop=asyncio.get_running_loop())  # type: ignore[attr-defined]
    try:
        return int(consumer._fetch_max_wait_ms), int(consumer._fetch_min_bytes)
    finally:
        await consumer.stop()


def test_worker_fetches_wait_briefly_for_a_few_kilobytes_not_as_faust_does(
    tmp_path: Path,
) -> None:
    # a fetch for quiet partitions only (model.updates) must not hold back the busy ones, and
    # a steady stream must not be fetched a message or two at a time
    ours = faust_app(Settings(home=tmp_path), "fetch-wait-ours")
    plain = faust.App("fetch-wait-plain", broker="kafka://127.0.0.1:1", datadir=str(tmp_path))

    assert asyncio.run(_fetch_limits(ours)) == (FETCH_MAX_WAIT_MS, FETCH_MIN_BYTES) == (5, 65536)
    assert asyncio.run(_fetch_limits(plain)) == (1500, 1)  # Faust's (and aiokafka's) own


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


def test_full_collections_run_on_their_schedule_not_when_allocations_say() -> None:
    before = gc.get_threshold()
    scheduled = threading.Event()

    def watch(phase: str, info: dict) -> None:
        on_schedule = threading.current_thread().name == "full-collections"
        if phase == "stop" and info["generation"] == 2 and on_schedule:
            scheduled.set()

    gc.callbacks.append(watch)
    try:
        stop = schedule_full_collections(every_s=0.05)
        young_and_middle, oldest = gc.get_threshold()[:2], gc.get_threshold()[2]
        assert scheduled.wait(timeout=5.0)
        stop.set()
    finally:
        gc.callbacks.remove(watch)
        gc.set_threshold(*before)
    assert young_and_middle == before[:2]  # young generations as before
    assert oldest >= 2**31 - 1  # allocations never trigger a full collection


def test_the_worker_command_runs_its_app_on_uvloop(tmp_path: Path, monkeypatch: Any) -> None:
    # mode keeps the first loop a thread asks for, and building the app asks: a policy set
    # after that left the worker on asyncio's own loop while the comment said libuv's
    import streams.app
    import streams.gc_tuning
    import streams.wiring
    from tooling import cli

    served = SimpleNamespace(name="fraud-detector", version="7", fallback=False)
    monkeypatch.setattr(streams.wiring, "make_parts", lambda settings: _parts_serving(served))
    monkeypatch.setattr(streams.app, "create_topics", _no_topics)
    monkeypatch.setattr(streams.gc_tuning, "settle_collector", lambda: None)
    monkeypatch.setattr(cli, "_wait_for_state_and_registry", lambda settings: None)
    ran: list[type] = []

    class _Worker:
        def __init__(self, app: faust.App, **options: Any) -> None:
            self.app, self.stdout = app, io.StringIO()

        def execute_from_commandline(self) -> None:
            ran.append(type(self.app.loop))

    monkeypatch.setattr(faust, "Worker", _Worker)
    # a fresh process, as the command runs in: no loop kept by mode from the tests before
    monkeypatch.setattr(mode.utils.loops, "_current_loop", threading.local())
    args = SimpleNamespace(agents="score,model-updates", verbose=False)
    try:
        assert cli._worker(Settings(home=tmp_path, metrics_port=0), args) == 0  # type: ignore[arg-type]
    finally:
        asyncio.get_event_loop().close()
        asyncio.set_event_loop_policy(None)

    assert ran == [uvloop.Loop]


def _parts_serving(served: SimpleNamespace) -> SimpleNamespace:
    # the app is built, not run: a Redis client that is never asked
    unused = dict.fromkeys(("pipeline", "engine", "store", "quality", "metrics", "features"))
    return SimpleNamespace(models=SimpleNamespace(current=lambda: served), redis=None, **unused)


async def _no_topics(settings: Settings, groups: tuple[str, ...] = ()) -> list[str]:
    return []
