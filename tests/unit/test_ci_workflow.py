"""The GitHub Actions workflow runs what .ci/run runs: lint, the tests without network, and
the integration tests on services the project starts itself."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def steps_of(job: dict) -> list[str]:
    return [step.get("run", step.get("uses", "")) for step in job["steps"]]


def test_the_workflow_mirrors_ci_run() -> None:
    workflow = yaml.safe_load((ROOT / ".github/workflows/ci.yml").read_text())
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as True
    assert set(triggers) == {"push", "pull_request"}
    first, second = workflow["jobs"]["lint-and-unit"], workflow["jobs"]["integration"]
    assert second["needs"] == "lint-and-unit"
    assert [s for s in steps_of(first) if s.startswith("make")] == ["make lint", "make unit"]
    assert [s for s in steps_of(second) if s.startswith("make")] == [
        "make services-up",
        "make integration",
        "make services-down",
    ]
    setup = {s.split("@")[0] for s in steps_of(second) if s.startswith("actions/")}
    assert {"actions/setup-python", "actions/setup-java"} <= setup
    ci_run = (ROOT / ".ci/run").read_text()
    for target in ("make lint", "make services-up", "make test"):
        assert target in ci_run  # make test = make unit + make integration
    makefile = (ROOT / "Makefile").read_text()
    assert 'pytest -m "not integration"' in makefile and "pytest -m integration" in makefile


def test_the_workflow_is_pinned_read_only_and_chooses_its_services() -> None:
    import re

    workflow = yaml.safe_load((ROOT / ".github/workflows/ci.yml").read_text())
    jobs = workflow["jobs"]
    uses = [step["uses"] for job in jobs.values() for step in job["steps"] if "uses" in step]

    assert workflow["permissions"] == {"contents": "read"}
    assert uses and all(re.fullmatch(r"[\w-]+/[\w-]+@[0-9a-f]{40}", u) for u in uses), uses
    assert jobs["integration"]["env"]["FRAUD_SERVICES"] == "local"
    compose = steps_of(jobs["compose"])
    assert "docker compose build" in compose
    assert "deploy/compose-smoke.sh" in compose
    smoke = (ROOT / "deploy" / "compose-smoke.sh").read_text()
    assert "docker compose up -d --wait" in smoke and "/predict" in smoke
    assert "transactions.scored" in smoke


def test_the_workflow_installs_every_debian_package_the_code_asks_for() -> None:
    """A runner is not root: ``require_debian_tool`` cannot install there, so the workflow must."""
    import re

    code = [*ROOT.glob("tooling/**/*.py"), *ROOT.glob("tests/**/*.py")]
    asked = {
        package
        for path in code
        for package in re.findall(r'require_debian_tool\(\s*"[^"]+",\s*"([^"]+)"', path.read_text())
    }
    assert {"redis-server", "prometheus", "prometheus-alertmanager", "kcat"} <= asked
    steps = yaml.safe_load((ROOT / ".github/workflows/ci.yml").read_text())["jobs"]["integration"]
    installs = " ".join(
        s.get("run", "") for s in steps["steps"] if "apt-get install" in s.get("run", "")
    )
    assert asked <= set(installs.split()), asked - set(installs.split())
