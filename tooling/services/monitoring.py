"""Prometheus and Alertmanager as local services, from the Debian packages
(``fraudstream services up --only prometheus,alertmanager``): the compose stack's monitoring on
a machine without Docker. Prometheus scrapes the ports the local processes use by default,
evaluates ``deploy/prometheus/alerts.yml`` and sends what fires to the local Alertmanager,
which routes it by ``deploy/alertmanager/alertmanager.yml``."""

from __future__ import annotations

import json
from pathlib import Path

from streams.settings import Settings
from tooling.services.alertmanager import alertmanager_command
from tooling.services.process import (
    ManagedProcess,
    ServiceStatus,
    answers_200,
    refuse_taken_port,
    wait_until,
)
from tooling.services.prometheus import prometheus_command

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
ALERT_RULES = DEPLOY / "prometheus" / "alerts.yml"
ALERTMANAGER_CONFIG = DEPLOY / "alertmanager" / "alertmanager.yml"


def scrape_targets(settings: Settings) -> dict[str, str]:
    """Each job of the compose Prometheus and where the local process of that kind listens:
    the ports the demo gives its scorer, sinks and trainer, and the API's.

    >>> scrape_targets(Settings())["fraudstream-trainer"]
    '127.0.0.1:9466'
    """
    port = settings.metrics_port or Settings().metrics_port
    return {
        "fraudstream-scorer": f"127.0.0.1:{port}",
        "fraudstream-sink": f"127.0.0.1:{port + 1}",
        "fraudstream-trainer": f"127.0.0.1:{port + 2}",
        "fraudstream-api": f"127.0.0.1:{settings.api_port}",
    }


def prometheus_config(settings: Settings) -> dict:
    return {
        "global": {"scrape_interval": "5s", "evaluation_interval": "5s"},
        "rule_files": [str(ALERT_RULES)],
        "alerting": {"alertmanagers": [
            {"static_configs": [{"targets": [f"127.0.0.1:{settings.alertmanager_port}"]}]}
        ]},
        "scrape_configs": [
            {"job_name": job, "static_configs": [{"targets": [target]}]}
            for job, target in scrape_targets(settings).items()
        ],
    }  # fmt: skip


class _Monitor:
    """A Debian-packaged server on 127.0.0.1 with a readiness endpoint, started once."""

    name = ""
    variable = ""  # the setting that moves its port

    def __init__(self, settings: Settings, port: int) -> None:
        self.settings = settings
        self.port = port
        self.data_dir = settings.home / self.name
        self.url = f"http://127.0.0.1:{port}"
        self.process = ManagedProcess(
            self.name, settings.home / "run", f"--web.listen-address=127.0.0.1:{port}"
        )

    def command(self) -> list[str]:
        raise NotImplementedError

    def ready(self) -> bool:
        return answers_200(f"{self.url}/-/ready")  # Prometheus's and Alertmanager's probe

    def up(self) -> bool:
        """Start it unless ours runs; True if this call started it."""
        started = self.process.pid() is None
        if started:
            refuse_taken_port("127.0.0.1", self.port, self.variable)
            self.data_dir.mkdir(parents=True, exist_ok=True)
            self.process.start(self.command())
        wait_until(self.ready, 60.0, self.name.capitalize(), self.process)
        return started

    def down(self) -> bool:
        return self.process.stop()

    def status(self) -> ServiceStatus:
        pid = self.process.pid()
        if not self.ready():
            detail = f"pid {pid}, not ready" if pid else "not started"
            return ServiceStatus(self.name, False, self.url, detail)
        return ServiceStatus(self.name, True, self.url, f"pid {pid}" if pid else "not ours")


class LocalPrometheus(_Monitor):
    name = "prometheus"
    variable = "FRAUD_PROMETHEUS_PORT"

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings, settings.prometheus_port)

    def command(self) -> list[str]:
        # written at every start: the ports and the Alertmanager follow the settings
        config = self.data_dir / "prometheus.yml"
        config.write_text(json.dumps(prometheus_config(self.settings), indent=2) + "\n")
        return prometheus_command(config, self.port, self.data_dir)


class LocalAlertmanager(_Monitor):
    name = "alertmanager"
    variable = "FRAUD_ALERTMANAGER_PORT"

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings, settings.alertmanager_port)

    def command(self) -> list[str]:
        return alertmanager_command(ALERTMANAGER_CONFIG, self.port, self.data_dir)
