"""MLflow: a sqlite tracking store and a local artifact directory, no server needed.

``mlflow server`` on 127.0.0.1 serves the UI (and the same store over HTTP) when asked for.
"""

from __future__ import annotations

import sqlite3
import sys
import urllib.error
import urllib.request
from pathlib import Path

from streams.settings import Settings
from tooling.services.process import (
    ManagedProcess,
    ServiceError,
    ServiceStatus,
    port_open,
    wait_until,
)

DEFAULT_EXPERIMENT = "fraudstream"


class LocalMlflow:
    name = "mlflow"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.server = ManagedProcess(
            "mlflow-server", settings.home / "run", f"--port {settings.mlflow_port}"
        )

    def up(self, with_server: bool = False) -> bool:
        """Create the store; True if this call started the UI server."""
        self.settings.mlflow_artifact_dir.mkdir(parents=True, exist_ok=True)
        uri = self.settings.mlflow_tracking_uri
        if uri.startswith("sqlite:"):
            _sqlite_path(uri).parent.mkdir(parents=True, exist_ok=True)
            initialise_store(uri, self.settings.mlflow_artifact_dir)
        if with_server and self.server.pid() is None:
            self._start_server(uri)
            return True
        return False

    def down(self) -> bool:
        return self.server.stop()

    def status(self) -> ServiceStatus:
        uri = self.settings.mlflow_tracking_uri
        server = self.server.pid()
        server_note = (
            f"UI {self.settings.mlflow_server_uri} (pid {server})" if server else "no UI server"
        )
        if uri.startswith("sqlite:"):
            ready = _sqlite_store_ready(_sqlite_path(uri))
            detail = "sqlite store" if ready else "sqlite store not created"
        else:
            ready = _http_ok(f"{uri.rstrip('/')}/health")
            detail = "tracking server" if ready else "tracking server not answering"
        return ServiceStatus(self.name, ready, uri, f"{detail}; {server_note}", "ready", "missing")

    def _start_server(self, backend_uri: str) -> None:
        port = self.settings.mlflow_port
        if port_open("127.0.0.1", port):
            raise ServiceError(f"port {port} is taken: set FRAUD_MLFLOW_PORT")
        self.server.start(
            [
                sys.executable, "-m", "mlflow", "server",
                "--backend-store-uri", backend_uri,
                "--artifacts-destination", self.settings.mlflow_artifact_dir.as_uri(),
                "--serve-artifacts",
                "--host", "127.0.0.1",
                "--port", str(port),
                "--workers", "1",
            ]
        )  # fmt: skip
        health = f"{self.settings.mlflow_server_uri}/health"
        wait_until(lambda: _http_ok(health), 90.0, "MLflow server", self.server)


def initialise_store(tracking_uri: str, artifact_root: Path) -> None:
    """Create the store's tables (MLflow migrates on first use) and the default experiment."""
    from mlflow.tracking import MlflowClient  # heavy: loaded only when a store is made

    from retraining.adapters.mlflow_registry import ensure_experiment

    ensure_experiment(MlflowClient(tracking_uri), DEFAULT_EXPERIMENT, artifact_root)


def _sqlite_path(uri: str) -> Path:
    return Path(uri.removeprefix("sqlite:///"))


def _sqlite_store_ready(path: Path) -> bool:
    if not path.exists():
        return False
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as connection:
            tables = {row[0] for row in connection.execute("select name from sqlite_master")}
    except sqlite3.Error:
        return False
    return {"experiments", "registered_models", "model_versions"} <= tables


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1.0) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False
