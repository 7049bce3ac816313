"""Alerts reach Alertmanager: the real rules in a real Prometheus (Debian package) that sends
to a real Alertmanager (Debian package) with the compose stack's routing, both started by
`fraudstream services up --only prometheus,alertmanager`. A scorer job whose
only target does not answer makes "no scorer at all" fire after its minute; the watchdog
fires at once; "a scorer is down" is inhibited by "no scorer"."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

from tooling.services.alertmanager import AlertmanagerApi, amtool
from tooling.services.monitoring import ALERT_RULES, ALERTMANAGER_CONFIG
from tooling.services.process import free_port, port_open
from tooling.services.prometheus import PrometheusApi

WAIT_S = 240.0


def test_the_alertmanager_config_is_valid() -> None:
    checked = amtool("check-config", str(ALERTMANAGER_CONFIG))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def _fraudstream(env: dict[str, str], *arguments: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "tooling.cli", *arguments]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)


def test_alerts_arrive_in_alertmanager_with_their_runbook(tmp_path: Path) -> None:
    """As an operator without Docker would: `services up --only prometheus,alertmanager`, no
    process of ours running, so every scrape fails."""
    prometheus_port, alertmanager_port, nobody = free_port(), free_port(), free_port()
    env = os.environ | {
        "FRAUD_HOME": str(tmp_path / "home"),
        "FRAUD_PROMETHEUS_PORT": str(prometheus_port),
        "FRAUD_ALERTMANAGER_PORT": str(alertmanager_port),
        "FRAUD_METRICS_PORT": str(nobody),  # a scorer that is gone
    }
    up = _fraudstream(env, "services", "up", "--only", "prometheus,alertmanager")
    assert up.returncode == 0, up.stdout + up.stderr
    try:
        status = _fraudstream(env, "services", "status", "--only", "prometheus,alertmanager")
        assert status.returncode == 0, status.stdout + status.stderr
        assert {line.split()[0] for line in status.stdout.splitlines()} >= {
            "prometheus", "alertmanager"
        }  # fmt: skip
        prometheus = PrometheusApi(f"http://127.0.0.1:{prometheus_port}")
        loaded = prometheus.get("/api/v1/rules")["data"]["groups"]
        rules = yaml.safe_load(ALERT_RULES.read_text())["groups"]
        assert sum(len(g["rules"]) for g in loaded) == sum(len(g["rules"]) for g in rules)

        manager = AlertmanagerApi(f"http://127.0.0.1:{alertmanager_port}")
        expected = {"FraudstreamWatchdog", "FraudstreamNoScorer", "FraudstreamWorkerDown"}
        deadline = time.monotonic() + WAIT_S
        received = {a["labels"]["alertname"]: a for a in manager.alerts()}
        while not expected <= set(received) and time.monotonic() < deadline:
            time.sleep(2)
            received = {a["labels"]["alertname"]: a for a in manager.alerts()}
        assert prometheus.alertmanagers() == [f"http://127.0.0.1:{alertmanager_port}/api/v2/alerts"]
    finally:
        down = _fraudstream(env, "services", "down", "--only", "prometheus,alertmanager")
    assert down.returncode == 0, down.stdout + down.stderr
    assert not port_open("127.0.0.1", prometheus_port)
    assert not port_open("127.0.0.1", alertmanager_port)

    assert expected <= set(received), sorted(received)
    no_scorer = received["FraudstreamNoScorer"]
    assert no_scorer["annotations"]["runbook_url"] == "docs/RUNBOOK.md#fraudstreamnoscorer"
    assert no_scorer["status"]["state"] == "active"
    assert [r["name"] for r in no_scorer["receivers"]] == ["operators"]
    assert [r["name"] for r in received["FraudstreamWatchdog"]["receivers"]] == ["watchdog"]
    # with no scorer at all, "a scorer is down" is held back (inhibited)
    assert received["FraudstreamWorkerDown"]["status"]["state"] == "suppressed"
