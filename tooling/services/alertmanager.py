"""Alertmanager from the Debian package (``prometheus-alertmanager``, with ``amtool``): where a
local Prometheus sends its alerts in tests/integration/test_alerting.py, as compose's
Prometheus sends them to its ``alertmanager`` service."""

from __future__ import annotations

import json
import subprocess
import urllib.request
from pathlib import Path

from tooling.services.process import (
    answers_200,
    require_debian_tool,
)


def amtool(*arguments: str) -> subprocess.CompletedProcess[str]:
    tool = require_debian_tool("amtool", "prometheus-alertmanager")
    return subprocess.run([tool, *arguments], capture_output=True, text=True, check=False)


def alertmanager_command(config: Path, port: int, data_dir: Path) -> list[str]:
    return [
        require_debian_tool("prometheus-alertmanager", "prometheus-alertmanager"),
        f"--config.file={config}",
        f"--storage.path={data_dir / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",  # one instance: no gossip port
    ]


class AlertmanagerApi:
    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    def ready(self) -> bool:
        return answers_200(f"{self.url}/-/ready")

    def alerts(self) -> list[dict]:
        """The alerts Alertmanager holds now (API v2)."""
        with urllib.request.urlopen(f"{self.url}/api/v2/alerts", timeout=5) as response:
            return list(json.load(response))
