"""deploy/: Kubernetes manifests valid against the Kubernetes schemas (offline, bundled by
kubernetes-validate), and Grafana provisioning that matches its dashboards."""

from __future__ import annotations

import json
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from streams.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
KUBERNETES = "1.33.0"
GRAFANA = ROOT / "deploy" / "grafana"


def manifests() -> list[tuple[str, dict]]:
    return [
        (f"{path.name}#{i}", document)
        for path in sorted(K8S.glob("*.yaml"))
        if path.name != "kustomization.yaml"
        for i, document in enumerate(yaml.safe_load_all(path.read_text()))
    ]


def resources() -> dict[tuple[str, str], dict]:
    return {(doc["kind"], doc["metadata"]["name"]): doc for _, doc in manifests()}


@pytest.mark.parametrize(("where", "document"), manifests(), ids=[w for w, _ in manifests()])
def test_every_manifest_is_valid_kubernetes(where: str, document: dict) -> None:
    kubernetes_validate.validate(document, KUBERNETES, strict=True)


def test_the_validation_catches_a_mistake() -> None:
    scorer = resources()[("Deployment", "scorer")]
    broken = json.loads(json.dumps(scorer))
    broken["spec"]["template"]["spec"]["containers"][0]["port"] = 9464  # ports, misspelt
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES, strict=True)


def test_kustomization_applies_every_file() -> None:
    listed = yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"]
    on_disk = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert sorted(listed) == sorted(on_disk)


