"""The one feature implementation: an incremental state update per event, a batch at a time.

The stream calls it with live batches against Redis; training and backtests replay history
through it, in event-time order, against the in-memory store. Features of an event come from
the card's events strictly before it (by time, then id) plus the event itself, and from the
terminal's completed days, so replaying an event after a crash gives it the same features
and changes no state.
"""

from __future__ import annotations

import dataclasses
from bisect import insort
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from schemas.events import Label
from schemas.transaction import Transaction
from scoring.features.definitions import (
    CARD_HISTORY_SECONDS,
    CARD_WINDOWS,
    CHANNELS,
    FEATURE_NAMES,
    MERCHANT_CATEGORIES,
    NO_PREVIOUS_SECONDS,
    SECONDS_PER_DAY,
    TERMINAL_WINDOW_DAYS,
    calendar_features,
    code_of,
    haversine_km,
)
from scoring.features.store import CardEvents, FeatureStore, StateWrites, TerminalCounters

_WINDOW_SECONDS = tuple(CARD_WINDOWS.values())
_ONE_DAY = _WINDOW_SECONDS.index(SECONDS_PER_DAY)
_MEAN_WINDOWS = tuple(list(CARD_WINDOWS).index(w) for w in ("1d", "7d", "30d"))
_MIN_TRAVEL_HOURS = 1 / 60  # a minute: no speed from two swipes in the same second


class FeatureInput(NamedTuple):
    """The fields features read, with the event time as epoch seconds."""

    transaction_id: str
    ts: float
    card_id: str
    terminal_id: str
    amount: float
    country: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    channel: str | None = None
    merchant_category: str | None = None

    @classmethod
    def of(cls, t: Transaction) -> FeatureInput:
        return cls(
            t.transaction_id,
            t.event_time.timestamp(),
            t.card_id,
            t.terminal_id,
            t.amount,
            t.country,
            t.latitude,
            t.longitude,
            t.channel.value if t.channel else None,
            t.merchant_category,
        )


@dataclasses.dataclass(frozen=True)
class LabelResult:
    counted: int  # fraud labels that reached a terminal's counters
    repeated: int  # already counted before (a replay)
    unmatched: int  # no transaction with that id was ever processed


