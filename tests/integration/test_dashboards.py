"""The Grafana dashboards show data and the alert rules hold: a real Prometheus (the Debian
package) scrapes a real scoring worker and the REST API during a short load, then every
panel query of deploy/grafana/dashboards and the promotion annotation is evaluated through
Prometheus's HTTP API (as Grafana would); a query that errors or returns nothing fails.
The registry is an MLflow tracking *server* here, as in the compose stack."""

from __future__ import annotations

import asyncio
import json
import math
import re
import shutil
import time
from pathlib import Path

import httpx
import pytest
import yaml

from schemas.codec import encode
from schemas.topics import LABELS, TRANSACTIONS
from simulator.generator import Simulation, SimulationConfig, simulate
from simulator.publish import publish
from simulator.records import transaction_records
from streams.app import AGENTS, create_topics
from streams.settings import Settings, to_env
from tests.conftest import ROOT, Endpoints
from tests.integration.test_api import JSON, KEY, SECRET, free_port
from tests.integration.test_streaming import MALFORMED, isolated, register_two_versions, send
from tooling.cli import main
from tooling.demo import spawn_trainer
from tooling.processes import spawn_api, spawn_worker
from tooling.services.mlflow import LocalMlflow
from tooling.services.prometheus import promtool, running_prometheus

PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
DASHBOARDS = sorted((ROOT / "deploy" / "grafana" / "dashboards").glob("*.json"))
SCRAPE_SECONDS = 1
# Grafana's own variables, as Grafana would fill them for a short range and a 1 s scrape
# (and the dashboard's instance variable set to All)
GRAFANA_VARIABLES = {
    "$__rate_interval": "4s", "$__interval": "1s", "$__range": "5m", "$instance": ".*",
}  # fmt: skip


def instance_selector() -> str:
    """The selector of the dashboards' ``instance`` variable, as ``label_values`` names it."""
    (variable,) = json.loads(DASHBOARDS[0].read_text())["templating"]["list"]
    match = re.fullmatch(r"label_values\((.+), instance\)", variable["definition"])
    assert match, variable["definition"]
    return match.group(1)


def dashboard_queries() -> list[tuple[str, str]]:
    """(where, PromQL) for every panel target and annotation of every dashboard file."""
    queries = []
    for path in DASHBOARDS:
        board = json.loads(path.read_text())
        for panel in board["panels"]:
            for target in panel.get("targets", []):
                queries.append(
                    (f"{path.name}: {panel['title']} [{target['refId']}]", target["expr"])
                )
        for annotation in board["annotations"]["list"]:
            if "expr" in annotation:
                queries.append(
                    (f"{path.name}: annotation {annotation['name']}", annotation["expr"])
                )
    return queries


def grafana_filled(expr: str) -> str:
    return re.sub(r"\$\w+", lambda m: GRAFANA_VARIABLES[m.group(0)], expr)


def test_the_alert_rules_are_valid_and_their_unit_tests_pass() -> None:
    checked = promtool("check", "rules", str(PROMETHEUS_DIR / "alerts.yml"))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    config = promtool("check", "config", str(PROMETHEUS_DIR / "prometheus.yml"))
    assert config.returncode == 0, config.stdout + config.stderr
    tested = promtool("test", "rules", str(PROMETHEUS_DIR / "alerts_test.yml"))
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout + tested.stderr


def prometheus_config(settings: Settings, rules: Path) -> dict:
    """The compose stack's jobs, with this run's processes as static targets."""
    return {
        "global": {"scrape_interval": f"{SCRAPE_SECONDS}s", "evaluation_interval": "1s"},
        "rule_files": [str(rules)],
        "scrape_configs": [
            {"job_name": "fraudstream-scorer",
             "static_configs": [{"targets": [f"127.0.0.1:{settings.metrics_port}"]}]},
            {"job_name": "fraudstream-trainer",
             "static_configs": [{"targets": [f"127.0.0.1:{settings.metrics_port + 2}"]}]},
            {"job_name": "fraudstream-api",
             "static_configs": [{"targets": [f"{settings.api_host}:{settings.api_port}"]}]},
        ],
    }  # fmt: skip


