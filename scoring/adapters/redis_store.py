"""The online feature store: the same state as ``InMemoryFeatureStore``, in Redis.

A batch costs two round trips: one ``MGET`` of the marks it asks, the cards not cached
here and the terminals, and one server-side script that writes everything the batch
changed atomically, so a worker that dies mid-batch leaves either all of its updates or
none. The script runs a batch once however often it is sent: it stores a token of the batch
with its changes and does nothing when the token is there already (a batch whose answer
was lost is sent again).

A card's history is one Redis string of its events as JSON rows, each batch appending the
rows it adds (``APPEND``: no order to keep in Redis); a reader parses them in one call,
sorts them by (time, id), drops repeats and the events outside the newest one's history
window. A worker that caches the card, and so holds its whole history, writes the string
anew once its stale rows reach half its live ones, so a string stays under ~1.5 x the
history. (It was a sorted set of one JSON member per event: Redis spent ~34 us of its own
CPU on a 60-event ``ZRANGE``, and the client a command and ~60 objects per card; a REST
call waited for both. Writing whole histories every batch instead cost the stream 15-36 us
of JSON a card.)

A terminal's day counters are a ring of ``RING_DAYS`` slots in one Redis string, packed
as ``BITFIELD`` integers: transactions, frauds and the day each slot holds. A batch reads
each terminal as one small string and sums its windows with numpy (a hash of ~90 day
fields per terminal cost ~40 us a terminal to read, most of a transaction's budget). Old
days fall out by themselves when their slot is reused; counts for a day older than its
slot's day are dropped, which no window reads (they reach ``RING_DAYS`` - 1 days back).

When Redis cannot be reached the store degrades instead of failing: a feature read answers
from what this process holds in memory (its cached card histories, no terminal counters)
and says so (``Snapshot.complete``), and a batch's writes wait in memory, in order, until
Redis answers again. Reads of marks (the labels' join) never degrade: they raise.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from typing import cast

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from scoring.adapters.redis_codec import (
    RING_DAYS,
    _history,
    _rows,
    _sum_rings,
)
from scoring.features.definitions import CARD_HISTORY_SECONDS, SECONDS_PER_DAY
from scoring.features.store import (
    CARD_COLUMNS,
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
# A batch's token outlives any resend of it; only a batch whose answer never came (its
# writer died, or the call that would have acknowledged it failed) leaves one this long.
TOKEN_TTL_SECONDS = 7 * SECONDS_PER_DAY


# A batch's writes as one server-side script: atomic like MULTI/EXEC, and one command for
# the client to pack instead of thousands (redis-py spends ~30 us of Python per command).
# A card's rows are appended ('a') or, to drop its stale rows, written anew ('s').
# KEYS[1] is the batch's token: a batch whose token is there already was stored before (its
# answer was lost and it is sent again) and changes nothing; the next KEYS[2..] are the
# tokens of batches acknowledged since, no longer needed.
_APPLY = """
local card_ttl, terminal_ttl, mark_ttl = ARGV[1], ARGV[2], ARGV[3]
local cards, increments, marks = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local ring, token_ttl, acknowledged = tonumber(ARGV[7]), ARGV[8], tonumber(ARGV[9])
for k = 2, acknowledged + 1 do redis.call('DEL', KEYS[k]) end
if not redis.call('SET', KEYS[1], 1, 'NX', 'EX', token_ttl) then return 0 end
local k, a = acknowledged + 2, 10
for _ = 1, cards do
  if ARGV[a] == 's' then
    redis.call('SET', KEYS[k], ARGV[a + 1], 'EX', card_ttl)
  else
    redis.call('APPEND', KEYS[k], ARGV[a + 1])
    redis.call('EXPIRE', KEYS[k], card_ttl)
  end
  k = k + 1; a = a + 2
end
for _ = 1, increments do
  local day, kind = string.match(ARGV[a], '^(-?%d+):([nf])$')
  day = tonumber(day)
  local slot = day % ring
  local stamp = redis.call('BITFIELD', KEYS[k], 'GET', 'i32', '#' .. (2 * ring + slot))[1]
  if day > stamp then  -- the slot held an older day (or none): it starts over
    redis.call('BITFIELD', KEYS[k], 'SET', 'u32', '#' .. slot, 0, 'SET', 'u32',
      '#' .. (ring + slot), 0, 'SET', 'i32', '#' .. (2 * ring + slot), day)
  end
  if day >= stamp then
    local counter = kind == 'n' and slot or ring + slot
    redis.call('BITFIELD', KEYS[k], 'INCRBY', 'u32', '#' .. counter, ARGV[a + 1])
    redis.call('EXPIRE', KEYS[k], terminal_ttl)
  end
  k = k + 1; a = a + 2
