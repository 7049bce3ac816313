"""The online feature store: the same state as ``InMemoryFeatureStore``, in Redis.

A batch costs two round trips: one pipeline that reads the cards not cached here and the
terminals' sums (added up by a server-side script, so a few numbers per terminal travel
instead of its whole hash), and one script that writes everything the batch changed
atomically, so a worker that dies mid-batch leaves either all of its updates or none.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import orjson
import redis

from scoring.features.definitions import CARD_HISTORY_SECONDS, SECONDS_PER_DAY
from scoring.features.store import (
    CARD_COLUMNS,
    EXPIRY_SPAN_DAYS,
    CardEvents,
    DayRange,
    Snapshot,
    StateWrites,
    TerminalDay,
)

DEFAULT_MARK_TTL_DAYS = 120  # chargebacks arrive for months; a mark must outlive its label
# Idle state expires by itself: a card's history is 30 days, a terminal's counters cover the
# label delay plus the longest window (well under 60 days).
CARD_TTL_SECONDS = CARD_HISTORY_SECONDS + SECONDS_PER_DAY
TERMINAL_TTL_SECONDS = 60 * SECONDS_PER_DAY


# A batch's writes as one server-side script: atomic like MULTI/EXEC, and one command for
# the client to pack instead of thousands (redis-py spends ~30 us of Python per command).
# A card's history is a sorted set (score = event time) that only grows by the new events
# and is trimmed by time, so a batch never rewrites whole histories.
_APPLY = """
local card_ttl, terminal_ttl, mark_ttl = ARGV[1], ARGV[2], ARGV[3]
local cards, increments, marks = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local horizon, span = tonumber(ARGV[7]), tonumber(ARGV[8])
local k, a = 1, 9
for _ = 1, cards do
  local added = tonumber(ARGV[a]); a = a + 1
  for _ = 1, added do redis.call('ZADD', KEYS[k], ARGV[a], ARGV[a + 1]); a = a + 2 end
  redis.call('ZREMRANGEBYSCORE', KEYS[k], '-inf', ARGV[a]); a = a + 1
  redis.call('EXPIRE', KEYS[k], card_ttl)
  k = k + 1
