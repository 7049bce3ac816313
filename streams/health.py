"""A worker's health, from its own work: liveness is the event loop's heartbeat, readiness is
"joined its consumer group and serving a model (or the fallback, where that is declared
acceptable)". Served beside the Prometheus metrics on the metrics port: ``/health``,
``/ready`` (200 or 503 with the reason in JSON), anything else the metrics.

The HTTP server runs in a thread of its own, so it answers while the loop is stuck - with a
503 once the heartbeat is older than ``stale_after_s``: a hung loop is reported, where the
metrics thread alone kept answering 200.
"""

from __future__ import annotations

import json
import socketserver
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app

HEARTBEAT_EVERY_S = 1.0


class Health:
    """
    >>> now = [100.0]
    >>> health = Health(stale_after_s=10, clock=lambda: now[0])
    >>> health.alive()[0], health.ready()[0]
    (True, False)
    >>> health.joined(); health.serving(fallback=False); health.ready()[0]
    True
    >>> now[0] = 111.0; health.alive()
    (False, {'alive': False, 'heartbeat_age_s': 11.0, 'stale_after_s': 10})
    """

    def __init__(
        self, stale_after_s: float, fallback_ready: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:  # fmt: skip
        self.stale_after_s, self.fallback_ready, self.clock = stale_after_s, fallback_ready, clock
        self.last_beat = clock()
        self.in_group = False
        self.model_loaded = False

    def beat(self) -> None:
        """Called by the event loop every ``HEARTBEAT_EVERY_S``."""
        self.last_beat = self.clock()

    def joined(self) -> None:
        self.in_group = True

    def serving(self, fallback: bool) -> None:
        self.model_loaded = not fallback or self.fallback_ready

    def alive(self) -> tuple[bool, dict[str, Any]]:
        age = round(self.clock() - self.last_beat, 1)
        ok = age <= self.stale_after_s
        return ok, {"alive": ok, "heartbeat_age_s": age, "stale_after_s": self.stale_after_s}

    def ready(self) -> tuple[bool, dict[str, Any]]:
        alive, _ = self.alive()
        ok = alive and self.in_group and self.model_loaded
        return ok, {
            "ready": ok, "alive": alive, "joined_group": self.in_group,
            "model": self.model_loaded,
        }  # fmt: skip


def health_app(health: Health, registry: CollectorRegistry) -> Callable[..., Iterable[bytes]]:
    metrics = make_wsgi_app(registry)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "/")
        if path in ("/health", "/ready"):
            ok, body = health.alive() if path == "/health" else health.ready()
            status = "200 OK" if ok else "503 Service Unavailable"
            start_response(status, [("Content-Type", "application/json")])
            return [json.dumps(body).encode()]
        return metrics(environ, start_response)

    return app


class _ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # probes every few seconds
        pass


def serve_health(health: Health, registry: CollectorRegistry, host: str, port: int) -> WSGIServer:
    """``/health``, ``/ready`` and the metrics on ``host:port``, from a daemon thread."""
    server = make_server(
        host, port, health_app(health, registry), _ThreadingServer, handler_class=_QuietHandler
    )
    threading.Thread(target=server.serve_forever, name="health", daemon=True).start()
    return server
