"""Worker metrics observed a batch at a time agree with the Prometheus client's own."""

from __future__ import annotations

from datetime import timedelta

from prometheus_client import CollectorRegistry, Histogram

from streams.metrics import LATENCY_BUCKETS, BatchHistogram, WorkerMetrics
from tests.unit.test_pipeline import NOW, message, pipeline

VALUES = [0.0, 0.001, 0.0011, 0.003, 0.05, 0.7, 1.0, 29.0, 31.0, 1e6]


def test_batch_histogram_exposes_the_same_samples_as_the_client_histogram() -> None:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    batch = BatchHistogram("latency_seconds", "latency", LATENCY_BUCKETS, ours)
    single = Histogram("latency_seconds", "latency", buckets=LATENCY_BUCKETS, registry=theirs)

    batch.observe_many(VALUES[:4])
    batch.observe_many([*VALUES[4:], -2.0])  # clock skew counts as 0
    for value in [*VALUES, 0.0]:
        single.observe(value)

    def samples(registry: CollectorRegistry) -> list[tuple[str, list[tuple[str, str]], float]]:
        return sorted(
            (s.name, sorted(s.labels.items()), s.value)
            for metric in registry.collect()
            for s in metric.samples
            if not s.name.endswith("_created")
        )

    assert samples(ours) == samples(theirs)
    assert ours.get_sample_value("latency_seconds_bucket", {"le": "0.001"}) == 3


def test_a_batch_counts_decisions_dead_letters_and_latencies() -> None:
    metrics = WorkerMetrics()
    result = pipeline().score_batch([message(0), message(1), message(2, amount="x")])

    metrics.observe_batch(result, NOW + timedelta(seconds=2))

    value = metrics.registry.get_sample_value
    assert value("fraudstream_scored_total", {"decision": "approve"}) == 2
    assert value("fraudstream_dead_letters_total", {"reason": "invalid"}) == 1
    assert value("fraudstream_dead_letters_total", {"reason": "future"}) == 0
    # ingest minus event time: 5 s for both scored transactions
    assert (
        value(
            "fraudstream_ingest_minus_event_seconds", {"topic": "transactions", "quantile": "0.99"}
        )
        == 5.0
    )
    assert value("fraudstream_fallback_total") == 2
    assert value("fraudstream_batch_size_sum") == 3
    # ingest_time is NOW, event time 5 s earlier: 2 s and 7 s after them
    assert value("fraudstream_ingest_to_scored_seconds_sum") == 4.0
    assert value("fraudstream_event_to_scored_seconds_sum") == 14.0
    assert value("fraudstream_event_to_scored_seconds_bucket", {"le": "5.0"}) == 0
    assert value("fraudstream_event_to_scored_seconds_bucket", {"le": "10.0"}) == 2


def test_the_served_version_is_a_number_a_dashboard_can_draw() -> None:
    metrics = WorkerMetrics()
    metrics.serving("fraud-detector", "3")
    metrics.serving("fraud-detector", "4")  # a swap replaces the value, not adds a series
    read = metrics.registry.get_sample_value

    assert read("fraudstream_serving_model_version", {"model": "fraud-detector"}) == 4
    assert (
        read("fraudstream_serving_model_info", {"model": "fraud-detector", "version": "3"}) is None
    )
    assert read("fraudstream_serving_model_info", {"model": "fraud-detector", "version": "4"}) == 1
    metrics.serving("rules", "fallback")
    assert read("fraudstream_serving_model_version", {"model": "rules"}) == 0
    assert read("fraudstream_serving_model_version", {"model": "fraud-detector"}) is None
