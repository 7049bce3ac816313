"""Prometheus from the Debian package: scrapes running workers and the API for the dashboard
test (tests/integration/test_dashboards.py) and checks the alert rules with ``promtool``.

Grafana evaluates every panel through Prometheus's HTTP API, so a query that Prometheus
answers here is one a dashboard draws.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from tooling.services.process import (
    ManagedProcess,
    ServiceError,
    answers_200,
    require_debian_tool,
    wait_until,
)


def prometheus_binaries() -> tuple[str, str]:
    """``prometheus`` and ``promtool`` (one Debian package holds both)."""
    return (
        require_debian_tool("prometheus", "prometheus"),
        require_debian_tool("promtool", "prometheus"),
    )


def promtool(*arguments: str) -> subprocess.CompletedProcess[str]:
    _, tool = prometheus_binaries()
    return subprocess.run([tool, *arguments], capture_output=True, text=True, check=False)


def prometheus_command(config: Path, port: int, data_dir: Path) -> list[str]:
    server, _ = prometheus_binaries()
    return [
        server,
        f"--config.file={config}",
        f"--storage.tsdb.path={data_dir / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--web.enable-lifecycle",
    ]


class PrometheusApi:
    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    def get(self, path: str, **params: str | float) -> dict:
        """The JSON answer; a refused query (HTTP 400/422) answers with its error too."""
        query = urllib.parse.urlencode(params)
        try:
            with urllib.request.urlopen(f"{self.url}{path}?{query}", timeout=10) as response:
                return dict(json.load(response))
        except urllib.error.HTTPError as error:
            return dict(json.load(error))

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[dict]:
        """The series ``expr`` returns between ``start`` and ``end``; an error raises."""
        body = self.get("/api/v1/query_range", query=expr, start=start, end=end, step=step)
        if body.get("status") != "success":
            raise ServiceError(f"{expr!r}: {body.get('error', body)}")
        return list(body["data"]["result"])

    def targets_up(self) -> dict[str, bool]:
        active = self.get("/api/v1/targets")["data"]["activeTargets"]
        return {t["scrapeUrl"]: t["health"] == "up" for t in active}

    def ready(self) -> bool:
        return answers_200(f"{self.url}/-/ready")

    def alertmanagers(self) -> list[str]:
        """The Alertmanager URLs Prometheus sends its alerts to now."""
        active = self.get("/api/v1/alertmanagers")["data"]["activeAlertmanagers"]
        return [str(manager["url"]) for manager in active]


@contextlib.contextmanager
def running_prometheus(config: Path, port: int, data_dir: Path) -> Iterator[PrometheusApi]:
    """A Prometheus on 127.0.0.1:``port`` with ``config``, stopped on exit."""
    process = ManagedProcess("prometheus", data_dir, f"127.0.0.1:{port}")
    process.start(prometheus_command(config, port, data_dir))
    api = PrometheusApi(f"http://127.0.0.1:{port}")
    try:
        wait_until(api.ready, 60.0, "Prometheus", process)
        yield api
    finally:
        process.stop()