end
for _ = 1, increments do
  local field, delta = ARGV[a], tonumber(ARGV[a + 1])
  local now = redis.call('HINCRBY', KEYS[k], field, delta)
  redis.call('EXPIRE', KEYS[k], terminal_ttl)
  local day = string.match(field, '^(-?%d+):n$')
  if now == delta and day and horizon > 0 then
    -- the day's first transaction: drop the week of counters just past the horizon
    local first_kept, old = tonumber(day) - horizon, {}
    for d = first_kept - span, first_kept - 1 do
      old[#old + 1] = d .. ':n'; old[#old + 1] = d .. ':f'
    end
    redis.call('HDEL', KEYS[k], unpack(old))
  end
  k = k + 1; a = a + 2
end
for _ = 1, marks do redis.call('SET', KEYS[k], ARGV[a], 'EX', mark_ttl); k = k + 1; a = a + 1 end
return k - 1
"""
# Per terminal and day asked: transactions and frauds over each range of days back, added up
# here from the day counters. ARGV: the number of ranges, their (first, last) days back, then
# one day per key.
_SUM_DAYS = """
local ranges, deepest = tonumber(ARGV[1]), 0
for i = 1, ranges do deepest = math.max(deepest, tonumber(ARGV[2 * i + 1])) end
local out, fields_of = {}, {}
for q, key in ipairs(KEYS) do
  local day = ARGV[2 * ranges + 1 + q]
  local fields = fields_of[day]
  if not fields then
    fields = {}
    for back = 1, deepest do
      fields[2 * back - 1] = (day - back) .. ':n'; fields[2 * back] = (day - back) .. ':f'
    end
    fields_of[day] = fields
  end
  local values = redis.call('HMGET', key, unpack(fields))
  local n, f = {[0] = 0}, {[0] = 0}  -- running totals, one day further back each step
  for back = 1, deepest do
    n[back] = n[back - 1] + (tonumber(values[2 * back - 1]) or 0)
    f[back] = f[back - 1] + (tonumber(values[2 * back]) or 0)
  end
  local sums = {}
  for i = 1, ranges do
    local first, last = tonumber(ARGV[2 * i]), tonumber(ARGV[2 * i + 1])
    sums[2 * i - 1] = n[last] - n[first - 1]; sums[2 * i] = f[last] - f[first - 1]
  end
  out[q] = sums
end
return out
"""
MAX_CACHED_CARDS = 200_000  # ~2 KB each at 2 payments a day


class RedisFeatureStore:
    """``cache_cards``: keep the card histories this worker has seen in memory and read only
    the others from Redis. Safe while cards are partitioned to one worker (the topic is keyed
    by card); the worker calls ``forget`` on every rebalance and after a failed batch."""

    def __init__(
        self,
        client: redis.Redis,
        prefix: str = "fs",
        mark_ttl_days: int = DEFAULT_MARK_TTL_DAYS,
        cache_cards: bool = True,
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.mark_ttl_seconds = mark_ttl_days * 86_400
        self.cache: dict[str, CardEvents] | None = {} if cache_cards else None
        self._apply = client.register_script(_APPLY)
        self._sum_days = client.register_script(_SUM_DAYS)

    def read(
        self,
        mark_keys: Sequence[str],
        card_ids: Iterable[str],
        terminal_days: Sequence[TerminalDay] = (),
        ranges: Sequence[DayRange] = (),
    ) -> Snapshot:
        """One round trip: the marks, the uncached cards' histories, the terminals' sums."""
        cached = self.cache if self.cache is not None else {}
        wanted = list(card_ids)
        missing = [card for card in wanted if card not in cached]
        pipe = self.client.pipeline(transaction=False)
        if mark_keys:
            pipe.mget([self._mark(key) for key in mark_keys])
        for card in missing:
            pipe.zrange(self._card(card), 0, -1)
        if terminal_days:
            bounds = [bound for day_range in ranges for bound in day_range]
            self._sum_days(
                keys=[self._terminal(terminal) for terminal, _ in terminal_days],
                args=[len(ranges), *bounds, *(day for _, day in terminal_days)],
                client=pipe,
            )
        results = pipe.execute() if len(pipe) else []
        marks = results.pop(0) if mark_keys else []
        sums = results.pop() if terminal_days else []
        loaded = {card: _columns(members) for card, members in zip(missing, results, strict=True)}
        cards = {card: cached.get(card) or loaded[card] for card in wanted}
        return Snapshot(
            marks={
                key: value.decode() for key, value in zip(mark_keys, marks, strict=True) if value
            },
            cards={card: columns for card, columns in cards.items() if columns["ts"]},
            terminal_sums={
                asked: counts
                for asked, counts in zip(terminal_days, sums, strict=True)
                if any(counts)
            },
        )

    def apply(self, writes: StateWrites) -> None:
        keys: list[str] = []
        args: list[bytes | str | int | float] = []
        for card, rows in writes.card_events.items():
            keys.append(self._card(card))
            args.append(len(rows))
            for row in rows:
                args += [row[0], orjson.dumps(row)]
            args.append(writes.card_oldest_kept.get(card, float("-inf")))
        increments = [
            (terminal, field, delta)
            for terminal, fields in writes.terminal_increments.items()
            for field, delta in fields.items()
        ]
        for terminal, field, delta in increments:
            keys.append(self._terminal(terminal))
            args += [field, delta]
        keys += [self._mark(key) for key in writes.marks]
        args += list(writes.marks.values())
        header: list[bytes | str | int | float] = [
            CARD_TTL_SECONDS,
            TERMINAL_TTL_SECONDS,
            self.mark_ttl_seconds,
            len(writes.card_events),
            len(increments),
            len(writes.marks),
            writes.terminal_horizon_days,
            EXPIRY_SPAN_DAYS,
        ]
        self._apply(keys=keys, args=header + args)
        if self.cache is not None:
            if len(self.cache) + len(writes.cards) > MAX_CACHED_CARDS:
                self.cache.clear()  # crude but bounded: the next batches reload from Redis
            self.cache.update(writes.cards)

    def forget(self) -> None:
        if self.cache is not None:
            self.cache.clear()

    def _mark(self, key: str) -> str:
        return f"{self.prefix}:mark:{key}"

    def _card(self, card_id: str) -> str:
        return f"{self.prefix}:card:{card_id}"

    def _terminal(self, terminal_id: str) -> str:
        return f"{self.prefix}:terminal:{terminal_id}"


def _columns(members: list[bytes]) -> CardEvents:
    """A card's stored events as columns, sorted by (time, transaction id)."""
    rows = sorted((orjson.loads(member) for member in members), key=lambda row: (row[0], row[1]))
    return {name: [row[i] for row in rows] for i, name in enumerate(CARD_COLUMNS)}
