"""What the scorer relies on of Faust's internals, pinned in one place (``streams/consumer.py``
is the only module that touches them). An upgrade of faust-streaming fails here first, and
the test's name says which behaviour moved. No broker: the app's consumer is built, never
started."""

from __future__ import annotations

import asyncio
import inspect
from pathlib import Path

import faust
from faust.transport.conductor import Conductor
from faust.transport.drivers import aiokafka as faust_kafka
from faust.types import TP, Message

from streams.app import faust_app
from streams.consumer import aiokafka_producer, read_offset
from streams.settings import Settings

PINNED = "0.15.3"


def test_faust_is_the_version_these_internals_were_read_from() -> None:
    # on an upgrade: run this file, re-read each internal below in the new Faust, then move
    # the pin (and pyproject.toml's)
    assert faust.__version__ == PINNED


def test_the_private_hooks_we_override_are_still_there() -> None:
    assert callable(Conductor._compile_message_handler)  # per-message delivery into inboxes
    assert callable(faust_kafka.AIOKafkaConsumerThread._create_worker_consumer)  # fetch limits
    assert callable(faust_kafka.Consumer._new_consumer_thread)
    assert "timeout" in inspect.signature(faust_kafka.Consumer.wait_first).parameters
    assert faust_kafka.Transport.Consumer is faust_kafka.Consumer  # what our transport replaces


def message(offset: int) -> Message:
    return Message("tx", 0, offset, 0.0, 0, {}, b"k", b"v", None)


def test_a_taken_batch_is_in_work_and_its_acknowledgement_makes_its_offsets_committable(
    tmp_path: Path,
) -> None:
    app = faust_app(Settings(home=tmp_path), "faust-contract")
    inbox = app.inbox(app.topic("tx", value_serializer="raw"), max_batch=3, within=0.0)
    consumer, tp = app.consumer, TP("tx", 0)
    consumer._committed_offset[tp] = 10  # what Faust read from the group at assignment
    asyncio.run(app.topics._update_indices())  # at subscription: the inbox's topic is acked
    for offset in (10, 11, 12):
        assert app.topics.on_message(message(offset)) is not None  # into the inbox

    batch = asyncio.run(inbox.take())
    in_work = {m.offset for m in consumer._unacked_messages}  # a rebalance waits for these
    before = consumer._new_offset(tp)
    inbox.acknowledge(batch)

    assert [m.offset for m in batch] == [10, 11, 12]
    assert (in_work, before) == ({10, 11, 12}, None)
    assert consumer._new_offset(tp) == 13  # what Faust's next commit sends


def test_the_read_offset_and_the_producer_accessor_are_where_we_read_them(tmp_path: Path) -> None:
    app = faust_app(Settings(home=tmp_path), "faust-contract-offsets")
    tp = TP("tx", 0)

    assert read_offset(app.consumer, tp) is None
    app.consumer._read_offset[tp] = 41  # Faust sets it for each message its consumer reads
    assert read_offset(app.consumer, tp) == 41
    assert callable(app.producer._ensure_producer)
    assert aiokafka_producer.__doc__ is not None
