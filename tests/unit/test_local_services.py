"""The pure parts of the local services: broker configuration, probes, process ownership."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from streams.settings import Settings
from tooling.services import LocalServices, ServiceError
from tooling.services.kafka import java_major_version, server_properties
from tooling.services.kafka_probe import decode_api_versions_v3, encode_api_versions_v3
from tooling.services.process import ManagedProcess, ServiceStatus


def test_server_properties_run_one_kraft_node_on_loopback(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, kafka_port=29092, kafka_controller_port=29093)
    properties = dict(
        line.split("=", 1) for line in server_properties(settings).splitlines() if line
    )

    assert properties["process.roles"] == "broker,controller"
    assert properties["controller.quorum.bootstrap.servers"] == "127.0.0.1:29093"
    assert properties["advertised.listeners"] == "PLAINTEXT://127.0.0.1:29092"
    assert properties["log.dirs"] == str(tmp_path / "kafka" / "data")
    assert properties["offsets.topic.replication.factor"] == "1"


@pytest.mark.parametrize(
    ("output", "major"),
    [
        ('openjdk version "21.0.2" 2024-01-16', 21),
        ('openjdk version "11.0.22"', 11),
        ('java version "1.8.0_382"', 8),
        ("no java here", None),
    ],
)
def test_java_major_version(output: str, major: int | None) -> None:
    assert java_major_version(output) == major


def test_api_versions_request_is_framed_with_its_length_and_key() -> None:
    request = encode_api_versions_v3(correlation_id=9)

    assert int.from_bytes(request[:4], "big") == len(request) - 4
    assert request[4:8] == bytes([0, 18, 0, 3])  # ApiVersions, version 3
    assert int.from_bytes(request[8:12], "big") == 9


def test_a_truncated_api_versions_answer_is_an_error() -> None:
    with pytest.raises(ConnectionError, match="truncated"):
        decode_api_versions_v3(b"\x00\x00\x00\x01\x00")


def test_an_error_code_in_the_answer_is_reported() -> None:
    with pytest.raises(ConnectionError, match="error code 35"):
        decode_api_versions_v3(b"\x00\x00\x00\x01\x00\x23")


def test_managed_process_stops_only_what_it_started(tmp_path: Path) -> None:
    ours = ManagedProcess("sleeper", tmp_path, "fraudstream-unit-marker")
    pid = ours.start(
        [sys.executable, "-c", "import time; time.sleep(60)", "fraudstream-unit-marker"]
    )
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        # until the stranger has exec'd: between fork and exec its command line reads empty,
        # which pid() rightly does not take as proof that the process is not ours
        deadline = time.monotonic() + 10
        while "time.sleep" not in Path(f"/proc/{stranger.pid}/cmdline").read_text():
            assert time.monotonic() < deadline, "the stranger process never started"
            time.sleep(0.01)
        assert ours.pid() == pid
        # a pid file naming a process without our marker is not ours, and is dropped
        other = ManagedProcess("other", tmp_path, "fraudstream-unit-marker")
        other.pid_file.write_text(str(stranger.pid))
        assert other.pid() is None
        assert not other.pid_file.exists()
        assert other.stop() is False

        assert ours.stop(timeout=5) is True
        assert ours.pid() is None
        assert stranger.poll() is None  # untouched
    finally:
        stranger.kill()
        stranger.wait()


def test_status_line_names_state_address_and_detail() -> None:
    running = ServiceStatus("kafka", True, "127.0.0.1:19092", "pid 7")
    store = ServiceStatus("mlflow", False, "sqlite:///x.db", "not created", "ready", "missing")

    assert running.line() == "kafka           running  127.0.0.1:19092  (pid 7)"
    assert store.line() == "mlflow          missing  sqlite:///x.db  (not created)"


def test_unknown_service_name_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ServiceError, match=r"unknown service\(s\) \['zookeeper'\]"):
        LocalServices(Settings(home=tmp_path)).up(("kafka", "zookeeper"))
