"""The labels agent: each batch of labels joins the feature state (terminal risk), the
served model's quality gauges and the training store; a label that cannot be decoded goes to
the dead-letter topic with its origin, like a transaction.

Its inputs are injected, so it is tested without a broker (``tests/unit/test_agents.py``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
from collections.abc import Callable
from typing import TypeVar

from pydantic import BaseModel

from schemas.codec import DecodeError, decode, encode
from schemas.events import DeadLetter, Label
from scoring.adapters.redis_store import UNREACHABLE
from scoring.features import FeatureEngine
from scoring.pipeline import scores_of, utc_now
from scoring.quality import RollingQuality
from streams.metrics import WorkerMetrics
from streams.scorer import KafkaMessage, SendValue
from streams.training_store import TrainingStore

logger = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")
UNREACHABLE_RETRY_S = 1.0


async def no_dead_letters(value: bytes) -> None:
    """For a reader whose dead letters another reader of the same topic sends (or none
    should be sent): ``decoded_or_dead`` still logs each undecodable message."""


async def decoded_or_dead(
    model: type[M], messages: list[KafkaMessage], send_dead_letter: SendValue
) -> list[M | None]:
    """Each message decoded as ``model``, or None after its dead letter is sent."""
    values: list[M | None] = []
    for message in messages:
        try:
            values.append(decode(model, message.value or b""))
        except DecodeError as error:
            logger.warning(
                "dead letter %s[%s]@%s: %s", message.topic, message.partition, message.offset,
                error, extra={"origin_topic": message.topic,
                              "origin_partition": message.partition,
                              "origin_offset": message.offset},
            )  # fmt: skip
            letter = DeadLetter.of(
                message.value or b"", str(error), message.topic, message.partition,
                message.offset, utc_now(),
            )  # fmt: skip
            await send_dead_letter(encode(letter))
            values.append(None)
    return values


def by_partition(pairs: list[tuple[KafkaMessage, T]]) -> list[tuple[str, list[T]]]:
    """A batch's items split by partition, each part named ``topic-partition-first-last``:
    within a partition those offsets say exactly which messages a training-store file holds,
    so a rewrite after a crash replaces the file and never clobbers another batch's."""
    groups: dict[tuple[str, int], list[tuple[KafkaMessage, T]]] = {}
    for message, item in pairs:
        groups.setdefault((message.topic, message.partition), []).append((message, item))
    return [
        (f"{topic}-{partition}-{part[0][0].offset}-{part[-1][0].offset}", [i for _, i in part])
        for (topic, partition), part in groups.items()
    ]


async def while_unreachable(
    action: Callable[[], object], retry_s: float = UNREACHABLE_RETRY_S
) -> None:
    """``action`` until Redis answers: a label is joined to its transaction's mark, which
    memory cannot stand in for, so the labels agent waits (and its offsets with it)."""
    while True:
        try:
            action()
            return
        except UNREACHABLE as error:
            logger.warning("labels wait for Redis: %s", error)
            await asyncio.sleep(retry_s)


def outcomes(pairs: list[tuple[float, bool]], threshold: float) -> dict[str, int]:
    """(score, is fraud) pairs counted by what a threshold made of them.

    >>> outcomes([(0.9, True), (0.8, False), (0.1, True), (0.2, False), (0.05, False)], 0.5)
    {'true_positive': 1, 'false_positive': 1, 'false_negative': 1, 'true_negative': 2}
    """
    counts = dict.fromkeys(
        ("true_positive", "false_positive", "false_negative", "true_negative"), 0
    )
    for score, fraud in pairs:
        flagged = score >= threshold
        key = ("true" if flagged == fraud else "false") + ("_positive" if flagged else "_negative")
        counts[key] += 1
    return counts


@dataclasses.dataclass
class LabelsAgent:
    engine: FeatureEngine
    store: TrainingStore
    quality: RollingQuality
    metrics: WorkerMetrics
    served_version: Callable[[], str]
    send_dead_letter: SendValue

    async def handle(self, messages: list[KafkaMessage]) -> None:
        labels = await decoded_or_dead(Label, messages, self.send_dead_letter)
        good = [label for label in labels if label is not None]
        if good:
            await while_unreachable(functools.partial(self.engine.apply_labels, good))
            self.metrics.labels.inc(len(good))
            await while_unreachable(functools.partial(self.measure_quality, good))
        for origin, part in by_partition(list(zip(messages, labels, strict=True))):
            found = [label for label in part if label is not None]
            written = await asyncio.to_thread(self.store.write_labels, found, origin)
            self.metrics.training_rows.labels("labels").inc(written)

    def measure_quality(self, labels: list[Label]) -> None:
        """Join labels to the scores their transactions got; update the served model's
        gauges."""
        served = self.served_version()
        scores = scores_of(self.engine.store, [label.transaction_id for label in labels])
        pairs = [
            (scores[label.transaction_id][0], label.is_fraud)
            for label in labels
            if scores.get(label.transaction_id, (0.0, ""))[1] == served
        ]
        if not pairs:
            return
        self.quality.add([p for p, _ in pairs], [y for _, y in pairs])
        for measure, value in self.quality.snapshot().items():
            self.metrics.quality.labels(served, measure).set(value)
        for outcome, count in outcomes(pairs, self.quality.threshold).items():
            self.metrics.outcomes.labels(served, outcome).inc(count)
