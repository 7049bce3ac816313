"""The online feature store: the same state as ``InMemoryFeatureStore``, in Redis.

A batch costs two round trips: one pipeline that reads marks, cards and terminals, and one
MULTI/EXEC transaction that writes everything the batch changed, so a worker that dies
mid-batch leaves either all of its updates or none.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import orjson
import redis

from scoring.features.definitions import CARD_HISTORY_SECONDS, SECONDS_PER_DAY
from scoring.features.store import Snapshot, StateWrites

DEFAULT_MARK_TTL_DAYS = 120  # chargebacks arrive for months; a mark must outlive its label
# Idle state expires by itself: a card's history is 30 days, a terminal's counters cover the
# label delay plus the longest window (well under 60 days).
CARD_TTL_SECONDS = CARD_HISTORY_SECONDS + SECONDS_PER_DAY
TERMINAL_TTL_SECONDS = 60 * SECONDS_PER_DAY


class RedisFeatureStore:
    def __init__(
        self,
        client: redis.Redis,
        prefix: str = "fs",
        mark_ttl_days: int = DEFAULT_MARK_TTL_DAYS,
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.mark_ttl_seconds = mark_ttl_days * 86_400

    def read(
        self, mark_keys: Sequence[str], card_ids: Iterable[str], terminal_ids: Iterable[str]
    ) -> Snapshot:
        cards, terminals = list(card_ids), list(terminal_ids)
        pipe = self.client.pipeline(transaction=False)
        if mark_keys:
            pipe.mget([self._mark(key) for key in mark_keys])
        if cards:
            pipe.mget([self._card(card) for card in cards])
        for terminal in terminals:
            pipe.hgetall(self._terminal(terminal))
        results = iter(pipe.execute())
        marks = next(results) if mark_keys else []
        card_values = next(results) if cards else []
        return Snapshot(
            marks={
                key: value.decode() for key, value in zip(mark_keys, marks, strict=True) if value
            },
            cards={
                card: orjson.loads(value)
                for card, value in zip(cards, card_values, strict=True)
                if value is not None
            },
            terminals={
                terminal: {field.decode(): int(count) for field, count in counters.items()}
                for terminal, counters in zip(terminals, results, strict=True)
                if counters
            },
        )

    def apply(self, writes: StateWrites) -> None:
        pipe = self.client.pipeline(transaction=True)
        for card, events in writes.cards.items():
            pipe.set(self._card(card), orjson.dumps(events), ex=CARD_TTL_SECONDS)
        for terminal, increments in writes.terminal_increments.items():
            for field, delta in increments.items():
                pipe.hincrby(self._terminal(terminal), field, delta)
            pipe.expire(self._terminal(terminal), TERMINAL_TTL_SECONDS)
        for terminal, fields in writes.terminal_expired.items():
            pipe.hdel(self._terminal(terminal), *fields)
        for key, value in writes.marks.items():
            pipe.set(self._mark(key), value, ex=self.mark_ttl_seconds)
        pipe.execute()

    def _mark(self, key: str) -> str:
        return f"{self.prefix}:mark:{key}"

    def _card(self, card_id: str) -> str:
        return f"{self.prefix}:card:{card_id}"

    def _terminal(self, terminal_id: str) -> str:
        return f"{self.prefix}:terminal:{terminal_id}"
