"""Where feature state lives, behind one small protocol: in memory (tests, offline replay) or
Redis (online). Both hold exactly the same data, so online and offline features agree.

State, per key:
- card ``card_id``: the card's events of the last 30 days as parallel columns (``ts``, ``id``,
  ``amount``, ``terminal``, ``country``, ``lat``, ``lon``), sorted by (ts, id);
- terminal ``terminal_id``: counters per day, ``"<day>:n"`` transactions and ``"<day>:f"``
  frauds known so far (incremented, never overwritten: terminals are shared by partitions);
- marks ``tx:<id>`` -> ``"<terminal_id>|<day>"`` and ``label:<id>`` -> ``"1"``: what has been
  counted already, so a replayed event or label changes nothing.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Protocol

CARD_COLUMNS = ("ts", "id", "amount", "terminal", "country", "lat", "lon")
CardEvents = dict[str, list]  # column name -> values, one per event
TerminalCounters = dict[str, int]


@dataclasses.dataclass
class Snapshot:
    marks: dict[str, str]
    cards: dict[str, CardEvents]
    terminals: dict[str, TerminalCounters]


@dataclasses.dataclass
class StateWrites:
    """Everything one batch changes; a store applies it all or nothing."""

    cards: dict[str, CardEvents] = dataclasses.field(default_factory=dict)  # whole, as now
    # the same change as deltas, for stores that append instead of rewriting a history:
    card_events: dict[str, list[list]] = dataclasses.field(default_factory=dict)  # added rows
    card_oldest_kept: dict[str, float] = dataclasses.field(default_factory=dict)  # drop <= this
    terminal_increments: dict[str, dict[str, int]] = dataclasses.field(
        default_factory=lambda: defaultdict(lambda: defaultdict(int))
    )
    terminal_expired: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    marks: dict[str, str] = dataclasses.field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.cards or self.terminal_increments or self.terminal_expired or self.marks)


class FeatureStore(Protocol):
    def read(
        self, mark_keys: Sequence[str], card_ids: Iterable[str], terminal_ids: Iterable[str]
    ) -> Snapshot:
        """The marks that exist among ``mark_keys`` and the state of the cards and terminals.
        The caller may change the card columns and terminal counters it gets; ``apply`` is
        what stores changes."""
        ...

    def apply(self, writes: StateWrites) -> None:
        """Apply a batch's writes atomically."""
        ...

    def forget(self) -> None:
        """Drop anything held locally: partitions moved, or a batch failed half way."""
        ...


class InMemoryFeatureStore:
    """The store for unit tests and offline replay.

    It hands out its own card columns without copying them (copies were most of the replay's
    time), so unlike Redis it is not all-or-nothing if a batch fails half way.
    """

    def __init__(self) -> None:
        self.marks: dict[str, str] = {}
        self.cards: dict[str, CardEvents] = {}
        self.terminals: dict[str, TerminalCounters] = {}

    def read(
        self, mark_keys: Sequence[str], card_ids: Iterable[str], terminal_ids: Iterable[str]
    ) -> Snapshot:
        return Snapshot(
            marks={key: self.marks[key] for key in mark_keys if key in self.marks},
            cards={card: self.cards[card] for card in card_ids if card in self.cards},
            terminals={t: dict(self.terminals[t]) for t in terminal_ids if t in self.terminals},
        )

    def apply(self, writes: StateWrites) -> None:
        self.cards.update(writes.cards)
        for terminal, increments in writes.terminal_increments.items():
            counters = self.terminals.setdefault(terminal, {})
            for field, delta in increments.items():
                counters[field] = counters.get(field, 0) + delta
        for terminal, fields in writes.terminal_expired.items():
            for field in fields:
                self.terminals.get(terminal, {}).pop(field, None)
        self.marks.update(writes.marks)

    def forget(self) -> None:
        """Nothing to forget: this store is the state."""
