"""A schema registry without Docker: Apicurio Registry from Maven Central (its ``-all.zip``
distribution, run on the Java that runs Kafka), serving the Confluent-compatible API that
Karapace and Confluent's registry serve too (``/apis/ccompat/v7``). Its store is an H2 file
in ``$FRAUD_HOME/schema-registry``, so the registered schemas survive a restart.

``fraudstream schemas register`` publishes the topics' JSON Schemas to it - or to any
registry with that API (``FRAUD_SCHEMA_REGISTRY_URL``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from streams.settings import Settings
from tooling.services.kafka import require_java
from tooling.services.process import (
    ManagedProcess,
    ServiceError,
    ServiceStatus,
    answers_200,
    refuse_taken_port,
    wait_until,
)

logger = logging.getLogger(__name__)

VERSION = "3.0.9"  # the newest whose -all.zip Maven Central serves here
ARTIFACT = (
    f"https://repo1.maven.org/maven2/io/apicurio/apicurio-registry-app/{VERSION}/"
    f"apicurio-registry-app-{VERSION}-all.zip"
)
JSON_TYPE = "application/vnd.schemaregistry.v1+json"


class LocalSchemaRegistry:
    name = "schema-registry"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.port = settings.schema_registry_port
        self.app_dir = settings.cache_dir / f"apicurio-registry-{VERSION}"
        self.data_dir = settings.home / "schema-registry"
        self.process = ManagedProcess(
            self.name, settings.home / "run", f"-Dquarkus.http.port={self.port}"
        )

    @property
    def health_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/health/ready"

    def up(self) -> bool:
        """Start the registry unless ours runs; True if this call started it."""
        started = self.process.pid() is None
        if started:
            refuse_taken_port("127.0.0.1", self.port, "FRAUD_SCHEMA_REGISTRY_PORT")
            java = require_java()
            runner = self._ensure_app()
            self.data_dir.mkdir(parents=True, exist_ok=True)
            self.process.start(
                [
                    java, "-Xmx256m", "-Djava.awt.headless=true",
                    *self.process.markers,
                    "-Dquarkus.http.host=127.0.0.1",
                    f"-Dapicurio.datasource.url=jdbc:h2:file:{self.data_dir.absolute()}/registry",
                    "-jar", str(runner),
                ]
            )  # fmt: skip
        wait_until(lambda: answers_200(self.health_url), 120.0, "the schema registry", self.process)
        return started

    def down(self) -> bool:
        return self.process.stop()

    def status(self) -> ServiceStatus:
        pid = self.process.pid()
        url = self.settings.schema_registry_url
        if not answers_200(self.health_url):
            detail = f"pid {pid}, not ready" if pid else "not started"
            return ServiceStatus(self.name, False, url, detail)
        detail = f"pid {pid}; Apicurio Registry {VERSION}" if pid else "not ours"
        return ServiceStatus(self.name, True, url, detail)

    def _ensure_app(self) -> Path:
        runner = self.app_dir / f"apicurio-registry-app-{VERSION}-runner.jar"
        if (self.app_dir / ".complete").exists():
            return runner
        self.app_dir.mkdir(parents=True, exist_ok=True)
        archive = self.app_dir / "app.zip"
        logger.info("fetching Apicurio Registry %s from Maven Central", VERSION)
        try:
            urllib.request.urlretrieve(ARTIFACT, archive)
            with urllib.request.urlopen(f"{ARTIFACT}.sha1", timeout=60) as response:
                expected = response.read().decode().split()[0]
        except OSError as error:
            raise ServiceError(f"could not fetch {ARTIFACT}: {error}") from None
        digest = hashlib.sha1(archive.read_bytes(), usedforsecurity=False).hexdigest()
        if digest != expected:
            archive.unlink()
            raise ServiceError(f"{ARTIFACT}: SHA-1 {digest}, Maven Central says {expected}")
        with zipfile.ZipFile(archive) as unpacked:
            unpacked.extractall(self.app_dir)
        archive.unlink()
        (self.app_dir / ".complete").touch()
        return runner


class RegistryClient:
    """The Confluent-compatible schema registry API: Confluent, Karapace, Apicurio's ccompat."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    def _call(self, path: str, body: dict | None = None) -> object:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            f"{self.url}{path}", data=data, headers={"Content-Type": JSON_TYPE}
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return json.load(response)
        except urllib.error.HTTPError as error:
            raise ServiceError(f"{self.url}{path}: {error.code} {error.read()[:500]!r}") from None
        except OSError as error:
            raise ServiceError(
                f"the schema registry at {self.url} does not answer: {error}"
            ) from None

    def register(self, subject: str, schema: str) -> int:
        """Register a JSON Schema under ``subject``; its id (the same again for the same schema)."""
        answer = self._call(
            f"/subjects/{subject}/versions", {"schemaType": "JSON", "schema": schema}
        )
        assert isinstance(answer, dict)
        return int(answer["id"])

    def subjects(self) -> list[str]:
        answer = self._call("/subjects")
        assert isinstance(answer, list)
        return [str(subject) for subject in answer]

    def latest(self, subject: str) -> str:
        """The schema text registered last under ``subject``."""
        answer = self._call(f"/subjects/{subject}/versions/latest")
        assert isinstance(answer, dict)
        return str(answer["schema"])


def register_contracts(settings: Settings, folder: Path) -> dict[str, int]:
    """Each topic's value schema under the subject ``<topic>-value`` (the topic-name strategy
    Confluent's serializers use); subject -> id."""
    client = RegistryClient(settings.schema_registry_url)
    ids = {}
    for path in sorted(folder.glob("*.schema.json")):
        subject = f"{settings.topic(path.name.removesuffix('.schema.json'))}-value"
        ids[subject] = client.register(subject, path.read_text())
    return ids
