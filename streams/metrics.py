"""Prometheus metrics of one worker; ``start_http_server`` serves them on the metrics port."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from schemas.scored import ScoredTransaction

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class WorkerMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.scored = Counter("fraudstream_scored", "Transactions scored", ["decision"], registry=r)
        self.fallback = Counter(
            "fraudstream_fallback", "Transactions decided by the rules", registry=r
        )
        self.dead_letters = Counter(
            "fraudstream_dead_letters", "Messages sent to the DLQ", registry=r
        )
        self.labels = Counter(
            "fraudstream_labels", "Labels applied to the feature state", registry=r
        )
        self.batch_size = Histogram(
            "fraudstream_batch_size", "Transactions per scoring batch",
            buckets=(1, 5, 10, 25, 50, 100, 250, 500, 1000, 2000), registry=r,
        )  # fmt: skip
        self.ingest_latency = Histogram(
            "fraudstream_ingest_to_scored_seconds", "From the broker's timestamp to scored",
            buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.event_latency = Histogram(
            "fraudstream_event_to_scored_seconds", "From the transaction's event time to scored",
            buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.model = Gauge(
            "fraudstream_serving_model", "1 for the model this worker serves", ["model", "version"],
            registry=r,
        )  # fmt: skip
        self.quality = Gauge(
            "fraudstream_model_quality",
            "Rolling quality of the served model over its most recent labelled transactions",
            ["version", "measure"],
            registry=r,
        )
        self.lag = Gauge(
            "fraudstream_consumer_lag",
            "Messages in a partition this worker has not read yet (log end - next offset)",
            ["topic", "partition"],
            registry=r,
        )
        self.training_rows = Counter(
            "fraudstream_training_store_rows",
            "Rows written to the training store",
            ["kind"],
            registry=r,
        )

    def observe_batch(
        self, scored: Sequence[ScoredTransaction], dead_letters: int, now: datetime
    ) -> None:
        self.batch_size.observe(len(scored) + dead_letters)
        self.dead_letters.inc(dead_letters)
        for item in scored:
            self.scored.labels(str(item.decision)).inc()
            self.ingest_latency.observe(max((now - item.ingest_time).total_seconds(), 0.0))
            self.event_latency.observe(
                max((now - item.transaction.event_time).total_seconds(), 0.0)
            )
        if scored and scored[0].fallback:
            self.fallback.inc(len(scored))

    def serving(self, name: str, version: str) -> None:
        self.model.clear()
        self.model.labels(name, version).set(1)