def test_podmonitors_scrape_every_role_under_the_job_names_the_alerts_use() -> None:
    overlay = yaml.safe_load((K8S / "monitoring" / "kustomization.yaml").read_text())
    assert overlay["resources"] == ["..", "podmonitors.yaml"]
    monitors = list(yaml.safe_load_all((K8S / "monitoring" / "podmonitors.yaml").read_text()))
    deployments = {name: d for (kind, name), d in resources().items() if kind == "Deployment"}
    alerts = (ROOT / "deploy" / "prometheus" / "alerts.yml").read_text()
    compose_jobs = {
        job["job_name"]
        for job in yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())[
            "scrape_configs"
        ]
    }
    assert {m["metadata"]["name"] for m in monitors} == set(deployments)
    jobs = set()
    for monitor in monitors:
        assert (monitor["apiVersion"], monitor["kind"]) == (
            "monitoring.coreos.com/v1",
            "PodMonitor",
        )
        pod = deployments[monitor["metadata"]["name"]]["spec"]["template"]
        assert (
            monitor["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
        )
        (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
        ports = {
            p["name"]: p["containerPort"] for c in pod["spec"]["containers"] for p in c["ports"]
        }
        assert endpoint["port"] in ports and endpoint["path"] == "/metrics"
        # and the annotations say the same, for a Prometheus without the Operator
        assert pod["metadata"]["annotations"]["prometheus.io/port"] == str(ports[endpoint["port"]])
        (relabel,) = endpoint["relabelings"]
        assert relabel["targetLabel"] == "job"
        jobs.add(relabel["replacement"])
    assert jobs == compose_jobs
    assert 'job="fraudstream-scorer"' in alerts


def test_scorers_scale_on_lag_within_the_partitions() -> None:
    found = resources()
    settings = found[("ConfigMap", "fraudstream-settings")]["data"]
    Settings.from_env(settings)  # every FRAUD_* name there is a setting with a usable value
    autoscaler = found[("HorizontalPodAutoscaler", "scorer")]["spec"]
    assert autoscaler["scaleTargetRef"]["name"] == "scorer"
    assert autoscaler["maxReplicas"] == int(settings["FRAUD_PARTITIONS"])
    (metric,) = autoscaler["metrics"]
    name = metric["external"]["metric"]["name"]
    rules = found[("ConfigMap", "fraudstream-adapter-rules")]["data"]["config.yaml"]
    (rule,) = yaml.safe_load(rules)["externalRules"]
    assert rule["name"]["as"] == name
    assert rule["seriesQuery"].startswith("fraudstream_consumer_lag")


def test_workers_and_api_read_their_configuration_and_the_api_is_behind_a_service() -> None:
    found = resources()
    for name in ("scorer", "sink", "trainer", "api"):
        (container,) = found[("Deployment", name)]["spec"]["template"]["spec"]["containers"]
        assert container["envFrom"] == [{"configMapRef": {"name": "fraudstream-settings"}}]
        assert "env" not in container  # settings in one place
    (sink, trainer) = (found[("Deployment", n)]["spec"] for n in ("sink", "trainer"))
    assert sink["replicas"] == trainer["replicas"] == 1  # one challenger learner, one trainer
    assert sink["strategy"]["type"] == trainer["strategy"]["type"] == "Recreate"
    api_pod = found[("Deployment", "api")]["spec"]["template"]
    (keys,) = [v for v in api_pod["spec"]["volumes"] if v["name"] == "keys"]
    assert keys["secret"]["secretName"] == "fraudstream-api-keys"  # made by hand, not here
    assert not [d for _, d in manifests() if d["kind"] == "Secret"]
    service = found[("Service", "api")]["spec"]
    assert service["selector"].items() <= api_pod["metadata"]["labels"].items()
    assert service["ports"][0]["targetPort"] == "http"


def test_dashboards_use_the_provisioned_datasource_and_every_panel_has_a_query() -> None:
    datasources = yaml.safe_load(
        (GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )["datasources"]
    uids = {source["uid"] for source in datasources}
    boards = [json.loads(p.read_text()) for p in (GRAFANA / "dashboards").glob("*.json")]
    assert boards
    for board in boards:
        for panel in board["panels"]:
            if panel["type"] == "row":
                continue
            assert panel["datasource"]["uid"] in uids, panel["title"]
            assert panel["targets"] and all(t["expr"].strip() for t in panel["targets"])


def test_the_dashboard_opens_on_the_stats_an_operator_checks_with_the_alerts_slos() -> None:
    board = json.loads((GRAFANA / "dashboards" / "fraudstream.json").read_text())
    panels = [p for p in board["panels"] if p["type"] != "row"]
    first_row = [p for p in panels if p["gridPos"]["y"] == 1]
    assert {p["type"] for p in first_row} == {"stat"}
    assert [p["title"] for p in first_row] == [
        "Scored per second", "p99 broker to scored", "Decline rate", "Consumer lag",
        "Serving version", "Drift share",
    ]  # fmt: skip
    # the SLO lines are the alerts' thresholds
    alerts = (ROOT / "deploy" / "prometheus" / "alerts.yml").read_text()
    lines = {
        p["title"]: p["fieldConfig"]["defaults"]["thresholds"]["steps"][-1]["value"]
        for p in panels
        if p["fieldConfig"]["defaults"].get("custom", {}).get("thresholdsStyle") == {"mode": "line"}
    }  # fmt: skip
    assert sorted(lines.values()) == [0.05, 0.25, 10000]
    for value in lines.values():
        assert f"> {value}" in alerts
    (variable,) = board["templating"]["list"]
    assert (variable["name"], variable["includeAll"], variable["allValue"]) == (
        "instance",
        True,
        ".*",
    )
    exprs = [t["expr"] for p in panels for t in p["targets"]]
    # probes and scrapes are not REST traffic; every worker panel can be narrowed by instance
    assert all(
        'route!~"/metrics|/health|/ready"' in e or "route=~" in e
        for e in exprs if "fraudstream_api_requests" in e or "api_latency" in e
    )  # fmt: skip
    assert all('instance=~"$instance"' in e for e in exprs if "fraudstream_scored_total" in e)


def test_the_image_holds_every_package_the_project_ships() -> None:
    import re
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    shipped = {p.rstrip("*") for p in project["tool"]["setuptools"]["packages"]["find"]["include"]}
    dockerfile = (ROOT / "deploy" / "docker" / "Dockerfile").read_text()
    copied = set(re.findall(r"^COPY (\w+) \./\1$", dockerfile, re.M))

    assert shipped == copied
    assert all((ROOT / package / "__init__.py").exists() for package in shipped)


def test_every_alert_links_a_runbook_section_and_has_a_promtool_test() -> None:
    import re

    rules = yaml.safe_load((ROOT / "deploy" / "prometheus" / "alerts.yml").read_text())
    tests = yaml.safe_load((ROOT / "deploy" / "prometheus" / "alerts_test.yml").read_text())
    runbook = (ROOT / "docs" / "RUNBOOK.md").read_text()
    anchors = {h.lower() for h in re.findall(r"^## (\w+)$", runbook, re.M)}
    alerts = [r for group in rules["groups"] for r in group["rules"] if "alert" in r]
    fired = {
        case["alertname"]
        for test in tests["tests"]
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }

    for alert in alerts:
        name = alert["alert"]
        assert alert["annotations"]["runbook_url"] == f"docs/RUNBOOK.md#{name.lower()}", name
        assert name.lower() in anchors, f"docs/RUNBOOK.md has no section {name}"
        assert name in fired, f"no promtool test makes {name} fire"


def test_every_pod_meets_the_restricted_pod_security_profile() -> None:
    found = resources()
    namespace = found[("Namespace", "fraudstream")]["metadata"]["labels"]
    assert namespace["pod-security.kubernetes.io/enforce"] == "restricted"
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    (image,) = kustomization["images"]
    for name in ("scorer", "sink", "trainer", "api"):
        pod = found[("Deployment", name)]["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        (container,) = pod["containers"]
        context = container["securityContext"]
        assert context["allowPrivilegeEscalation"] is False, name
        assert context["capabilities"] == {"drop": ["ALL"]}, name
        assert context["readOnlyRootFilesystem"] is True, name
        writable = {m["mountPath"] for m in container["volumeMounts"]}
        assert {"/tmp", "/var/lib/fraudstream"} <= writable, name  # FRAUD_HOME and temp files
        assert container["image"].split(":")[0] == image["name"], name  # kustomize sets it
