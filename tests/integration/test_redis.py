"""Redis is a real server: values, expiry and pipelines behave as the feature store needs."""

from __future__ import annotations

import itertools
import socket
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
import redis

from retraining.dataset import feature_inputs
from scoring.adapters import redis_store
from scoring.adapters.redis_codec import parse_history
from scoring.adapters.redis_store import RETRY_AFTER_S, RedisFeatureStore, feature_client
from scoring.features import FeatureEngine, FeatureInput
from scoring.features.definitions import SECONDS_PER_DAY
from scoring.features.store import InMemoryFeatureStore, StateWrites
from simulator.generator import SimulationConfig, simulate
from tests.conftest import Endpoints
from tooling.bench import delete_keys
from tooling.chaos import own_services
from tooling.services.redis import LocalRedis


def test_set_get_and_pipelined_hash_updates(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    prefix = f"it:{uuid.uuid4().hex[:8]}"
    try:
        assert client.set(f"{prefix}:plain", b"value", ex=60)
        assert client.get(f"{prefix}:plain") == b"value"
        assert 0 < client.ttl(f"{prefix}:plain") <= 60

        pipe = client.pipeline(transaction=True)
        for amount in (10, 20, 30):
            pipe.hincrbyfloat(f"{prefix}:card", "sum", amount)
            pipe.hincrby(f"{prefix}:card", "count", 1)
        pipe.execute()
        assert client.hgetall(f"{prefix}:card") == {b"sum": b"60", b"count": b"3"}
    finally:
        client.delete(f"{prefix}:plain", f"{prefix}:card")
        client.close()


@pytest.mark.parametrize("cached", [True, False])
def test_an_outage_degrades_reads_holds_writes_and_ends_in_the_same_state(
    services: Endpoints, tmp_path: Path, cached: bool
) -> None:
    """The feature store with its own Redis stopped for a while mid-stream: the batches in
    between are computed from memory (flagged), their writes wait, and once Redis is back
    the state and every later feature row are exactly those of a run without the outage.
    ``cached=False``: the worker had just forgotten its cards (a rebalance), so it knew none
    of their histories while Redis was away; its held writes merge into what Redis holds."""
    settings = own_services(services.settings(), tmp_path / "redis-home", "redis")
    server = LocalRedis(settings)
    server.up()
    client = feature_client(settings.redis_url)
    try:
        simulation = simulate(SimulationConfig(seed=5, days=12, customers=120, terminals=60))
        inputs = feature_inputs(simulation.transactions)
        batches = [inputs[i : i + 150] for i in range(0, len(inputs), 150)]
        assert len(batches) >= 12

        steady = FeatureEngine(RedisFeatureStore(client, prefix="steady"))
        expected = [steady.process(batch) for batch in batches]

        store = RedisFeatureStore(client, prefix="outage")
        engine = FeatureEngine(store)
        rows = [engine.process(batch) for batch in batches[:4]]
        server.down()
        if not cached:
            store.forget()
        for batch in batches[4:8]:
            batch_rows, writes = engine.compute(batch)
            assert writes.from_memory  # flagged: the rules decide these, not the model
            engine.save(writes)
            rows.append(batch_rows)
        assert store.held_transactions == sum(len(b) for b in batches[4:8])
        with pytest.raises(redis.ConnectionError):  # a label's join never guesses
            store.read(["tx:any"], ())
        server.up()
        time.sleep(RETRY_AFTER_S)  # the store asks Redis again once this has passed
        rows += [engine.process(batch) for batch in batches[8:]]

        assert store.held_transactions == 0 and store.down_since is None
        for got, want in zip(rows[:4] + rows[8:], expected[:4] + expected[8:], strict=True):
            np.testing.assert_array_equal(got, want)
        assert any(
            not np.array_equal(got, want)
            for got, want in zip(rows[4:8], expected[4:8], strict=True)
        )  # no terminal counters while away: those rows did differ
        assert _state(client, "outage") == _state(client, "steady")
    finally:
        client.close()
        server.down()


def test_a_batch_reads_the_cards_of_the_one_before_while_that_is_being_stored(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The scorer stores a batch in a thread while it computes the next. A worker's card
    cache holds each batch's histories as computed, so the next batch need not wait for a
    shared card's store; the rows and the stored state are those of one batch after the
    other. A store without the cache, or a cache just emptied (full, or forgotten), waits."""
    simulation = simulate(SimulationConfig(seed=8, days=10, customers=60, terminals=30))
    inputs = feature_inputs(simulation.transactions)
    batches = [inputs[i : i + 40] for i in range(0, len(inputs), 40)]
    client = feature_client(redis_url)
    run = f"it-staged-{uuid.uuid4().hex[:8]}"
    try:
        one_by_one = FeatureEngine(RedisFeatureStore(client, prefix=f"{run}-seq"))
        expected = [one_by_one.process(batch) for batch in batches]

        store = RedisFeatureStore(client, prefix=f"{run}-piped")
        engine = FeatureEngine(store)
        rows: list[np.ndarray] = []
        unsaved: StateWrites | None = None
        same_day_overlaps, previous = 0, batches[0]
        for batch in batches:
            same_day = unsaved is not None and len(_days(batch) | _days(previous)) == 1
            if unsaved is not None and engine.depends_on(unsaved, batch):
                assert not same_day  # only a terminal's completed day makes it wait
                engine.save(unsaved)
                unsaved = None
            batch_rows, writes = engine.compute(batch)
            if unsaved is not None:  # stored only after the next batch read its cards
                engine.save(unsaved)
                same_day_overlaps += same_day
            rows.append(batch_rows)
            unsaved, previous = writes, batch
        assert unsaved is not None
        engine.save(unsaved)

        assert all(
            {e.card_id for e in a} & {e.card_id for e in b} for a, b in itertools.pairwise(batches)
        )  # every batch reads cards the one before changed
        assert same_day_overlaps >= 5
        for got, want in zip(rows, expected, strict=True):
            np.testing.assert_array_equal(got, want)
        assert _state(client, f"{run}-piped") == _state(client, f"{run}-seq")

        # a batch that follows the last one on its cards reads them from the cache...
        cards = sorted({event.card_id for event in batches[-1]})
        last_ts = max(event.ts for event in batches[-1])
        first = [FeatureInput("late-1", last_ts + 1, cards[0], "term-x", 3.0)]
        _, writes = engine.compute(first)
        follower = [FeatureInput("late-2", last_ts + 2, cards[0], "term-y", 4.0)]
        assert not engine.depends_on(writes, follower)
        # ...unless the cache was emptied since: forgotten (a failed batch, a rebalance)...
        store.forget()
        assert engine.depends_on(writes, follower)
        _, writes = engine.compute(first)  # the batch again, its card read back from Redis
        assert not engine.depends_on(writes, follower)
        # ...or full (here at 8 cards)
        monkeypatch.setattr(redis_store, "MAX_CACHED_CARDS", 8)
        others = [
            FeatureInput(f"late-o{i}", last_ts + 1, card, "term-z", 5.0)
            for i, card in enumerate(cards[1:9])
        ]
        engine.compute(others)
        assert engine.depends_on(writes, follower)
        uncached = FeatureEngine(RedisFeatureStore(client, prefix=run, cache_cards=False))
        assert uncached.depends_on(writes, follower)
    finally:
        delete_keys(client, f"{run}*")
        client.close()


def test_a_cards_string_is_written_anew_once_its_stale_rows_pile_up(redis_url: str) -> None:
    """Each batch appends its rows to a card's string; a worker that caches the card writes
    the string anew once old events have fallen out of the history window. The histories
    read back, and every feature row, are those of the in-memory store throughout."""
    simulation = simulate(SimulationConfig(seed=11, days=75, customers=25, terminals=10))
    inputs = feature_inputs(simulation.transactions)
    client = feature_client(redis_url)
    run = f"it-compact-{uuid.uuid4().hex[:8]}"
    try:
        memory = InMemoryFeatureStore()
        in_memory = FeatureEngine(memory)
        engine = FeatureEngine(RedisFeatureStore(client, prefix=run))
        written_anew = 0
        for start in range(0, len(inputs), 50):
            batch = inputs[start : start + 50]
            rows, writes = engine.compute(batch)
            written_anew += len(writes.card_values)
            engine.save(writes)
            np.testing.assert_array_equal(rows, in_memory.process(batch))
        assert written_anew >= len(memory.cards)  # 75 days: every card dropped old events
        for card, columns in memory.cards.items():
            value = client.get(f"{run}:history:{card}")
            assert parse_history(value) == columns
            stored = value.count(b"],[") + 1  # rows in the string, stale ones included
            live = len(columns["ts"])
            assert stored <= live + live // 2 + redis_store.COMPACT_AFTER_ROWS + len(batch)
            assert stored >= live
    finally:
        delete_keys(client, f"{run}*")
        client.close()


def test_a_batch_sent_again_after_its_answer_was_lost_counts_once(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Redis ran a batch's script but its answer never came (a timeout): the store holds the
    batch and sends it again. Its token makes the second run change nothing, so the state
    is that of a run where every answer arrived (without it, the terminals of the batches
    sent twice counted their transactions twice). Tokens of acknowledged batches go."""
    monkeypatch.setattr(redis_store, "RETRY_AFTER_S", 0.0)  # send held writes at once
    simulation = simulate(SimulationConfig(seed=7, days=6, customers=60, terminals=20))
    inputs = feature_inputs(simulation.transactions)
    batches = [inputs[i : i + 80] for i in range(0, len(inputs), 80)]
    assert len(batches) >= 8
    client = feature_client(redis_url)
    run = f"it-token-{uuid.uuid4().hex[:8]}"
    try:
        steady = FeatureEngine(RedisFeatureStore(client, prefix=f"{run}-steady"))
        for batch in batches:
            steady.process(batch)

        store = RedisFeatureStore(client, prefix=f"{run}-lost")
        engine = FeatureEngine(store)
        script, calls, lost = store._apply, itertools.count(), {2, 5}

        def answer_lost(**kwargs: object) -> object:
            answer = script(**kwargs)  # Redis runs it...
            if next(calls) in lost:
                raise redis.TimeoutError("the answer was lost")  # ...the caller never hears
            return answer

        store._apply = answer_lost  # type: ignore[assignment]
        for batch in batches:
            engine.process(batch)
        assert next(calls) == len(batches) + len(lost)  # each lost one was sent again
        assert store.held == [] and store.down_since is None

        assert _state(client, f"{run}-lost") == _state(client, f"{run}-steady")
        for prefix in (f"{run}-lost", f"{run}-steady"):  # only the last batch's is kept
            assert len(list(client.scan_iter(f"{prefix}:applied:*"))) == 1
    finally:
        delete_keys(client, f"{run}*")
        client.close()


def _days(batch: list[FeatureInput]) -> set[int]:
    return {int(event.ts // SECONDS_PER_DAY) for event in batch}


def _state(client: redis.Redis, prefix: str) -> dict[bytes, object]:
    """Every key under ``prefix`` (without it) with its value, as the store reads it (a
    card's history as its columns: two runs may append and compact its rows differently)."""
    state: dict[bytes, object] = {}
    for key in client.scan_iter(f"{prefix}:*", count=1_000):
        name = key[len(prefix) :]
        if name.startswith(b":applied:"):
            continue  # batch tokens: each run's own
        value = client.get(key)
        state[name] = parse_history(value) if b":history:" in name else value
    return state


def test_a_store_that_must_not_degrade_raises_and_holds_nothing() -> None:
    """An offline replay (``degrade=False``) stops at an unreachable Redis instead of going
    on from memory; the stream's store (the default) holds the same writes instead."""
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = feature_client(f"redis://127.0.0.1:{port}/0")
    event = FeatureInput("t1", 1_700_000_000.0, "card-1", "term-1", 12.5)
    strict = FeatureEngine(RedisFeatureStore(client, prefix="strict", degrade=False))
    lenient = FeatureEngine(RedisFeatureStore(client, prefix="lenient"))
    try:
        with pytest.raises(redis.ConnectionError):
            strict.process([event])
        _, writes = lenient.compute([event])
        assert writes.from_memory  # degraded: features from what the process holds
        with pytest.raises(redis.ConnectionError):
            strict.save(writes)
        lenient.save(writes)
        assert isinstance(strict.store, RedisFeatureStore)
        assert isinstance(lenient.store, RedisFeatureStore)
        assert strict.store.held == [] and lenient.store.held == [writes]
    finally:
        client.close()
