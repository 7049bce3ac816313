"""`fraudstream services up --only schema-registry` starts a schema registry (Apicurio, from
Maven Central, with the Confluent-compatible API) and `fraudstream schemas register` publishes
every topic's JSON Schema to it, as a producer team in another language would find them;
the registered schemas survive a restart of the registry."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import jsonschema
import pytest

from schemas.contracts import CONTRACTS
from tooling.services.process import free_port
from tooling.services.schema_registry import RegistryClient

VALIDATOR = jsonschema.Draft202012Validator


def _fraudstream(env: dict[str, str], *arguments: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "tooling.cli", *arguments]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)


def test_the_contracts_are_registered_and_read_back_across_a_restart(tmp_path: Path) -> None:
    prefix = f"it{uuid.uuid4().hex[:8]}."
    port = free_port()
    env = os.environ | {
        "FRAUD_HOME": str(tmp_path / "home"), "FRAUD_SCHEMA_REGISTRY_PORT": str(port),
        "FRAUD_TOPIC_PREFIX": prefix,
    }  # fmt: skip
    registry = RegistryClient(f"http://127.0.0.1:{port}/apis/ccompat/v7")
    files = {p.name.removesuffix(".schema.json"): p for p in CONTRACTS.glob("*.schema.json")}
    up = _fraudstream(env, "services", "up", "--only", "schema-registry")
    assert up.returncode == 0, up.stdout + up.stderr
    try:
        registered = _fraudstream(env, "schemas", "register")
        assert registered.returncode == 0, registered.stdout + registered.stderr
        again = _fraudstream(env, "schemas", "register")  # the same schemas: the same ids
        assert again.stdout == registered.stdout

        assert sorted(registry.subjects()) == sorted(f"{prefix}{t}-value" for t in files)
        for topic, path in files.items():
            assert json.loads(registry.latest(f"{prefix}{topic}-value")) == json.loads(
                path.read_text()
            )
        # a message written by hand against the registry's copy, as a Go producer would
        schema = json.loads(registry.latest(f"{prefix}transactions-value"))
        message = {"transaction_id": "tx-go-2", "event_time": "2026-03-01T12:00:00Z",
                   "card_id": "tok_2b1e", "terminal_id": "T-9", "amount": 12.0}  # fmt: skip
        jsonschema.validate(message, schema, cls=VALIDATOR)
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate({**message, "amount": -3}, schema, cls=VALIDATOR)

        restart = _fraudstream(env, "services", "down", "--only", "schema-registry")
        assert restart.returncode == 0, restart.stdout + restart.stderr
        restart = _fraudstream(env, "services", "up", "--only", "schema-registry")
        assert restart.returncode == 0, restart.stdout + restart.stderr
        assert sorted(registry.subjects()) == sorted(f"{prefix}{t}-value" for t in files)
    finally:
        down = _fraudstream(env, "services", "down", "--only", "schema-registry")
    assert down.returncode == 0, down.stdout + down.stderr
