"""docker-compose.yml: the whole stack, scalable scorers, health-gated start, no secret in
the repository. (`docker compose config` runs in tests/integration/test_compose_config.py.)"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from streams.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
APPLICATION = ("scorer", "sink", "trainer", "api", "simulator")


def test_kafka_is_healthy_only_once_it_can_coordinate_a_group() -> None:
    # the local supervisor's rule (services up): a coordinator for the probe group, and the
    # offsets topic with a leader; a broker that only answers metadata is not up yet
    from tooling.services.kafka import PROBE_GROUP

    check = " ".join(SERVICES["kafka"]["healthcheck"]["test"])

    assert f"--describe --group {PROBE_GROUP}" in check
    assert "--topic __consumer_offsets" in check and "Leader: [0-9]" in check


def test_compose_file_has_the_three_services_with_healthchecks_on_our_ports() -> None:
    defaults = Settings()

    assert set(SERVICES) >= {"kafka", "redis", "mlflow"}
    assert all("healthcheck" in SERVICES[name] for name in ("kafka", "redis", "mlflow"))
    assert SERVICES["kafka"]["image"] == f"apache/kafka:{defaults.kafka_version}"
    assert SERVICES["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    published = {
        name: SERVICES[name]["ports"][0].split(":")[1] for name in ("kafka", "redis", "mlflow")
    }
    assert published == {
        "kafka": str(defaults.kafka_port),
        "redis": str(defaults.redis_port),
        "mlflow": str(defaults.mlflow_port),
    }


def test_the_whole_stack_is_there_and_starts_in_order() -> None:
    assert set(SERVICES) == {"kafka", "redis", "postgres", "mlflow", "prometheus",
                             "alertmanager", "grafana", *APPLICATION}  # fmt: skip
    assert "postgresql://" in " ".join(SERVICES["mlflow"]["command"])
    assert SERVICES["mlflow"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    for name in APPLICATION:
        needs = SERVICES[name]["depends_on"]
        assert needs == {service: {"condition": "service_healthy"}
                         for service in ("kafka", "redis", "mlflow")}, name  # fmt: skip
        assert SERVICES[name]["build"]["dockerfile"] == "deploy/docker/Dockerfile"
    unchecked = {name for name, service in SERVICES.items() if "healthcheck" not in service}
    assert unchecked == {"simulator"}  # a one-shot job


def test_scorers_scale_and_the_simulator_waits_for_its_profile() -> None:
    scorer = SERVICES["scorer"]
    assert "container_name" not in scorer and "ports" not in scorer  # replicas would collide
    assert scorer["command"] == ["worker", "--agents", "score,model-updates,labels"]
    assert SERVICES["simulator"]["profiles"] == ["simulator"]
    assert all("profiles" not in s for name, s in SERVICES.items() if name != "simulator")


def test_every_fraud_variable_is_a_setting() -> None:
    environments = [service.get("environment", {}) for service in SERVICES.values()]
    fraud = {key: "1" for env in environments for key in env if key.startswith("FRAUD_")}
    assert len(fraud) >= 6
    Settings.from_env(fraud | {"FRAUD_KAFKA_BOOTSTRAP": "kafka:9092", "FRAUD_API_KEYS": "a:b"})


def test_no_secret_is_written_in_the_repository() -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    required = set(re.findall(r"\$\{(\w+):\?", text))
    assert required == {"POSTGRES_PASSWORD", "GRAFANA_ADMIN_PASSWORD", "FRAUD_API_KEYS"}
    secrets = {"POSTGRES_PASSWORD", "GF_SECURITY_ADMIN_PASSWORD", "FRAUD_API_KEYS"}
    for service in SERVICES.values():
        for key in secrets & set(service.get("environment", {})):
            assert service["environment"][key].startswith("${"), key  # from .env, never here
    example = (ROOT / ".env.example").read_text()
    for name in required:
        assert re.search(rf"^{name}=$", example, re.MULTILINE), f"{name} missing or filled in"
    assert ".env" in (ROOT / ".gitignore").read_text().split()


def test_prometheus_in_the_stack_scrapes_what_the_processes_serve() -> None:
    config = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    defaults = Settings()
    for job, service in (("fraudstream-scorer", "scorer"), ("fraudstream-sink", "sink")):
        (discovery,) = jobs[job]["dns_sd_configs"]
        assert (discovery["names"], discovery["port"]) == ([service], defaults.metrics_port)
    assert jobs["fraudstream-api"]["static_configs"][0]["targets"] == [f"api:{defaults.api_port}"]
    mounts = SERVICES["grafana"]["volumes"]
    assert "./deploy/grafana/dashboards:/var/lib/grafana/dashboards:ro" in mounts


# Where each stateful image writes unless told otherwise, from its documented configuration:
# apache/kafka (docker/examples, server.properties: log.dirs=/tmp/kraft-combined-logs),
# redis (the image's WORKDIR /data, where `dir ./` puts the AOF), postgres (PGDATA),
# prom/prometheus (--storage.tsdb.path; its CMD sets /prometheus, which a `command:` replaces),
# grafana/grafana (GF_PATHS_DATA), prom/alertmanager (--storage.path, "data/" below its WORKDIR
# /alertmanager when not given).
WRITES_BY_DEFAULT = {
    "kafka": ("KAFKA_LOG_DIRS", "/tmp/kraft-combined-logs"),
    "redis": (None, "/data"),
    "postgres": ("PGDATA", "/var/lib/postgresql/data"),
    "prometheus": ("--storage.tsdb.path", "data/"),
    "grafana": ("GF_PATHS_DATA", "/var/lib/grafana"),
    "alertmanager": ("--storage.path", "data/"),
}


def data_dir(name: str) -> str:
    setting, default = WRITES_BY_DEFAULT[name]
    service = SERVICES[name]
    if setting is None:
        return default
    if setting.startswith("--"):
        given = [a.split("=", 1)[1] for a in service.get("command", []) if a.startswith(setting)]
        return given[0] if given else default
    return str((service.get("environment") or {}).get(setting, default))


def test_every_stateful_service_writes_where_a_named_volume_is_mounted() -> None:
    named = set(COMPOSE["volumes"])
    for name in WRITES_BY_DEFAULT:
        mounts = {
            target: source
            for source, target, *_ in (v.split(":") for v in SERVICES[name]["volumes"])
        }
        path = data_dir(name)
        holding = [t for t in mounts if path == t or path.startswith(t.rstrip("/") + "/")]
        assert holding, f"{name} writes to {path}, which no volume holds"
        assert mounts[holding[0]] in named, f"{name}: {holding[0]} is not a named volume"


def test_the_compose_broker_creates_no_topic_by_itself() -> None:
    assert SERVICES["kafka"]["environment"]["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"


def test_the_workers_health_is_their_event_loop_s_heartbeat() -> None:
    for name in ("scorer", "sink", "trainer"):
        check = " ".join(SERVICES[name]["healthcheck"]["test"])
        assert "127.0.0.1:9464/health" in check, name


def test_prometheus_sends_its_alerts_to_the_compose_alertmanager() -> None:
    config = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    (targets,) = [c["static_configs"][0]["targets"] for c in config["alerting"]["alertmanagers"]]
    port = SERVICES["alertmanager"]["ports"][0].split(":")[-1]

    assert targets == [f"alertmanager:{port}"]
    routes = yaml.safe_load((ROOT / "deploy" / "alertmanager" / "alertmanager.yml").read_text())
    assert routes["route"]["receiver"] in {r["name"] for r in routes["receivers"]}
