"""Where feature state lives, behind one small protocol: in memory (tests, offline replay) or
Redis (online). Both give the same answers, so online and offline features agree.

State, per key:
- card ``card_id``: the card's events of the last 30 days as parallel columns (``ts``, ``id``,
  ``amount``, ``terminal``, ``country``, ``lat``, ``lon``, ``category``), sorted by (ts, id);
- terminal ``terminal_id``: counters per day, ``"<day>:n"`` transactions and ``"<day>:f"``
  frauds known so far (incremented, never overwritten: terminals are shared by partitions;
  Redis keeps the last 64 days in a ring, see ``redis_store``);
- marks ``tx:<id>`` -> JSON ``[terminal_id, day]`` (the scorer appends the probability and
  model version) and ``label:<id>`` -> ``"1"``: what the labels agent joins on, and which
  labels were counted already, so a replayed label changes nothing. (A replayed transaction
  is recognised by its id in the card's history, written in the same atomic step.)

Readers get a terminal's counters as sums over ranges of days back from a given day, so each
store adds them up in the way that suits it (Redis: numpy over the batch's rings).
"""

from __future__ import annotations

import dataclasses
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Protocol

from scoring.features.definitions import CARD_HISTORY_SECONDS

CARD_COLUMNS = ("ts", "id", "amount", "terminal", "country", "lat", "lon", "category")
CardEvents = dict[str, list]  # column name -> values, one per event
TerminalCounters = dict[str, int]


def cut_to_history(columns: CardEvents) -> None:
    """Drop the events outside the history window of the newest one (a card's columns,
    sorted by time): what every store holds of a card.

    >>> columns = {"ts": [1.0, 1.5, 2.0, 1.5 + CARD_HISTORY_SECONDS], "id": ["a", "b", "c", "d"]}
    >>> cut_to_history(columns)  # at or before the newest less the window: gone
    >>> columns
    {'ts': [2.0, 2592001.5], 'id': ['c', 'd']}
    """
    times = columns["ts"]
    first_kept = bisect_right(times, times[-1] - CARD_HISTORY_SECONDS) if times else 0
    if first_kept:
        for values in columns.values():
            del values[:first_kept]


DayRange = tuple[int, int]  # days back from a given day, both ends included: (1, 7) = last week
TerminalDay = tuple[str, int]  # a terminal on a day (days since the epoch)


@dataclasses.dataclass
class Snapshot:
    marks: dict[str, str]
    cards: dict[str, CardEvents]
    # per (terminal, day) asked: transactions and frauds summed over each range, flattened
    # as [n(range 1), f(range 1), n(range 2), ...]; only terminals with counters appear
    terminal_sums: dict[TerminalDay, list[int]] = dataclasses.field(default_factory=dict)
    complete: bool = True  # False: the store was unreachable, this is what the reader held


def sum_days(by_day: dict[int, list[int]], day: int, ranges: Sequence[DayRange]) -> list[int]:
    """Transactions and frauds over each range of days back from ``day``, from counters kept
    by day number (``[transactions, frauds]``).

    >>> sum_days({9: [2, 1], 7: [5, 0]}, 10, [(1, 1), (1, 3)])
    [2, 1, 7, 1]
    """
    deepest = max((last for _, last in ranges), default=0)
    # each day read once, then sliced per range: ranges overlap (1-7 days in 1-30)
    days = [by_day.get(day - back) for back in range(1, deepest + 1)]
    transactions = [counts[0] if counts else 0 for counts in days]
    frauds = [counts[1] if counts else 0 for counts in days]
    sums = []
    for first, last in ranges:
        sums.append(sum(transactions[first - 1 : last]))
        sums.append(sum(frauds[first - 1 : last]))
    return sums


