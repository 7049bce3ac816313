"""How the Redis feature store packs its values: card histories as appended JSON rows,
terminal day counters as rings of packed integers, and their sums over day windows."""

from __future__ import annotations

import operator
import struct
from collections.abc import Sequence

import numpy as np
import orjson

from scoring.features.store import (
    CARD_COLUMNS,
    CardEvents,
    DayRange,
    TerminalDay,
    cut_to_history,
)

RING_DAYS = 64  # slots per terminal: more than the deepest window (label delay + 30 days)


def _rows(rows: Sequence[Sequence]) -> bytes:
    """Rows (``CARD_COLUMNS`` order) as a card's string stores them: each after a comma."""
    return b"," + orjson.dumps(rows)[1:-1] if rows else b""


def parse_history(value: bytes | str | None) -> CardEvents:
    """A card's stored string as the engine's columns, sorted by (time, id), each event
    once, only those within the history window of the newest.

    >>> stale = [1.0, "old", 9.0, "t", None, None, None]  # written before "category" was
    >>> rows = [[5.0, "b", 1.5, "t", None, None, None, None],
    ...         [5.0, "a", 2.0, "t", "FR", 1.0, 2.0, "fuel"]]
    >>> parse_history(_rows([stale]) + _rows(rows) + _rows(rows[:1]))
    ... # doctest: +NORMALIZE_WHITESPACE
    {'ts': [1.0, 5.0, 5.0], 'id': ['old', 'a', 'b'], 'amount': [9.0, 2.0, 1.5],
     'terminal': ['t', 't', 't'], 'country': [None, 'FR', None], 'lat': [None, 1.0, None],
     'lon': [None, 2.0, None], 'category': [None, 'fuel', None]}
    >>> from scoring.features.definitions import CARD_HISTORY_SECONDS
    >>> later = [[1.0 + CARD_HISTORY_SECONDS, "c", 4.0, "t", None, None, None, None]]
    >>> parse_history(_rows([stale]) + _rows(later))["id"]
    ['c']
    """
    return _history(value)[0]


def _history(value: bytes | str | None) -> tuple[CardEvents, int]:
    """``parse_history``, and how many rows the string held (stale and repeated ones too)."""
    if not value:
        return {name: [] for name in CARD_COLUMNS}, 0
    raw = value.encode() if isinstance(value, str) else value
    try:
        rows = orjson.loads(b"[" + raw[1:] + b"]")
    except orjson.JSONDecodeError as error:
        raise ValueError(
            f"a card history must be JSON rows ({error}; did another program write the key?)"
        ) from error
    stored = len(rows)
    width = len(CARD_COLUMNS)
    # rows written before a column was added end early: the new columns are unknown there
    rows = [row if len(row) == width else [*row, *[None] * (width - len(row))] for row in rows]
    rows.sort(key=_TIME_THEN_ID)
    # an event appended twice (two workers scoring it across a rebalance; a resent batch
    # no longer can, its token stops it): each event once
    if len({row[1] for row in rows}) < len(rows):
        rows = [row for i, row in enumerate(rows) if i == 0 or row[:2] != rows[i - 1][:2]]
    columns = [list(column) for column in zip(*rows, strict=True)]  # every row: all columns
    history = dict(zip(CARD_COLUMNS, columns, strict=True))
    cut_to_history(history)
    return history, stored


_TIME_THEN_ID = operator.itemgetter(0, 1)


def unpack_rings(rings: Sequence[bytes | None]) -> np.ndarray:
    """``(terminals, 3, RING_DAYS)``: per terminal, the transactions, frauds and day of each
    slot (Redis packs ``BITFIELD`` integers big-endian; a missing ring is all zeros)."""
    size = 3 * RING_DAYS * 4
    packed = b"".join((ring or b"").ljust(size, b"\0") for ring in rings)
    return np.frombuffer(packed, dtype=">i4").reshape(len(rings), 3, RING_DAYS).astype(np.int64)


def _sum_rings(
    terminals: list[str],
    rings: list[bytes | None],
    terminal_days: Sequence[TerminalDay],
    ranges: Sequence[DayRange],
) -> dict[TerminalDay, list[int]]:
    """Each (terminal, day)'s transactions and frauds over each range of days back, from the
    terminals' rings, for the whole batch at once."""
    if not terminal_days or not any(rings):
        return {}
    deepest = max(last for _, last in ranges)
    if deepest >= RING_DAYS:
        raise ValueError(f"terminal windows reach {deepest} days back; the ring keeps {RING_DAYS}")
    if len(terminal_days) <= FEW_TERMINAL_DAYS:
        return _sum_few_rings(dict(zip(terminals, rings, strict=True)), terminal_days, ranges)
    state = unpack_rings(rings)
    index = {terminal: i for i, terminal in enumerate(terminals)}
    rows = np.array([index[terminal] for terminal, _ in terminal_days])[:, None]
    days = np.array([day for _, day in terminal_days])[:, None] - np.arange(1, deepest + 1)
    slots = days % RING_DAYS
    held = state[rows, 2, slots] == days  # the slot holds that very day
    totals = [np.zeros((len(days), 1), dtype=np.int64)]
    sums = []
    for kind in (0, 1):
        running = np.concatenate([totals[0], np.cumsum(state[rows, kind, slots] * held, axis=1)], 1)
        sums.append([running[:, last] - running[:, first - 1] for first, last in ranges])
    flat = np.stack([part for pair in zip(*sums, strict=True) for part in pair], axis=1)
    return {
        asked: counts
        for asked, counts in zip(terminal_days, flat.tolist(), strict=True)
        if any(counts)
    }


FEW_TERMINAL_DAYS = 8  # below this, plain Python beats numpy's per-call overhead (~100 us)


def _sum_few_rings(
    rings: dict[str, bytes | None],
    terminal_days: Sequence[TerminalDay],
    ranges: Sequence[DayRange],
) -> dict[TerminalDay, list[int]]:
    """``_sum_rings`` for a handful of (terminal, day) pairs (the REST facade's case)."""
    found = {}
    deepest = max(last for _, last in ranges)
    for terminal, day in terminal_days:
        ring = rings.get(terminal)
        if not ring:
            continue
        values = struct.unpack(f">{3 * RING_DAYS}i", ring.ljust(3 * RING_DAYS * 4, b"\0"))
        counts, frauds = [0] * (deepest + 1), [0] * (deepest + 1)  # by days back
        for back in range(1, deepest + 1):
            slot = (day - back) % RING_DAYS
            if values[2 * RING_DAYS + slot] == day - back:
                counts[back], frauds[back] = values[slot], values[RING_DAYS + slot]
        sums = []
        for first, last in ranges:
            sums += [sum(counts[first : last + 1]), sum(frauds[first : last + 1])]
        if any(sums):
            found[(terminal, day)] = sums
    return found
