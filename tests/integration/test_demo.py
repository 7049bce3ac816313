"""``fraudstream demo`` as a new user runs it: an empty home, so its own freshly formatted
broker, its own Redis and MLflow store; the first run must pass, and the terminal must show
the demo's lines, not the libraries' log records or terminal control codes."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tooling.services.process import free_port

# what only a library's log record (or a leaked progress spinner) would put on the terminal
LIBRARY_NOISE = re.compile(r" INFO | WARNING | ERROR |HTTP Request|Successfully registered|\x1b")


@pytest.mark.timeout(1_200)
def test_the_first_demo_on_an_empty_home_passes(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("FRAUD_", "MLFLOW_"))  # nothing of the suite's services
    }
    env.update(
        FRAUD_HOME=str(home),
        FRAUD_KAFKA_PORT=str(free_port()),
        FRAUD_KAFKA_CONTROLLER_PORT=str(free_port()),
        FRAUD_REDIS_PORT=str(free_port()),
        FRAUD_MLFLOW_PORT=str(free_port()),
        FRAUD_API_PORT=str(free_port()),
        FRAUD_METRICS_PORT=str(free_port()),  # the sink worker takes the port after it
    )
    demo = subprocess.run(
        [sys.executable, "-m", "tooling.cli", "demo", "--data", str(tmp_path / "data")],
        env=env, capture_output=True, text=True, timeout=1_100, check=False,
    )  # fmt: skip
    terminal = demo.stdout + demo.stderr
    logs = sorted((home / "demo").glob("*/logs/*.log"))
    assert demo.returncode == 0, terminal[-4000:] + _tails(logs)
    assert "summary" in demo.stdout and "promoted: version" in demo.stdout, terminal
    assert not [line for line in terminal.splitlines() if LIBRARY_NOISE.search(line)], terminal
    assert {log.name for log in logs} >= {"demo.log", "worker.log", "sinks.log", "trainer.log"}
    for log in logs:
        assert "\x1b" not in log.read_text(errors="replace"), f"control codes in {log}"
    # everything it started is stopped again: the ports are free
    assert not (home / "run" / "kafka.pid").exists() and not (home / "run" / "redis.pid").exists()


def _tails(logs: list[Path]) -> str:
    return "".join(f"\n--- {log}\n{log.read_text(errors='replace')[-2000:]}" for log in logs)
