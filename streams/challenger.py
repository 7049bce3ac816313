"""The online challenger between Faust and river: one learner (the ``challenger`` agent)
learns test-then-train from the scored stream and the labels, and publishes the model to
Redis every few seconds; every scoring worker picks the latest up and scores with it in
shadow (``challenger_probability`` in each scored event)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

import numpy as np
import redis

from schemas.scored import ScoredEvent
from scoring.challenger import LabelDelay, OnlineChallenger
from scoring.features.definitions import FEATURE_NAMES, SECONDS_PER_DAY
from scoring.quality import RollingQuality
from streams.metrics import WorkerMetrics

logger = logging.getLogger(__name__)

QUALITY_LABEL = "challenger"


class ChallengerLearner:
    """Owns the challenger model; ``learn_*`` run in threads, hence the lock."""

    def __init__(self, delay_days: int, metrics: WorkerMetrics, threshold: float) -> None:
        """``delay_days``: how long an example waits for a fraud label before it is learnt
        as genuine (longer than the usual label delay: a fraud learnt as genuine stays so)."""
        self.challenger = OnlineChallenger(FEATURE_NAMES)
        self.waiting = LabelDelay(delay_days * SECONDS_PER_DAY)
        self.quality = RollingQuality(threshold=threshold)
        self.metrics = metrics
        self.latest_event_time = 0.0
        self._lock = threading.Lock()

    def resume(self, published: OnlineChallenger | None) -> None:
        """Go on from the model published before a restart (the examples that were waiting
        for their truth are gone: they are not learnt)."""
        with self._lock:
            if published is not None and not self.challenger.learned:
                self.challenger = published
                logger.info("the online challenger resumes at %s", published.version)

    def learn_scored(self, events: Sequence[ScoredEvent], event_times: np.ndarray) -> int:
        """Keep new examples until their truth is known; learn those whose delay passed."""
        if not events:
            return 0
        ids = [event.transaction_id for event in events]
        names = self.challenger.features
        rows = np.array([[event.features[name] for name in names] for event in events])
        with self._lock:
            self.waiting.add(ids, event_times, rows)
            self.latest_event_time = max(self.latest_event_time, float(event_times.max()))
            return self._learn(*self.waiting.matured(self.latest_event_time))

    def learn_labels(self, ids: Sequence[str], is_fraud: Sequence[bool]) -> int:
        with self._lock:
            return self._learn(*self.waiting.labelled(ids, is_fraud))

    def _learn(self, rows: np.ndarray, labels: np.ndarray) -> int:
        if not len(rows):
            return 0
        scores = self.challenger.learn(rows, labels)  # scored first: test, then train
        self.quality.add(scores.tolist(), labels.tolist())
        for measure, value in self.quality.snapshot().items():
            self.metrics.quality.labels(QUALITY_LABEL, measure).set(value)
        return len(rows)

    def dumps(self) -> bytes:
        with self._lock:
            return self.challenger.dumps()


class ChallengerChannel:
    """The model's bytes under one Redis key: the learner writes, the scorers read."""

    def __init__(self, client: redis.Redis, key: str) -> None:
        self.client, self.key = client, key
        self._last: bytes | None = None
        self.current: OnlineChallenger | None = None

    def publish(self, data: bytes) -> None:
        self.client.set(self.key, data)

    def refresh(self) -> OnlineChallenger | None:
        """Load the published model if it changed (blocking: a Redis GET)."""
        try:
            data = self.client.get(self.key)
        except redis.RedisError as error:
            logger.warning("challenger not refreshed: %s", error)
            return self.current
        if isinstance(data, bytes) and data != self._last:
            try:
                self.current = OnlineChallenger.loads(data)
            except Exception as error:  # a bad blob: keep the model we have
                logger.warning("ignored an unreadable challenger: %s", error)
                return self.current
            self._last = data
        return self.current
