"""The two ways of summing terminal rings (numpy for batches, Python for a few) agree."""

from __future__ import annotations

import random
import struct

from scoring.adapters.redis_codec import RING_DAYS, _sum_few_rings, _sum_rings


def ring(rng: random.Random, newest: int) -> bytes:
    """A ring as Redis stores it: counts, frauds, and the day each slot holds."""
    counts = [0] * RING_DAYS
    frauds = [0] * RING_DAYS
    days = [0] * RING_DAYS
    for day in range(newest - 80, newest + 1):  # older days overwritten by newer ones
        if rng.random() < 0.7:
            slot = day % RING_DAYS
            counts[slot], frauds[slot], days[slot] = rng.randint(1, 9), rng.randint(0, 2), day
    packed = struct.pack(f">{3 * RING_DAYS}i", *counts, *frauds, *days)
    return packed[: rng.choice([len(packed), len(packed) - 40])]  # Redis may store it short


def test_few_and_many_give_the_same_sums() -> None:
    rng = random.Random(3)
    terminals = [f"t{i}" for i in range(12)]
    rings: list[bytes | None] = [ring(rng, 20_000 + rng.randint(0, 5)) for _ in terminals]
    rings[4] = None  # a terminal never seen
    asked = [(t, 20_000 + rng.randint(-3, 6)) for t in terminals for _ in range(2)]
    ranges = [(1, 1), (1, 7), (1, 30), (8, 8), (8, 14), (8, 37)]

    many = _sum_rings(terminals, rings, asked, ranges)
    few = {}
    for pair in asked:
        few.update(_sum_few_rings(dict(zip(terminals, rings, strict=True)), [pair], ranges))

    assert many == few
    assert len(many) > 15 and all(len(sums) == 12 for sums in many.values())
