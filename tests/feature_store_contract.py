"""One contract every FeatureStore implementation passes (in memory here, Redis in the
integration tests)."""

from __future__ import annotations

from collections.abc import Callable

from scoring.features.definitions import CARD_HISTORY_SECONDS
from scoring.features.store import CARD_COLUMNS, FeatureStore, StateWrites


def check_feature_store_contract(store: FeatureStore, reopen: Callable[[], FeatureStore]) -> None:
    """``reopen``: a new instance on the same data (a restarted worker, with nothing cached)."""
    empty = store.read(["tx:a"], ["card-1"], [("term-1", 11)], [(1, 1)])
    assert (empty.marks, empty.cards, empty.terminal_sums) == ({}, {}, {})

    writes = StateWrites()
    rows = [
        [0.5, "z", 9.0, "term-9", "FR", 48.8, 2.3, "fuel"],
        [1.0, "a", 2.5, "term-1", None, None, None, None],
    ]
    writes.cards["card-1"] = {name: [row[i] for row in rows] for i, name in enumerate(CARD_COLUMNS)}
    writes.card_events["card-1"] = rows
    writes.terminal_increments["term-1"]["10:n"] += 2
    writes.marks["tx:a"] = "term-1|10"
    store.apply(writes)
    more = StateWrites()
    more.terminal_increments["term-1"]["10:n"] += 1  # increments add up, never overwrite
    more.terminal_increments["term-1"]["3:n"] += 1
    more.terminal_increments["term-1"]["3:f"] += 1
    more.terminal_increments["term-9"]["10:n"] += 1
    store.apply(more)
    ranges = [(1, 1), (1, 8), (2, 8)]
    expected = {("term-1", 11): [3, 0, 4, 1, 1, 1], ("term-9", 11): [1, 0, 1, 0, 0, 0]}
    asked = [("term-1", 11), ("term-9", 11), ("term-2", 11)]
    assert store.read([], [], asked, ranges).terminal_sums == expected
    # a later day, and a fraud label for a day long gone (nothing reads that far back)
    beyond = StateWrites()
    beyond.terminal_increments["term-1"]["80:n"] += 1
    beyond.terminal_increments["term-1"]["81:n"] += 2
    store.apply(beyond)
    gone = StateWrites()
    gone.terminal_increments["term-1"]["3:f"] += 1
    store.apply(gone)
    later = StateWrites()  # a later event: the first falls out of the history window
    later_ts = 0.75 + CARD_HISTORY_SECONDS
    later.card_events["card-1"] = [[later_ts, "b", 4.0, "term-1", "DE", None, None, "travel"]]
    later.cards["card-1"] = {
        name: [*values[1:], later.card_events["card-1"][0][i]]
        for i, (name, values) in enumerate(writes.cards["card-1"].items())
    }
    store.apply(later)

    for instance in (store, reopen()):
        snapshot = instance.read(
            ["tx:a", "tx:b"],
            ["card-1", "card-2"],
            [("term-1", 82), ("term-1", 81), ("term-2", 82)],
            [(1, 1), (1, 30)],
        )
        assert snapshot.marks == {"tx:a": "term-1|10"}
        assert snapshot.cards == {
            "card-1": {"ts": [1.0, later_ts], "id": ["a", "b"], "amount": [2.5, 4.0],
                       "terminal": ["term-1", "term-1"], "country": [None, "DE"],
                       "lat": [None, None], "lon": [None, None],
                       "category": [None, "travel"]}
        }  # fmt: skip
        assert snapshot.terminal_sums == {
            ("term-1", 82): [2, 0, 3, 0],
            ("term-1", 81): [1, 0, 1, 0],
        }
