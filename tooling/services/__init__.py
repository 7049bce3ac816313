"""Local Kafka (KRaft), Redis and MLflow without Docker, and on request a schema registry,
Prometheus and Alertmanager: ``fraudstream services up|down|status [--only ...]``."""

from __future__ import annotations

from streams.settings import Settings
from tooling.services.kafka import LocalKafka
from tooling.services.mlflow import LocalMlflow
from tooling.services.monitoring import LocalAlertmanager, LocalPrometheus
from tooling.services.process import ServiceError, ServiceStatus
from tooling.services.redis import LocalRedis
from tooling.services.schema_registry import LocalSchemaRegistry

NAMES = ("kafka", "redis", "mlflow")  # what the system needs: `services up` starts these
# started when named (Prometheus sends to Alertmanager: that one first)
OPTIONAL = ("schema-registry", "alertmanager", "prometheus")
ALL = NAMES + OPTIONAL

__all__ = ["ALL", "NAMES", "LocalServices", "ServiceError", "ServiceStatus"]

Service = (
    LocalKafka | LocalRedis | LocalMlflow | LocalSchemaRegistry | LocalAlertmanager
    | LocalPrometheus
)  # fmt: skip


class LocalServices:
    """The services, started in dependency order and stopped in reverse."""

    def __init__(self, settings: Settings) -> None:
        self.kafka = LocalKafka(settings)
        self.redis = LocalRedis(settings)
        self.mlflow = LocalMlflow(settings)
        self.alertmanager = LocalAlertmanager(settings)
        self.prometheus = LocalPrometheus(settings)
        self.by_name: dict[str, Service] = {
            "kafka": self.kafka, "redis": self.redis, "mlflow": self.mlflow,
            "schema-registry": LocalSchemaRegistry(settings),
            "alertmanager": self.alertmanager, "prometheus": self.prometheus,
        }  # fmt: skip
        self.started: list[str] = []

    def _pick(self, names: tuple[str, ...]) -> list[Service]:
        unknown = set(names) - set(ALL)
        if unknown:
            raise ServiceError(
                f"unknown service(s) {sorted(unknown)}: choose from {', '.join(ALL)}"
            )
        return [self.by_name[name] for name in ALL if name in names]

    def _optional(self, name: str) -> LocalSchemaRegistry | LocalAlertmanager | LocalPrometheus:
        service = self.by_name[name]
        assert not isinstance(service, LocalKafka | LocalRedis | LocalMlflow)
        return service

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

    def down(self, names: tuple[str, ...] = ALL) -> list[str]:
        """Stop what ``up`` started; returns the names of the services that were stopped."""
        return [service.name for service in reversed(self._pick(names)) if service.down()]

    def status(self, names: tuple[str, ...] | None = None) -> list[ServiceStatus]:
        """The named services; by default the system's and the monitoring that runs."""
        if names is None:
            running = (n for n in OPTIONAL if self._optional(n).process.pid() is not None)
            names = NAMES + tuple(running)
        return [service.status() for service in self._pick(names)]
