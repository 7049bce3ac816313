"""`docker compose config` accepts docker-compose.yml wherever the docker client exists (it
needs no engine). Where the client has no compose plugin (this kind of machine), the plugin is
built once from its Go module, pinned, into the fraudstream cache (~3 min the first time)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from streams.settings import Settings
from tests.conftest import ROOT

COMPOSE_MODULE = "github.com/docker/compose/v2"
COMPOSE_VERSION = "v2.40.3"
EXAMPLE_VALUES = {
    "POSTGRES_PASSWORD": "example-password",
    "GRAFANA_ADMIN_PASSWORD": "example-password",
    "FRAUD_API_KEYS": "example:example-secret-0001",
}


def docker_compose() -> list[str]:
    """The compose command: the client's plugin, or the pinned build in the cache."""
    if subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    binary = Settings.from_env(os.environ).cache_dir / "bin" / f"docker-compose-{COMPOSE_VERSION}"
    if not binary.exists():
        build_compose(binary)
    return [str(binary)]


def build_compose(binary: Path) -> None:
    go = shutil.which("go")
    assert go, "docker compose is missing and there is no Go to build it: install either"
    # `go install` refuses the module (its go.mod has exclude directives): build it in place
    listed = subprocess.run(
        [go, "mod", "download", "-json", f"{COMPOSE_MODULE}@{COMPOSE_VERSION}"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    source = json.loads(listed.stdout)["Dir"]
    binary.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as work:
        tree = Path(work) / "compose"
        shutil.copytree(source, tree)
        for path in [tree, *tree.rglob("*")]:
            path.chmod(path.stat().st_mode | 0o200)  # the module cache is read-only
        version = f"-X {COMPOSE_MODULE}/internal.Version={COMPOSE_VERSION}"
        built = subprocess.run(
            [go, "build", "-trimpath", "-ldflags", version, "-o", str(binary), "./cmd"],
            cwd=tree, capture_output=True, text=True,
        )  # fmt: skip
        assert built.returncode == 0, built.stderr[-3000:]


@pytest.mark.skipif(shutil.which("docker") is None, reason="no docker client on this machine")
def test_docker_compose_config_accepts_the_stack() -> None:
    compose = docker_compose()
    environment = {**os.environ, **EXAMPLE_VALUES}
    for profile in ([], ["--profile", "simulator"]):
        checked = subprocess.run(
            [*compose, *profile, "-f", str(ROOT / "docker-compose.yml"), "config", "--quiet"],
            env=environment, capture_output=True, text=True,
        )  # fmt: skip
        assert checked.returncode == 0, checked.stderr
    services = subprocess.run(
        [*compose, "--profile", "simulator", "-f", str(ROOT / "docker-compose.yml"),
         "config", "--services"],
        env=environment, capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    assert "simulator" in services and "scorer" in services


@pytest.mark.skipif(shutil.which("docker") is None, reason="no docker client on this machine")
def test_docker_compose_refuses_the_stack_without_its_secrets() -> None:
    compose = docker_compose()
    missing = {k: v for k, v in os.environ.items() if k not in EXAMPLE_VALUES}
    with tempfile.NamedTemporaryFile("w", suffix=".env") as empty:  # not a developer's .env
        checked = subprocess.run(
            [*compose, "--env-file", empty.name, "-f", str(ROOT / "docker-compose.yml"),
             "config", "--quiet"],
            env=missing, capture_output=True, text=True,
        )  # fmt: skip
    assert checked.returncode != 0
    named = re.search(r"set (\w+) in \.env \(see \.env\.example\)", checked.stderr)
    assert named and named.group(1) in EXAMPLE_VALUES, checked.stderr  # whichever it met first