def test_every_dashboard_query_returns_data_from_real_workers_and_api(
    services: Endpoints, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    queries = dashboard_queries()
    assert len(queries) >= 20  # every panel of the issue: stream, model, drift, REST

    registry = Settings(home=tmp_path / "mlflow-server", mlflow_port=free_port())
    mlflow = LocalMlflow(registry)
    mlflow.up(with_server=True)
    settings = isolated(services, tmp_path, api_keys=f"it:{SECRET}", api_port=free_port()).replace(
        mlflow_tracking_uri_override=registry.mlflow_server_uri,
        metrics_port=free_port(), drift_window_events=400, drift_min_events=100,
    )  # fmt: skip
    for name, value in to_env(settings).items():
        monkeypatch.setenv(name, value)
    shutil.copy(PROMETHEUS_DIR / "alerts.yml", tmp_path / "alerts.yml")
    config = tmp_path / "prometheus.yml"
    config.write_text(yaml.safe_dump(prometheus_config(settings, tmp_path / "alerts.yml")))
    simulation = simulate(SimulationConfig(seed=12, days=12, customers=300, terminals=120))
    processes = []
    try:
        register_two_versions(settings)  # over HTTP: version 1 is champion
        asyncio.run(create_topics(settings))
        processes.append(spawn_worker(settings, tmp_path / "worker.log", AGENTS))
        processes.append(spawn_api(settings, tmp_path / "api.log"))
        trainer = settings.replace(metrics_port=settings.metrics_port + 2)
        processes.append(spawn_trainer(trainer, tmp_path / "trainer.log"))
        with running_prometheus(config, free_port(), tmp_path / "prometheus") as prometheus:
            deadline = time.monotonic() + 60  # discovery hands targets over every 5 s
            while not (len(targets := prometheus.targets_up()) == 3 and all(targets.values())):
                assert time.monotonic() < deadline, f"targets never all up: {targets}"
                time.sleep(0.5)
            started = time.time()
            asyncio.run(load(settings, simulation))
            time.sleep(5 * SCRAPE_SECONDS)  # the last counts scraped
            answers = {
                where: prometheus.query_range(grafana_filled(expr), started, time.time(), 1)
                for where, expr in queries
            }
            latest_versions = prometheus.query_range(
                '{__name__=~"fraudstream(_api)?_serving_model_version"}',
                time.time() - 2,
                time.time(),
                1,
            )
            rules = prometheus.get("/api/v1/rules")["data"]["groups"]
            # the instance variable's values (Grafana's label_values over this selector)
            now = time.time()
            instances = prometheus.query_range(instance_selector(), now - 2, now, 1)
            targets = prometheus.targets_up()
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=30)
        mlflow.down()

    assert targets and all(targets.values()), targets
    assert {s["metric"]["instance"] for s in instances} == {
        target.split("/")[2] for target in targets
    }  # fmt: skip
    # the promotion half way reached the worker and the API, and the panel shows it
    versions = {s["metric"]["__name__"]: last_value(s) for s in latest_versions}
    assert versions == {
        "fraudstream_serving_model_version": 2.0,
        "fraudstream_api_serving_model_version": 2.0,
    }
    empty = [where for where, series in answers.items() if not has_a_number(series)]
    assert not empty, f"panels with no data: {empty}"
    (group,) = rules
    assert {rule["health"] for rule in group["rules"]} == {"ok"}, group["rules"]
    alerts = yaml.safe_load((PROMETHEUS_DIR / "alerts.yml").read_text())["groups"][0]["rules"]
    assert len(group["rules"]) == len(alerts)  # every rule loaded and evaluated


def last_value(series: dict) -> float:
    return float(series["values"][-1][1])


def has_a_number(series: list[dict]) -> bool:
    return any(not math.isnan(float(value)) for s in series for _, value in s["values"])


async def load(settings: Settings, simulation: Simulation) -> None:
    """Transactions with their late labels, dead letters, REST calls good and bad, and a
    promotion half way (the model-version panel and the promotion marks)."""
    transactions, labels = simulation.transactions, simulation.labels
    half = len(transactions) // 2
    known = labels["labelled_at"] <= transactions["event_time"].iloc[half - 1]
    body = encode(transaction_records(transactions.head(1))[0])
    topics = {"transactions_topic": settings.topic(TRANSACTIONS.name),
              "labels_topic": settings.topic(LABELS.name)}  # fmt: skip
    api = f"http://{settings.api_host}:{settings.api_port}"
    async with httpx.AsyncClient(base_url=api, headers=KEY, timeout=10) as client:
        await publish(settings.kafka_bootstrap, transactions.iloc[:half], labels[known], 500,
                      progress=False, **topics)  # fmt: skip
        await send(settings, TRANSACTIONS.name, [(None, raw) for raw in MALFORMED])
        for _ in range(100):
            assert (await client.post("/predict", content=body, headers=JSON)).status_code == 200
        assert (await client.post("/predict", json={"amount": "a lot"})).status_code == 422
        assert (await httpx.AsyncClient(base_url=api).get("/model")).status_code == 401
        assert await asyncio.to_thread(main, ["promote", "2"]) == 0
        await publish(settings.kafka_bootstrap, transactions.iloc[half:], labels[~known], 500,
                      progress=False, **topics)  # fmt: skip
        for _ in range(100):
            assert (await client.post("/predict", content=body, headers=JSON)).status_code == 200
