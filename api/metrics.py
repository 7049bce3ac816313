"""The API's Prometheus metrics."""

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    ProcessCollector,
)

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
CLIENT_CLOSED = 499  # the status metrics give a call whose caller left before its body came


class ApiMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        ProcessCollector(registry=registry)  # CPU, memory, open files
        GCCollector(registry=registry)
        self.requests = Counter(
            "fraudstream_api_requests", "REST requests", ["route", "status"], registry=registry
        )
        self.latency = Histogram(
            "fraudstream_api_latency_seconds", "REST request latency", ["route"],
            buckets=LATENCY_BUCKETS, registry=registry,
        )  # fmt: skip
        self.fallback = Counter(
            "fraudstream_api_fallback", "Transactions the rules scored", registry=registry
        )
        self.model = Gauge(
            "fraudstream_api_serving_model_info", "1 for the model this API serves",
            ["model", "version"], registry=registry,
        )  # fmt: skip
        self.model_version = Gauge(
            "fraudstream_api_serving_model_version",
            "The registry version this API serves, as a number (0: the rules fallback)",
            ["model"], registry=registry,
        )  # fmt: skip

    def observe(self, route: str, status: int, seconds: float) -> None:
        self.requests.labels(route, str(status)).inc()
        self.latency.labels(route).observe(seconds)
