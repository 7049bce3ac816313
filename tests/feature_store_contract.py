"""One contract every FeatureStore implementation passes (in memory here, Redis in the
integration tests)."""

from __future__ import annotations

from scoring.features.store import FeatureStore, StateWrites


def check_feature_store_contract(store: FeatureStore) -> None:
    empty = store.read(["tx:a"], ["card-1"], ["term-1"])
    assert (empty.marks, empty.cards, empty.terminals) == ({}, {}, {})

    writes = StateWrites()
    writes.cards["card-1"] = {"ts": [1.0], "id": ["a"], "amount": [2.5], "terminal": ["term-1"],
                              "country": [None], "lat": [None], "lon": [None]}  # fmt: skip
    writes.terminal_increments["term-1"]["10:n"] += 2
    writes.marks["tx:a"] = "term-1|10"
    store.apply(writes)
    more = StateWrites()
    more.terminal_increments["term-1"]["10:n"] += 1  # increments add up, never overwrite
    more.terminal_increments["term-1"]["3:n"] += 1
    store.apply(more)
    expire = StateWrites()
    expire.terminal_expired["term-1"] = ["3:n"]
    store.apply(expire)

    snapshot = store.read(["tx:a", "tx:b"], ["card-1", "card-2"], ["term-1", "term-2"])
    assert snapshot.marks == {"tx:a": "term-1|10"}
    assert snapshot.cards == {"card-1": writes.cards["card-1"]}
    assert snapshot.terminals == {"term-1": {"10:n": 3}}
