"""Apache Kafka 4.x, one KRaft node (broker + controller) on 127.0.0.1, from Maven Central jars.

The jars (``kafka_2.13`` and its runtime dependencies, plus log4j2) are resolved by Maven
into a cache directory once; later starts reuse them. ``up`` returns when the broker can do
its job: it coordinates a consumer group. A freshly formatted broker answers metadata first
and ``COORDINATOR_NOT_AVAILABLE`` until the first FindCoordinator has made
``__consumer_offsets``; a worker started in that moment would meet the error.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import re
import shutil
import subprocess
import uuid
from importlib import resources
from typing import Literal

from streams.settings import Settings
from tooling.services.kafka_probe import probe
from tooling.services.process import (
    ManagedProcess,
    ServiceError,
    ServiceStatus,
    port_open,
    refuse_taken_port,
    run_or_fail,
    wait_until,
)

logger = logging.getLogger(__name__)

MAIN_CLASS = "kafka.Kafka"
STORAGE_TOOL = "kafka.tools.StorageTool"
START_TIMEOUT_S = 90.0
PROBE_GROUP = "fraudstream-readiness-probe"  # never joined: only its coordinator is asked
Readiness = Literal["groups", "started"]


def server_properties(settings: Settings) -> str:
    """The broker's configuration: one node, both roles, loopback only.

    >>> text = server_properties(Settings(kafka_port=29092, kafka_controller_port=29093))
    >>> "listeners=PLAINTEXT://127.0.0.1:29092,CONTROLLER://127.0.0.1:29093" in text
    True
    """
    host = settings.kafka_host
    broker, controller = settings.kafka_port, settings.kafka_controller_port
    lines = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.bootstrap.servers": f"{host}:{controller}",
        "listeners": f"PLAINTEXT://{host}:{broker},CONTROLLER://{host}:{controller}",
        "advertised.listeners": f"PLAINTEXT://{host}:{broker}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": str(settings.kafka_data_dir.absolute()),
        "num.partitions": "1",
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "4",  # the default 50 slows every first group join
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        # every topic is created up front with its partition count: an auto-created
        # 1-partition topic would break the Faust app (PartitionsMismatch)
        "auto.create.topics.enable": "false",
    }
    return "".join(f"{key}={value}\n" for key, value in lines.items())


def random_cluster_id() -> str:
    """A Kafka cluster id: 16 random bytes, URL-safe base64 without padding (22 characters).

    Never one that starts with "-" (1 in 64 would): the storage tool would read it as an
    option and refuse to format (as Kafka's own ``Uuid.randomUuid`` avoids it).

    >>> ids = [random_cluster_id() for _ in range(2_000)]
    >>> {len(i) for i in ids}, any(i.startswith("-") for i in ids)
    ({22}, False)
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def java_major_version(version_output: str) -> int | None:
    """The major version in ``java -version`` output.

    >>> java_major_version('openjdk version "17.0.15" 2025-04-15')
    17
    >>> java_major_version('java version "1.8.0_382"')
    8
    """
    match = re.search(r'version "(\d+)(?:\.(\d+))?', version_output)
    if not match:
        return None
    major = int(match.group(1))
    return int(match.group(2)) if major == 1 and match.group(2) else major


class LocalKafka:
    name = "kafka"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.config_dir = settings.home / "kafka"
        self.libs_dir = settings.cache_dir / f"kafka-{settings.kafka_version}" / "libs"
        self.process = ManagedProcess(
            "kafka",
            settings.home / "run",
            f"-Dfraudstream.home={settings.home.absolute()}",
            log_file=settings.kafka_log_dir / "server.log",
        )

    def up(self, ready: Readiness = "groups") -> bool:
        """Start the broker unless ours runs; True if this call started it. Returns once a
        consumer group can be coordinated (``ready="started"``: as soon as the process runs, so
        the tests can start a worker on a broker that is not ready yet)."""
        if self.process.pid() is not None:
            self._wait_ready(ready)
            return False
        host, port = self.settings.kafka_host, self.settings.kafka_port
        refuse_taken_port(host, port, "FRAUD_KAFKA_PORT")
        java = require_java()
        self._ensure_jars()
        self._write_config()
        self._format_storage(java)
        logger.info("starting Kafka %s on %s:%d", self.settings.kafka_version, host, port)
        self.process.start(
            [
                java,
                "-Xms256m",
                f"-Xmx{self.settings.kafka_heap}",
                "-XX:+UseG1GC",
                "-Djava.awt.headless=true",
                f"-Dlog4j2.configurationFile={self.config_dir.absolute() / 'log4j2.yaml'}",
                *self.process.markers,
                "-cp",
                f"{self.libs_dir.absolute()}/*",
                MAIN_CLASS,
                str(self.config_dir.absolute() / "server.properties"),
            ]
        )
        self._wait_ready(ready)
        return True

    def down(self) -> bool:
        return self.process.stop(timeout=60.0)

    def status(self) -> ServiceStatus:
        pid = self.process.pid()
        address = self.settings.kafka_bootstrap
        host, _, port = address.rpartition(":")
        try:
            broker = probe(host, int(port), timeout=1.0)
        except OSError:
            owner = f"pid {pid}, not answering" if pid else "not started"
            return ServiceStatus(self.name, False, address, owner)
        owner = f"pid {pid}" if pid else "not started by fraudstream"
        release = f"Kafka {broker.release.split('-')[0]}, metadata.version {broker.release}, KRaft"
        if not group_coordinator_answers(address):
            detail = f"{owner}; {release}; answers metadata, cannot coordinate a group yet"
            return ServiceStatus(self.name, False, address, detail)
        return ServiceStatus(self.name, True, address, f"{owner}; {release}")

    def _ensure_jars(self) -> None:
        marker = self.libs_dir / ".complete"
        if marker.exists():
            return
        mvn = shutil.which("mvn")
        if mvn is None:
            raise ServiceError(
                "Kafka's jars come from Maven Central through Maven: install it "
                "(apt-get install maven) or set FRAUD_KAFKA_BOOTSTRAP to a running broker"
            )
        self.libs_dir.mkdir(parents=True, exist_ok=True)
        logger.info("fetching Kafka %s jars into %s", self.settings.kafka_version, self.libs_dir)
        with resources.as_file(resources.files(__package__) / "resources" / "kafka-pom.xml") as pom:
            run_or_fail(
                [
                    mvn, "-q", "-B", "-f", str(pom),
                    "dependency:copy-dependencies",
                    f"-Dkafka.version={self.settings.kafka_version}",
                    f"-DoutputDirectory={self.libs_dir.absolute()}",
                    "-DincludeScope=runtime",
                ],
                "Maven could not fetch Kafka's jars",
            )  # fmt: skip
        marker.touch()

    def _write_config(self) -> None:
        self.config_dir.mkdir(parents=True, exist_ok=True)
        (self.config_dir / "server.properties").write_text(server_properties(self.settings))
        log4j = resources.files(__package__) / "resources" / "kafka-log4j2.yaml"
        (self.config_dir / "log4j2.yaml").write_text(log4j.read_text())

    def _format_storage(self, java: str) -> None:
        if (self.settings.kafka_data_dir / "meta.properties").exists():
            return
        self.settings.kafka_data_dir.mkdir(parents=True, exist_ok=True)
        run_or_fail(
            [
                java, "-cp", f"{self.libs_dir.absolute()}/*",
                f"-Dlog4j2.configurationFile={self.config_dir.absolute() / 'log4j2.yaml'}",
                STORAGE_TOOL, "format", "--standalone",
                "--cluster-id", random_cluster_id(),
                "--config", str(self.config_dir.absolute() / "server.properties"),
            ],
            "formatting Kafka storage failed",
        )  # fmt: skip

    def _wait_ready(self, ready: Readiness) -> None:
        if ready == "started":
            return
        host, port = self.settings.kafka_host, self.settings.kafka_port
        wait_until(
            lambda: (
                port_open(host, port) and group_coordinator_answers(self.settings.kafka_bootstrap)
            ),
            START_TIMEOUT_S,
            "Kafka (a consumer group coordinator)",
            self.process,
        )


def group_coordinator_answers(bootstrap: str) -> bool:
    """True when a consumer group can join now: FindCoordinator for ``PROBE_GROUP`` answered
    with a broker and ``__consumer_offsets`` is in the metadata (asked once; asking is what
    makes a fresh broker create that topic)."""
    from streams.kafka_admin import group_coordinator_ready, topic_partitions

    async def ask() -> bool:
        await group_coordinator_ready(bootstrap, PROBE_GROUP)
        return "__consumer_offsets" in await topic_partitions(bootstrap)

    try:
        return asyncio.run(ask())
    except Exception:  # any answer but a coordinator is "not yet"
        return False


def require_java() -> str:
    java = shutil.which("java")
    if java is None:
        raise ServiceError(
            "Kafka needs Java 17 or newer: install it (apt-get install openjdk-17-jre-headless)"
        )
    output = subprocess.run([java, "-version"], capture_output=True, text=True, check=False).stderr
    major = java_major_version(output)
    if major is None or major < 17:
        raise ServiceError(
            f"Kafka needs Java 17 or newer, found {(output or 'unknown').splitlines()[0]}: "
            "install openjdk-17-jre-headless"
        )
    return java