end
for _ = 1, marks do redis.call('SET', KEYS[k], ARGV[a], 'EX', mark_ttl); k = k + 1; a = a + 1 end
return k - 1
"""
MAX_CACHED_CARDS = 200_000  # ~2 KB each at 2 payments a day
# a cached card's string is written anew once it holds this many rows beyond 1.5 x its live
# ones (a card paying twice a day: every ~two weeks, for ~20 us of JSON)
COMPACT_AFTER_ROWS = 8
UNREACHABLE = (redis.ConnectionError, redis.TimeoutError)
RETRY_AFTER_S = 1.0  # after a failed call, Redis is not asked again for this long
MAX_HELD_TRANSACTIONS = 1_000_000  # writes held while Redis is away; beyond, the oldest go

logger = logging.getLogger(__name__)


def feature_client(url: str) -> redis.Redis:
    """A client for the feature state that gives up fast: redis-py's default (10 retries,
    backoff to 1 s) would hold a worker's event loop for seconds per batch in an outage.
    """
    return redis.Redis.from_url(
        url, socket_connect_timeout=1.0, socket_timeout=2.0,
        retry=Retry(ExponentialBackoff(cap=0.05, base=0.01), 1),
    )  # fmt: skip


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
        degrade: bool = True,
    ) -> None:
        self.client = client
        self.degrade = degrade  # False (offline replays): an unreachable Redis is an error
        self.prefix = prefix
        self.mark_ttl_seconds = mark_ttl_days * 86_400
        self.cache: dict[str, CardEvents] | None = {} if cache_cards else None
        self.stored_rows: dict[str, int] = {}  # per cached card: rows in its Redis string
        self._apply = client.register_script(_APPLY)
        self.held: list[StateWrites] = []  # writes made while Redis was unreachable, in order
        self.held_transactions = 0
        self.dropped_transactions = 0
        self.down_since: float | None = None
        self._retry_at = 0.0
        self._held_lock = threading.Lock()  # the scorer saves in a thread; labels on the loop
        self._writer = uuid.uuid4().hex[:16]  # batch tokens: this store's id and a count
        self._batches = itertools.count()
        self._acknowledged: list[str] = []  # tokens of stored batches: the next store drops them
        self._tokens_lock = threading.Lock()

    def read(
        self,
        mark_keys: Sequence[str],
        card_ids: Iterable[str],
        terminal_days: Sequence[TerminalDay] = (),
        ranges: Sequence[DayRange] = (),
    ) -> Snapshot:
        """One ``MGET``: the marks, the uncached cards' histories, the terminals' sums.
        Redis unreachable: without marks, what this process holds; with marks, the error."""
        wanted = list(card_ids)
        if not self.degrade:
            return self._read(mark_keys, wanted, terminal_days, ranges)
        if self.catch_up():
            try:
                return self._read(mark_keys, wanted, terminal_days, ranges)
            except UNREACHABLE as error:
                self._unreachable(error)
        if mark_keys:
            raise redis.ConnectionError(f"Redis unreachable at {self._address()}")
        cached = self.cache if self.cache is not None else {}
        return Snapshot(
            marks={},
            cards={card: cached[card] for card in wanted if card in cached and cached[card]["ts"]},
            complete=False,
        )

    def _read(
        self,
        mark_keys: Sequence[str],
        wanted: list[str],
        terminal_days: Sequence[TerminalDay],
        ranges: Sequence[DayRange],
    ) -> Snapshot:
        cached = self.cache if self.cache is not None else {}
        missing = [card for card in wanted if card not in cached]
        terminals = list({terminal for terminal, _ in terminal_days})
        keys = [self._mark(key) for key in mark_keys]
        keys += [self._card(card) for card in missing]
        keys += [self._terminal(terminal) for terminal in terminals]
        # one command, not a pipeline of three: redis-py's pipeline machinery cost a REST
        # call's read (one card, one terminal) ~20 us more of CPU, 8 % of its features
        values = cast(list[bytes | None], self.client.mget(keys)) if keys else []
        cards_from = len(mark_keys)
        terminals_from = cards_from + len(missing)
        marks, histories = values[:cards_from], values[cards_from:terminals_from]
        rings = values[terminals_from:]
        loaded: dict[str, CardEvents] = {}
        for card, value in zip(missing, histories, strict=True):
            loaded[card], rows = _history(value)
            if self.cache is not None:  # what a batch that caches the card will write to
                self.stored_rows[card] = rows
        cards = {card: cached.get(card) or loaded[card] for card in wanted}
        return Snapshot(
            marks={
                key: value.decode() for key, value in zip(mark_keys, marks, strict=True) if value
            },
            cards={card: columns for card, columns in cards.items() if columns["ts"]},
            terminal_sums=_sum_rings(terminals, rings, terminal_days, ranges),
        )

    def apply(self, writes: StateWrites) -> None:
        """Store ``writes`` atomically; with Redis unreachable, hold them (in order, after any
        held before) until it answers."""
        if not self.degrade:
            self._store(writes)
            return
        if self.catch_up():
            try:
                self._store(writes)
            except UNREACHABLE as error:
                self._unreachable(error)
            else:
                return
        with self._held_lock:
            self.held.append(writes)
            self.held_transactions += len(writes.marks)
            while self.held_transactions > MAX_HELD_TRANSACTIONS:
                oldest = self.held.pop(0)
                self.held_transactions -= len(oldest.marks)
                self.dropped_transactions += len(oldest.marks)
                logger.error("Redis still unreachable: dropped %d held writes", len(oldest.marks))

    def catch_up(self) -> bool:
        """Redis answers (or is worth asking again) and holds every write made so far."""
        if time.monotonic() < self._retry_at:
            return False
        with self._held_lock:
            try:
                while self.held:
                    self._store(self.held[0])
                    self.held_transactions -= len(self.held.pop(0).marks)
            except UNREACHABLE as error:
                self._unreachable(error)
                return False
        if self.down_since is not None:
            logger.warning(
                "Redis at %s answers again after %.1f s; the writes held meanwhile are stored",
                self._address(), time.monotonic() - self.down_since,
            )  # fmt: skip
            self.down_since = None
        return True

    def _unreachable(self, error: Exception) -> None:
        self._retry_at = time.monotonic() + RETRY_AFTER_S
        if self.down_since is None:
            self.down_since = time.monotonic()
            logger.warning(
                "Redis at %s unreachable (%s): features from memory, writes held", self._address(),
                error,
            )  # fmt: skip

    def _address(self) -> str:
        kwargs = self.client.connection_pool.connection_kwargs
        return f"{kwargs.get('host', '?')}:{kwargs.get('port', '?')}"

    def stage(self, writes: StateWrites) -> None:
        """Cache the batch's card histories as computed, before they are stored: the next
        batch reads them from here while this one is stored in a thread (the engine changes
        cached columns in place, so a cached card is always as the last batch left it).
        Called on the scorer's thread only; a failed batch ``forget``s them all.

        The cache holds whole histories only: a batch computed while Redis was unreachable
        knew only the cards it had cached, and the others stay out until Redis is read
        again (its appended rows join what Redis holds). A cached card whose string holds
        too many stale rows is written anew, from the history as it is now: the next batch
        may change the columns before this one is stored."""
        if self.cache is None:
            return
        if (
            len(self.cache) + len(writes.cards) > MAX_CACHED_CARDS
            or len(self.stored_rows) > 2 * MAX_CACHED_CARDS  # cards read, never changed
        ):
            # crude but bounded: the next batches reload from Redis, after waiting for
            # the stores of the cards dropped here (``reads_current`` says they must)
            kept = {
                card: self.stored_rows[card] for card in writes.cards if card in self.stored_rows
            }
            self.cache.clear()
            self.stored_rows = kept
        for card, columns in writes.cards.items():
            stored = self.stored_rows.get(card)
            if stored is None or (writes.from_memory and card not in self.cache):
                continue  # the history is not known whole here: its rows are appended
            rows, live = stored + len(writes.card_events.get(card, ())), len(columns["ts"])
            if rows > live + live // 2 + COMPACT_AFTER_ROWS:
                events = zip(*(columns[name] for name in CARD_COLUMNS), strict=True)
                writes.card_values[card] = _rows(list(events))
                rows = live
            self.stored_rows[card] = rows
            self.cache[card] = columns

    def reads_current(self, card_id: str) -> bool:
        return self.cache is not None and card_id in self.cache

    def _store(self, writes: StateWrites) -> None:
        """Run the batch's script once, however often it is sent: with a token of its own
        (kept with the writes, so a held batch keeps it), which the script stores with the
        changes and checks first. A batch sent again after Redis ran it but its answer was
        lost (redis-py's retry, or a held batch whose first store timed out) would otherwise
        count its terminals' transactions twice."""
        if not writes.token:
            writes.token = f"{self.prefix}:applied:{self._writer}:{next(self._batches)}"
        with self._tokens_lock:
            acknowledged, self._acknowledged = self._acknowledged, []
        keys: list[str] = [writes.token, *acknowledged]
        args: list[bytes | str | int | float] = []
        for card, rows in writes.card_events.items():
            keys.append(self._card(card))
            whole = writes.card_values.get(card)
            args += ["a", _rows(rows)] if whole is None else ["s", whole]
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
            RING_DAYS,
            TOKEN_TTL_SECONDS,
            len(acknowledged),
        ]
        try:
            self._apply(keys=keys, args=header + args)
        except BaseException:
            with self._tokens_lock:  # dropped or not, they go again with the next batch
                self._acknowledged[:0] = acknowledged
            raise
        with self._tokens_lock:
            self._acknowledged.append(writes.token)

    def forget(self) -> None:
        if self.cache is not None:
            self.cache.clear()
            self.stored_rows.clear()

    def _mark(self, key: str) -> str:
        return f"{self.prefix}:mark:{key}"

    def _card(self, card_id: str) -> str:
        return f"{self.prefix}:history:{card_id}"

    def _terminal(self, terminal_id: str) -> str:
        return f"{self.prefix}:terminal:{terminal_id}"