@dataclasses.dataclass
class StateWrites:
    """Everything one batch changes; a store applies it all or nothing."""

    cards: dict[str, CardEvents] = dataclasses.field(default_factory=dict)  # whole, as now
    # the same change as deltas, for stores that append instead of rewriting a history:
    card_events: dict[str, list[list]] = dataclasses.field(default_factory=dict)  # added rows
    terminal_increments: dict[str, dict[str, int]] = dataclasses.field(
        default_factory=lambda: defaultdict(lambda: defaultdict(int))
    )
    marks: dict[str, str] = dataclasses.field(default_factory=dict)
    # histories a store writes whole instead of appending to, serialised when staged
    card_values: dict[str, bytes] = dataclasses.field(default_factory=dict)
    # computed while the store was unreachable, from what this process held in memory
    from_memory: bool = False
    # set by a store that may be sent a batch twice: how it knows the batch (Redis's script)
    token: str = ""

    def __bool__(self) -> bool:
        return bool(self.cards or self.terminal_increments or self.marks)


class FeatureStore(Protocol):
    def read(
        self,
        mark_keys: Sequence[str],
        card_ids: Iterable[str],
        terminal_days: Sequence[TerminalDay] = (),
        ranges: Sequence[DayRange] = (),
    ) -> Snapshot:
        """The marks that exist among ``mark_keys``, the cards' histories and the terminals'
        sums over ``ranges`` of days back from each asked day. The caller may change the
        card columns it gets; ``apply`` is what stores changes."""
        ...

    def apply(self, writes: StateWrites) -> None:
        """Apply a batch's writes atomically."""
        ...

    def forget(self) -> None:
        """Drop anything held locally: partitions moved, or a batch failed half way."""
        ...

    def stage(self, writes: StateWrites) -> None:
        """A computed batch's card histories, for the reads that follow, before ``apply``
        has stored them (a store that keeps none locally ignores this)."""
        ...

    def reads_current(self, card_id: str) -> bool:
        """Whether a read of ``card_id`` sees every staged change, stored yet or not."""
        ...


class InMemoryFeatureStore:
    """The store for unit tests and offline replay.

    It hands out its own card columns without copying them (copies were most of the replay's
    time), so unlike Redis it is not all-or-nothing if a batch fails half way.
    """

    def __init__(self) -> None:
        self.marks: dict[str, str] = {}
        self.cards: dict[str, CardEvents] = {}
        # terminal -> day number -> [transactions, frauds]: summing ranges of days needs no
        # key formatted per day (that was a fifth of a replay's time)
        self._by_day: dict[str, dict[int, list[int]]] = {}

    @property
    def terminals(self) -> dict[str, TerminalCounters]:
        """The terminals' counters in the stored form (``"<day>:n"``, ``"<day>:f"``)."""
        return {
            terminal: {
                f"{day}:{kind}": count
                for day, counts in by_day.items()
                for kind, count in zip("nf", counts, strict=True)
                if count
            }
            for terminal, by_day in self._by_day.items()
        }

    def read(
        self,
        mark_keys: Sequence[str],
        card_ids: Iterable[str],
        terminal_days: Sequence[TerminalDay] = (),
        ranges: Sequence[DayRange] = (),
    ) -> Snapshot:
        return Snapshot(
            marks={key: self.marks[key] for key in mark_keys if key in self.marks},
            cards={card: self.cards[card] for card in card_ids if card in self.cards},
            terminal_sums={
                (terminal, day): sums
                for terminal, day in terminal_days
                if terminal in self._by_day
                and any(sums := sum_days(self._by_day[terminal], day, ranges))
            },
        )

    def apply(self, writes: StateWrites) -> None:
        self.cards.update(writes.cards)
        for terminal, increments in writes.terminal_increments.items():
            by_day = self._by_day.setdefault(terminal, {})
            for field, delta in increments.items():
                day, _, kind = field.partition(":")
                by_day.setdefault(int(day), [0, 0])[kind == "f"] += delta
        self.marks.update(writes.marks)

    def stage(self, writes: StateWrites) -> None:
        """Nothing to keep: a card new to this store appears at ``apply``."""

    def reads_current(self, card_id: str) -> bool:
        return False

    def forget(self) -> None:
        """Nothing to forget: this store is the state."""
