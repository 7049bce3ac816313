"""Prometheus metrics of one worker; ``start_http_server`` serves them on the metrics port."""

from __future__ import annotations

import collections
import threading
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import get_args

import numpy as np
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    ProcessCollector,
)
from prometheus_client.metrics_core import HistogramMetricFamily, Metric
from prometheus_client.utils import floatToGoString

from schemas.events import DeadLetterReason
from scoring.pipeline import BatchResult
from scoring.serving import version_number

SKEW_SAMPLE = 10_000  # the event-time skew gauge's quantiles are over this many transactions
SKEW_QUANTILES = (0.01, 0.5, 0.99)
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class WorkerMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        ProcessCollector(registry=r)  # CPU, memory, open files: fresh registries have none
        GCCollector(registry=r)
        self.scored = Counter("fraudstream_scored", "Transactions scored", ["decision"], registry=r)
        self.fallback = Counter(
            "fraudstream_fallback", "Transactions decided by the rules", registry=r
        )
        self.dead_letters = Counter(
            "fraudstream_dead_letters",
            "Messages sent to the DLQ, by reason (invalid, future: a clock ahead of the skew "
            "limit, too_old)",
            ["reason"],
            registry=r,
        )
        for reason in get_args(DeadLetterReason):
            self.dead_letters.labels(reason)  # every reason's series exists from the start
        self.late = Counter(
            "fraudstream_late",
            "Transactions scored late: behind their stream beyond every feature window, so "
            "the feature state was not changed",
            registry=r,
        )
        self.event_skew = Gauge(
            "fraudstream_ingest_minus_event_seconds",
            f"Ingest time minus event time over the last {SKEW_SAMPLE:,} scored transactions "
            "of a topic, at a quantile (negative: event times ahead of the broker's clock)",
            ["topic", "quantile"],
            registry=r,
        )
        self._skews: dict[str, collections.deque[float]] = {}
        self.degraded = Counter(
            "fraudstream_degraded",
            "Transactions scored while the feature store was unreachable (the rules decided)",
            registry=r,
        )
        self.held_writes = Gauge(
            "fraudstream_held_state_writes",
            "Transactions whose feature-state writes wait in memory for Redis to answer",
            registry=r,
        )
        self.labels = Counter(
            "fraudstream_labels", "Labels applied to the feature state", registry=r
        )
        self.batch_size = Histogram(
            "fraudstream_batch_size", "Transactions per scoring batch",
            buckets=(1, 5, 10, 25, 50, 100, 250, 500, 1000, 2000), registry=r,
        )  # fmt: skip
        self.ingest_latency = BatchHistogram(
            "fraudstream_ingest_to_scored_seconds", "From the broker's timestamp to scored",
            LATENCY_BUCKETS, r,
        )  # fmt: skip
        self.event_latency = BatchHistogram(
            "fraudstream_event_to_scored_seconds", "From the transaction's event time to scored",
            LATENCY_BUCKETS, r,
        )  # fmt: skip
        self.model = Gauge(
            "fraudstream_serving_model_info",
            "1 for the model this worker serves (count by (version): a worker left behind shows)",
            ["model", "version"], registry=r,
        )  # fmt: skip
        self.model_version = Gauge(
            "fraudstream_serving_model_version",
            "The registry version this worker serves, as a number (0: the rules fallback)",
            ["model"],
            registry=r,
        )
        self.outcomes = Counter(
            "fraudstream_label_outcomes",
            "Labelled transactions by what the served version did with them at its review "
            "threshold (true_positive, false_positive, false_negative, true_negative): "
            "fleet-wide precision and recall are ratios of their rates",
            ["version", "outcome"], registry=r,
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

        self.drift_windows = Counter(
            "fraudstream_drift_windows", "Drift windows evaluated, by severity", ["severity"],
            registry=r,
        )  # fmt: skip
        self.drift_share = Gauge(
            "fraudstream_drift_share", "Share of features drifted in the latest window", registry=r
        )
        self.feature_psi = Gauge(
            "fraudstream_feature_drift_psi", "PSI of a feature in the latest window", ["feature"],
            registry=r,
        )  # fmt: skip
        self.feature_drifted = Gauge(
            "fraudstream_feature_drifted", "1 if the feature drifted in the latest window",
            ["feature"], registry=r,
        )  # fmt: skip
        self.retrain_requests = Counter(
            "fraudstream_retrain_requests", "Retrain requests sent by the drift agent", registry=r
        )

    def observe_batch(self, result: BatchResult, now: datetime) -> None:
        self.batch_size.observe(len(result) + len(result.dead_letters))
        for letter in result.dead_letters:
            self.dead_letters.labels(letter.reason).inc()
        if not len(result):
            return
        if result.late:
            self.late.inc(sum(result.late))
        self._observe_skew(result)
        decisions, counts = np.unique(result.decisions, return_counts=True)
        for decision, count in zip(decisions.tolist(), counts.tolist(), strict=True):
            self.scored.labels(decision).inc(count)
        stamp = now.timestamp()
        self.ingest_latency.observe_many(
            [stamp - message.ingest_time.timestamp() for message in result.messages]
        )
        self.event_latency.observe_many(
            [stamp - transaction.event_time.timestamp() for transaction in result.transactions]
        )
        if result.scorer.fallback:
            self.fallback.inc(len(result))
        if result.degraded:
            self.degraded.inc(len(result))

    def _observe_skew(self, result: BatchResult) -> None:
        by_topic: dict[str, list[float]] = {}
        for message, transaction in zip(result.messages, result.transactions, strict=True):
            skew = message.ingest_time.timestamp() - transaction.event_time.timestamp()
            by_topic.setdefault(message.topic, []).append(skew)
        for topic, skews in by_topic.items():
            recent = self._skews.setdefault(topic, collections.deque(maxlen=SKEW_SAMPLE))
            recent.extend(skews)
            values = np.quantile(np.fromiter(recent, float, len(recent)), SKEW_QUANTILES)
            for quantile, value in zip(SKEW_QUANTILES, values.tolist(), strict=True):
                self.event_skew.labels(topic, str(quantile)).set(value)

    def serving(self, name: str, version: str) -> None:
        self.model.clear()
        self.model.labels(name, version).set(1)
        self.model_version.clear()
        self.model_version.labels(name).set(version_number(version))


class BatchHistogram:
    """A Prometheus histogram observed a batch at a time (numpy bucket counts): the client's
    own ``Histogram.observe`` costs a lock and a Python loop per value."""

    def __init__(
        self, name: str, documentation: str, buckets: Sequence[float], registry: CollectorRegistry
    ) -> None:
        self.name, self.documentation = name, documentation
        self.bounds = np.asarray(buckets, dtype=np.float64)
        self.counts = np.zeros(len(buckets) + 1, dtype=np.int64)  # the last: above every bound
        self.sum = 0.0
        self.lock = threading.Lock()  # the metrics server collects from its own thread
        registry.register(self)

    def observe_many(self, values: Sequence[float]) -> None:
        """Count ``values`` (negative ones, from clock skew, as 0)."""
        seconds = np.maximum(np.asarray(values, dtype=np.float64), 0.0)
        placed = np.bincount(
            np.searchsorted(self.bounds, seconds, side="left"), minlength=len(self.counts)
        )
        with self.lock:
            self.counts += placed
            self.sum += float(seconds.sum())

    def collect(self) -> Iterator[Metric]:
        with self.lock:
            cumulative, total = np.cumsum(self.counts).tolist(), self.sum
        bounds = [floatToGoString(b) for b in self.bounds.tolist()] + ["+Inf"]
        yield HistogramMetricFamily(
            self.name,
            self.documentation,
            buckets=list(zip(bounds, cumulative, strict=True)),
            sum_value=total,
        )
