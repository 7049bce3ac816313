"""Local Kafka (KRaft), Redis and MLflow without Docker: ``fraudstream services up|down|status``."""

from __future__ import annotations

from streams.settings import Settings
from tooling.services.kafka import LocalKafka
from tooling.services.mlflow import LocalMlflow
from tooling.services.process import ServiceError, ServiceStatus
from tooling.services.redis import LocalRedis

NAMES = ("kafka", "redis", "mlflow")

__all__ = ["NAMES", "LocalServices", "ServiceError", "ServiceStatus"]


class LocalServices:
    """The three services, started in dependency order and stopped in reverse."""

    def __init__(self, settings: Settings) -> None:
        self.kafka = LocalKafka(settings)
        self.redis = LocalRedis(settings)
        self.mlflow = LocalMlflow(settings)
        self.started: list[str] = []

    def _pick(self, names: tuple[str, ...]) -> list[LocalKafka | LocalRedis | LocalMlflow]:
        unknown = set(names) - set(NAMES)
        if unknown:
            raise ServiceError(
                f"unknown service(s) {sorted(unknown)}: choose from {', '.join(NAMES)}"
            )
        return [getattr(self, name) for name in NAMES if name in names]

    def up(self, names: tuple[str, ...] = NAMES, mlflow_server: bool = False) -> None:
        """Start what is not running; ``started`` then names what this object started, so a
        caller can stop exactly that, even if a later service failed to start."""
        for service in self._pick(names):
            if isinstance(service, LocalMlflow):
                started = service.up(with_server=mlflow_server)
            else:
                started = service.up()
            if started:
                self.started.append(service.name)

    def down(self, names: tuple[str, ...] = NAMES) -> list[str]:
        """Stop what ``up`` started; returns the names of the services that were stopped."""
        return [service.name for service in reversed(self._pick(names)) if service.down()]

    def status(self, names: tuple[str, ...] = NAMES) -> list[ServiceStatus]:
        return [service.status() for service in self._pick(names)]
