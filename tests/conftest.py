"""Service fixtures: a Kafka bootstrap address, a Redis URL and an MLflow tracking URI.

Where they come from, first match wins:
1. ``FRAUD_KAFKA_BOOTSTRAP``, ``FRAUD_REDIS_URL``, ``FRAUD_MLFLOW_TRACKING_URI`` when set;
2. testcontainers, where a Docker engine answers (MLflow is a sqlite store either way);
3. the project's own local services (``fraudstream services up``): started here if they are
   not running, and stopped at the end only if this session started them.

Unit tests never touch these fixtures; tests under ``tests/integration`` are marked
``integration`` automatically.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


@dataclasses.dataclass(frozen=True)
class Endpoints:
    kafka_bootstrap: str
    redis_url: str
    mlflow_tracking_uri: str
    mlflow_artifact_dir: Path
    source: str  # "environment", "testcontainers" or "local services"

    def settings(self, **overrides: object) -> Settings:
        """Settings that point at these services (FRAUD_HOME and friends still apply)."""
        base = Settings.from_env(os.environ)
        return base.replace(
            kafka_bootstrap_override=self.kafka_bootstrap,
            redis_url_override=self.redis_url,
            mlflow_tracking_uri_override=self.mlflow_tracking_uri,
            mlflow_artifact_dir_override=self.mlflow_artifact_dir,
            **overrides,
        )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration/" in str(item.path).replace(os.sep, "/"):
            item.add_marker(pytest.mark.integration)
    items.sort(key=lambda item: item.get_closest_marker("last") is not None)  # stable


@pytest.fixture
def outside_the_scan() -> Iterator[Path]:
    """A folder for test inputs that hold a card number on purpose. Not under pytest's temp
    directory: the suite's last test scans that as what the system wrote."""
    with tempfile.TemporaryDirectory(prefix="fraudstream-hostile-") as folder:
        yield Path(folder)


@pytest.fixture(scope="session")
def services() -> Iterator[Endpoints]:
    given = _from_environment()
    if given is not None:
        yield given
    elif _docker_engine_answers():
        yield from _from_testcontainers()
    else:
        yield from _from_local_services()


@pytest.fixture(scope="session")
def kafka_bootstrap(services: Endpoints) -> str:
    return services.kafka_bootstrap


@pytest.fixture(scope="session")
def redis_url(services: Endpoints) -> str:
    return services.redis_url


@pytest.fixture(scope="session")
def mlflow_tracking_uri(services: Endpoints) -> str:
    return services.mlflow_tracking_uri


def _from_environment() -> Endpoints | None:
    names = ("FRAUD_KAFKA_BOOTSTRAP", "FRAUD_REDIS_URL", "FRAUD_MLFLOW_TRACKING_URI")
    if not all(os.environ.get(name) for name in names):
        return None
    settings = Settings.from_env(os.environ)
    return Endpoints(
        settings.kafka_bootstrap,
        settings.redis_url,
        settings.mlflow_tracking_uri,
        settings.mlflow_artifact_dir,
        "environment",
    )


def _docker_engine_answers() -> bool:
    if os.environ.get("FRAUD_SERVICES") == "local" or shutil.which("docker") is None:
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _from_testcontainers() -> Iterator[Endpoints]:
    # Not exercised on machines without a Docker engine (CI here): the local path below is.
    from testcontainers.kafka import KafkaContainer
    from testcontainers.redis import RedisContainer

    with (
        KafkaContainer("confluentinc/cp-kafka:8.1.0").with_kraft() as kafka,
        RedisContainer("redis:7.4") as redis,
        tempfile.TemporaryDirectory() as mlflow_dir,
    ):
        host, port = redis.get_container_host_ip(), redis.get_exposed_port(6379)
        yield Endpoints(
            kafka.get_bootstrap_server(),
            f"redis://{host}:{port}/0",
            f"sqlite:///{mlflow_dir}/mlflow.db",
            Path(mlflow_dir) / "artifacts",
            "testcontainers",
        )


def _from_local_services() -> Iterator[Endpoints]:
    from tooling.services import LocalServices

    settings = Settings.from_env(os.environ)
    local = LocalServices(settings)
    try:
        local.up()
        yield Endpoints(
            settings.kafka_bootstrap,
            settings.redis_url,
            settings.mlflow_tracking_uri,
            settings.mlflow_artifact_dir,
            "local services",
        )
    finally:
        if not os.environ.get("FRAUD_KEEP_SERVICES"):
            local.down(tuple(local.started))