class FeatureEngine:
    def __init__(self, store: FeatureStore, label_delay_days: int = 7) -> None:
        self.store = store
        self.label_delay_days = label_delay_days
        self.terminal_horizon_days = label_delay_days + max(TERMINAL_WINDOW_DAYS) + 1

    def process(self, events: Sequence[FeatureInput]) -> np.ndarray:
        """Feature rows (``FEATURE_NAMES`` order) for ``events``, and their state updates."""
        keys = [f"tx:{e.transaction_id}" for e in events]
        snapshot = self.store.read(
            keys, {e.card_id for e in events}, {e.terminal_id for e in events}
        )
        counted = set(snapshot.marks)
        writes = StateWrites()
        rows = np.empty((len(events), len(FEATURE_NAMES)), dtype=np.float64)
        for i, event in enumerate(events):
            card = snapshot.cards.setdefault(event.card_id, [])
            terminal = snapshot.terminals.setdefault(event.terminal_id, {})
            day = int(event.ts // SECONDS_PER_DAY)
            rows[i] = (
                *card_features(event, card),
                *self.terminal_features(terminal, day),
                *calendar_features(event.ts),
                code_of(event.channel, CHANNELS),
                code_of(event.merchant_category, MERCHANT_CATEGORIES),
            )
            if keys[i] in counted:
                continue  # already in the state: a replay changes nothing
            counted.add(keys[i])
            _remember(card, event)
            writes.cards[event.card_id] = card
            field = f"{day}:n"
            terminal[field] = terminal.get(field, 0) + 1
            writes.terminal_increments[event.terminal_id][field] += 1
            writes.marks[keys[i]] = f"{event.terminal_id}|{day}"
        self._expire_terminal_days(snapshot.terminals, writes)
        if writes:
            self.store.apply(writes)
        return rows

    def apply_labels(self, labels: Sequence[Label]) -> LabelResult:
        """Count each fraud label once in its terminal's day, from now on (label-known risk)."""
        frauds = [label for label in labels if label.is_fraud]
        keys = [f"tx:{label.transaction_id}" for label in frauds]
        label_keys = [f"label:{label.transaction_id}" for label in frauds]
        marks = self.store.read(keys + label_keys, (), ()).marks
        writes = StateWrites()
        repeated = unmatched = 0
        for key, label_key in zip(keys, label_keys, strict=True):
            if label_key in marks or label_key in writes.marks:
                repeated += 1
                continue
            if key not in marks:
                unmatched += 1
                continue
            terminal_id, day = marks[key].rsplit("|", 1)
            writes.terminal_increments[terminal_id][f"{day}:f"] += 1
            writes.marks[label_key] = "1"
        if writes:
            self.store.apply(writes)
        return LabelResult(len(writes.marks), repeated, unmatched)

    def terminal_features(self, counters: TerminalCounters, day: int) -> list[float]:
        """Transactions over the last completed days, and the fraud share of the days that
        lie ``label_delay_days`` further back, counting only frauds already labelled."""
        counts = [counters.get(f"{d}:n", 0) for d in range(day - self.terminal_horizon_days, day)]
        frauds = [counters.get(f"{d}:f", 0) for d in range(day - self.terminal_horizon_days, day)]
        recent = [float(sum(counts[-days:])) for days in TERMINAL_WINDOW_DAYS]
        risks = []
        end = len(counts) - self.label_delay_days
        for days in TERMINAL_WINDOW_DAYS:
            transactions = sum(counts[end - days : end])
            risks.append(sum(frauds[end - days : end]) / transactions if transactions else 0.0)
        return recent + risks

    def _expire_terminal_days(
        self, terminals: dict[str, TerminalCounters], writes: StateWrites
    ) -> None:
        for terminal_id in writes.terminal_increments:
            counters = terminals[terminal_id]
            newest = max(int(field.split(":")[0]) for field in counters)
            expired = [f for f in counters if int(f.split(":")[0]) < newest - self.terminal_horizon_days]
            if expired:
                writes.terminal_expired[terminal_id] = expired


def card_features(event: FeatureInput, card: CardEvents) -> list[float]:
    """The card's velocity, spend, novelty and travel features for ``event``."""
    counts = [1] * len(_WINDOW_SECONDS)
    sums = [event.amount] * len(_WINDOW_SECONDS)
    terminals, countries = {event.terminal_id}, {event.country} - {None}
    previous: list | None = None
    previous_located: list | None = None
    position = (event.ts, event.transaction_id)
    for past in reversed(card):
        if (past[0], past[1]) >= position:
            continue  # later than this event, or this event itself (a replay)
        age = event.ts - past[0]
        if age >= CARD_HISTORY_SECONDS:
            break
        previous = previous or past
        if previous_located is None and past[5] is not None:
            previous_located = past
        window = len(_WINDOW_SECONDS) - 1
        while window >= 0 and age < _WINDOW_SECONDS[window]:
            counts[window] += 1
            sums[window] += past[2]
            window -= 1
        if age < SECONDS_PER_DAY:
            terminals.add(past[3])
            if past[4] is not None:
                countries.add(past[4])
    prior_count = counts[-1] - 1
    prior_mean = (sums[-1] - event.amount) / prior_count if prior_count else event.amount
    return [
        event.amount,
        *counts,
        *sums,
        *(sums[w] / counts[w] for w in _MEAN_WINDOWS),
        event.amount / prior_mean,
        event.ts - previous[0] if previous else NO_PREVIOUS_SECONDS,
        len(terminals),
        len(countries),
        float(
            previous is not None
            and previous[4] is not None
            and event.country is not None
            and previous[4] != event.country
        ),
        _travel_speed_kmh(event, previous_located),
    ]


def _travel_speed_kmh(event: FeatureInput, previous: list | None) -> float:
    if previous is None or event.latitude is None or event.longitude is None:
        return 0.0
    hours = max((event.ts - previous[0]) / 3600, _MIN_TRAVEL_HOURS)
    return haversine_km(previous[5], previous[6], event.latitude, event.longitude) / hours


def _remember(card: CardEvents, event: FeatureInput) -> None:
    insort(
        card,
        [
            event.ts,
            event.transaction_id,
            event.amount,
            event.terminal_id,
            event.country,
            event.latitude,
            event.longitude,
        ],
    )
    oldest_kept = card[-1][0] - CARD_HISTORY_SECONDS
    drop = 0
    while drop < len(card) and card[drop][0] <= oldest_kept:
        drop += 1
    del card[:drop]
