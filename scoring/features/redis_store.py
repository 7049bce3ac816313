"""The online feature store: the same state as ``InMemoryFeatureStore``, in Redis.

A batch costs two round trips: one pipeline that reads marks, cards and terminals, and one
server-side script that writes everything the batch changed atomically, so a worker that
dies mid-batch leaves either all of its updates or none.
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


# A batch's writes as one server-side script: atomic like MULTI/EXEC, and one command for
# the client to pack instead of thousands (redis-py spends ~30 us of Python per command).
_APPLY = """
local card_ttl, terminal_ttl, mark_ttl = ARGV[1], ARGV[2], ARGV[3]
local cards, increments = tonumber(ARGV[4]), tonumber(ARGV[5])
local expired, marks = tonumber(ARGV[6]), tonumber(ARGV[7])
local k, a = 1, 8
for _ = 1, cards do redis.call('SET', KEYS[k], ARGV[a], 'EX', card_ttl); k = k + 1; a = a + 1 end
for _ = 1, increments do
  redis.call('HINCRBY', KEYS[k], ARGV[a], ARGV[a + 1]); redis.call('EXPIRE', KEYS[k], terminal_ttl)
  k = k + 1; a = a + 2
end
for _ = 1, expired do redis.call('HDEL', KEYS[k], ARGV[a]); k = k + 1; a = a + 1 end
for _ = 1, marks do redis.call('SET', KEYS[k], ARGV[a], 'EX', mark_ttl); k = k + 1; a = a + 1 end
return k - 1
"""
_READ_TERMINALS = """
local out = {}
for i, key in ipairs(KEYS) do out[i] = redis.call('HGETALL', key) end
return out
"""


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
        self._apply = client.register_script(_APPLY)
        self._read_terminals = client.register_script(_READ_TERMINALS)

    def read(
        self, mark_keys: Sequence[str], card_ids: Iterable[str], terminal_ids: Iterable[str]
    ) -> Snapshot:
        """One round trip: two MGETs and one script for the terminals' hashes."""
        cards, terminals = list(card_ids), list(terminal_ids)
        pipe = self.client.pipeline(transaction=False)
        if mark_keys:
            pipe.mget([self._mark(key) for key in mark_keys])
        if cards:
            pipe.mget([self._card(card) for card in cards])
        self._read_terminals(keys=[self._terminal(t) for t in terminals], client=pipe)
        results = pipe.execute()
        terminal_values = results.pop()
        card_values = results.pop() if cards else []
        marks = results.pop() if mark_keys else []
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
                terminal: {flat[i].decode(): int(flat[i + 1]) for i in range(0, len(flat), 2)}
                for terminal, flat in zip(terminals, terminal_values, strict=True)
                if flat
            },
        )

    def apply(self, writes: StateWrites) -> None:
        keys: list[str] = []
        args: list[bytes | str | int] = []
        increments = [
            (terminal, field, delta)
            for terminal, fields in writes.terminal_increments.items()
            for field, delta in fields.items()
        ]
        expired = [(t, field) for t, fields in writes.terminal_expired.items() for field in fields]
        keys += [self._card(card) for card in writes.cards]
        args += [orjson.dumps(columns) for columns in writes.cards.values()]
        for terminal, field, delta in increments:
            keys.append(self._terminal(terminal))
            args += [field, delta]
        for terminal, field in expired:
            keys.append(self._terminal(terminal))
            args.append(field)
        keys += [self._mark(key) for key in writes.marks]
        args += list(writes.marks.values())
        header: list[bytes | str | int] = [
            CARD_TTL_SECONDS,
            TERMINAL_TTL_SECONDS,
            self.mark_ttl_seconds,
        ]
        header += [len(writes.cards), len(increments), len(expired), len(writes.marks)]
        self._apply(keys=keys, args=header + args)

    def _mark(self, key: str) -> str:
        return f"{self.prefix}:mark:{key}"

    def _card(self, card_id: str) -> str:
        return f"{self.prefix}:card:{card_id}"

    def _terminal(self, terminal_id: str) -> str:
        return f"{self.prefix}:terminal:{terminal_id}"
