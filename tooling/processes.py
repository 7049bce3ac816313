"""Runtime processes started from tooling (bench, chaos, demo, tests): a worker or the API in
a process of its own, configured by settings, its output in a log file."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from streams.app import AGENTS
from streams.settings import Settings, to_env


def spawn_worker(
    settings: Settings, log_file: Path, agents: tuple[str, ...] = AGENTS
) -> subprocess.Popen[bytes]:
    """``fraudstream worker`` in its own process, configured by ``settings``, output to
    ``log_file`` (benchmarks and crash tests run workers this way)."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "tooling.cli", "worker", "--agents", ",".join(agents)]
    with log_file.open("ab") as out:
        return subprocess.Popen(
            command, env={**os.environ, **to_env(settings)}, stdout=out, stderr=out
        )


def answers_200(response: httpx.Response) -> bool:
    return response.status_code == 200


def serving_its_dependencies(response: httpx.Response) -> bool:
    """The API's ``/ready``: ready, or up with only the model missing (the rules decide: a
    bench or a test that registered no model still talks to it).

    >>> serving_its_dependencies(httpx.Response(503, json={"model_loaded": False,
    ...     "redis": True, "kafka": True, "ready": False, "model": "rules/fallback"}))
    True
    >>> serving_its_dependencies(httpx.Response(503, json={"model_loaded": True,
    ...     "redis": True, "kafka": False, "ready": False, "model": "fd/1"}))
    False
    """
    if response.status_code == 200:
        return True
    if response.status_code != 503:
        return False
    body = response.json()
    checks = {k: v for k, v in body.items() if isinstance(v, bool) and k not in ("ready",)}
    return checks.pop("model_loaded", True) is False and all(checks.values())


def start_http_service(
    command: list[str],
    env: dict[str, str],
    ready_url: str,
    log: Path,
    timeout: float = 120,
    ready: Callable[[httpx.Response], bool] = answers_200,
) -> subprocess.Popen[bytes]:
    """Start ``command`` with its output in ``log``; return once ``ready_url`` answers as
    ``ready`` wants (200 unless told)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=out)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if ready(httpx.get(ready_url, timeout=2)):
                return process
        except httpx.TransportError:
            pass
        if process.poll() is not None:
            break
        time.sleep(0.3)
    process.kill()
    raise RuntimeError(f"{' '.join(command[:4])} did not get ready:\n{log.read_text()[-3000:]}")


def spawn_api(settings: Settings, log: Path) -> subprocess.Popen[bytes]:
    """``fraudstream api`` in its own process, configured by ``settings``, once ready."""
    return start_http_service(
        [sys.executable, "-m", "tooling.cli", "api"],
        {**os.environ, **to_env(settings)},
        f"http://{settings.api_host}:{settings.api_port}/ready",
        log,
        ready=serving_its_dependencies,
    )
