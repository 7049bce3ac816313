"""docker-compose.yml offers Docker users the same three services, on the same host ports."""

from __future__ import annotations

from pathlib import Path

import yaml

from streams.settings import Settings

COMPOSE = Path(__file__).resolve().parents[2] / "docker-compose.yml"


def test_compose_file_has_the_three_services_with_healthchecks_on_our_ports() -> None:
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    defaults = Settings()

    assert set(services) >= {"kafka", "redis", "mlflow"}
    assert all("healthcheck" in services[name] for name in ("kafka", "redis", "mlflow"))
    assert services["kafka"]["image"] == f"apache/kafka:{defaults.kafka_version}"
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    published = {
        name: services[name]["ports"][0].split(":")[1] for name in ("kafka", "redis", "mlflow")
    }
    assert published == {
        "kafka": str(defaults.kafka_port),
        "redis": str(defaults.redis_port),
        "mlflow": str(defaults.mlflow_port),
    }
