"""A worker's health tells the truth: ``/health`` is the event loop's heartbeat, so a worker
whose loop is stuck answers 503 (the HTTP thread still answers - that is what it reports),
and ``/ready`` waits for the group and the model. The worker is the real ``fraudstream
worker`` on the real services; its loop is stuck by a timer added to its app that sleeps in
the loop once a flag file appears (a deadlock, as far as the loop can tell)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from streams.settings import to_env
from tests.conftest import Endpoints
from tests.integration.test_streaming import isolated
from tooling.services.process import free_port

LIVENESS_TIMEOUT_S = 3.0
WAIT_S = 120.0

STUCK_WORKER = """
import sys, time
from pathlib import Path
import streams.app as runtime

built = runtime.build_app

def build_app(*args, **kwargs):
    app = built(*args, **kwargs)

    @app.timer(interval=0.5)
    async def get_stuck() -> None:
        if Path(sys.argv[1]).exists():
            time.sleep(600)  # in the loop: no heartbeat, no scoring

    return app

runtime.build_app = build_app
from tooling.cli import main
sys.exit(main(["worker", "--agents", "score,model-updates"]))
"""


def answer(url: str) -> tuple[int, dict]:
    try:
        response = httpx.get(url, timeout=2)
        return response.status_code, response.json()
    except (httpx.TransportError, ValueError):
        return 0, {}


def until(url: str, status: int) -> tuple[int, dict]:
    deadline = time.monotonic() + WAIT_S
    got = answer(url)
    while got[0] != status and time.monotonic() < deadline:
        time.sleep(0.25)
        got = answer(url)
    return got


def test_a_worker_whose_loop_is_stuck_answers_503_on_health(
    services: Endpoints, tmp_path: Path
) -> None:
    port = free_port()
    settings = isolated(
        services, tmp_path, metrics_port=port, liveness_timeout=LIVENESS_TIMEOUT_S,
        ready_on_fallback=True,  # no model registered for this test: the rules serve
    )  # fmt: skip
    script, flag = tmp_path / "stuck_worker.py", tmp_path / "get-stuck"
    script.write_text(STUCK_WORKER)
    log = (tmp_path / "worker.log").open("wb")
    worker = subprocess.Popen(
        [sys.executable, str(script), str(flag)], env={**os.environ, **to_env(settings)},
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        ready = until(f"{base}/ready", 200)
        healthy = answer(f"{base}/health")
        metrics = httpx.get(f"{base}/metrics", timeout=2).text

        flag.touch()
        stuck = until(f"{base}/health", 503)
        not_ready = answer(f"{base}/ready")
    finally:
        worker.kill()
        worker.wait()
        log.close()

    assert ready == (200, {"ready": True, "alive": True, "joined_group": True, "model": True})
    assert healthy[0] == 200 and healthy[1]["alive"] is True
    assert "fraudstream_scored_total" in metrics and "process_cpu_seconds_total" in metrics
    assert stuck[0] == 503, (tmp_path / "worker.log").read_text()[-2000:]
    assert stuck[1]["alive"] is False and stuck[1]["heartbeat_age_s"] > LIVENESS_TIMEOUT_S
    assert not_ready[0] == 503 and not_ready[1]["alive"] is False
