"""Alerts reach Alertmanager: the real rules in a real Prometheus (Debian package) that sends
to a real Alertmanager (Debian package) with the compose stack's routing. A scorer job whose
only target does not answer makes "no scorer at all" fire after its minute; the watchdog
fires at once; "a scorer is down" is inhibited by "no scorer"."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import yaml

from tooling.services.alertmanager import amtool, running_alertmanager
from tooling.services.process import free_port
from tooling.services.prometheus import running_prometheus

ROOT = Path(__file__).resolve().parents[2]
ALERTMANAGER_CONFIG = ROOT / "deploy" / "alertmanager" / "alertmanager.yml"
WAIT_S = 240.0


def test_the_alertmanager_config_is_valid() -> None:
    checked = amtool("check-config", str(ALERTMANAGER_CONFIG))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_alerts_arrive_in_alertmanager_with_their_runbook(tmp_path: Path) -> None:
    rules = tmp_path / "alerts.yml"
    shutil.copy(ROOT / "deploy" / "prometheus" / "alerts.yml", rules)
    alertmanager_port, prometheus_port, nobody = free_port(), free_port(), free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(yaml.safe_dump({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(rules)],
        "alerting": {"alertmanagers": [
            {"static_configs": [{"targets": [f"127.0.0.1:{alertmanager_port}"]}]}
        ]},
        "scrape_configs": [{
            "job_name": "fraudstream-scorer",
            "static_configs": [{"targets": [f"127.0.0.1:{nobody}"]}],  # a scorer that is gone
        }],
    }))  # fmt: skip

    with (
        running_alertmanager(ALERTMANAGER_CONFIG, alertmanager_port, tmp_path / "am") as manager,
        running_prometheus(config, prometheus_port, tmp_path / "prometheus"),
    ):
        expected = {"FraudstreamWatchdog", "FraudstreamNoScorer", "FraudstreamWorkerDown"}
        deadline = time.monotonic() + WAIT_S
        received = {a["labels"]["alertname"]: a for a in manager.alerts()}
        while not expected <= set(received) and time.monotonic() < deadline:
            time.sleep(2)
            received = {a["labels"]["alertname"]: a for a in manager.alerts()}

    assert expected <= set(received), sorted(received)
    no_scorer = received["FraudstreamNoScorer"]
    assert no_scorer["annotations"]["runbook_url"] == "docs/RUNBOOK.md#fraudstreamnoscorer"
    assert no_scorer["status"]["state"] == "active"
    assert [r["name"] for r in no_scorer["receivers"]] == ["operators"]
    assert [r["name"] for r in received["FraudstreamWatchdog"]["receivers"]] == ["watchdog"]
    # with no scorer at all, "a scorer is down" is held back (inhibited)
    assert received["FraudstreamWorkerDown"]["status"]["state"] == "suppressed"
