"""The drift agent keeps each HTML report in the registry, with the training run of the
version it judged, and links it from the DriftReport: a report outlives the pod that wrote
it. A registry that fails leaves the local file and the stream going. (The Evidently HTML
itself is replaced by a stub file here: its 1-2 s are the integration tests' to spend.)"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

import streams.drift_agent
from retraining.drift_monitor import DriftConfig, Reference, WindowResult
from retraining.registry import InMemoryRegistry
from schemas.events import DriftReport, Severity
from scoring.decision import Thresholds
from scoring.features import FEATURE_NAMES
from streams.drift_agent import DriftAgent
from streams.metrics import WorkerMetrics
from tests.registry_contract import ROWS, candidate

MODEL = "fraud-detector"


def _stub_html(reference, current, features, path: Path) -> Path:  # type: ignore[no-untyped-def]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"<html>{len(reference)} reference rows, {len(current)} current</html>")
    return path


def _window() -> WindowResult:
    report = DriftReport(
        model_name=MODEL, model_version="1", window_start=datetime(2026, 3, 1, tzinfo=UTC),
        window_end=datetime(2026, 3, 2, 12, tzinfo=UTC), events=4, features=(),
        drift_share=0.5, severity=Severity.SEVERE,
    )  # fmt: skip
    rows = np.zeros((4, len(FEATURE_NAMES)))
    return WindowResult(report, None, rows, np.full(4, 0.1))


def _agent(tmp_path: Path, store) -> DriftAgent:  # type: ignore[no-untyped-def]
    agent = DriftAgent(
        MODEL, lambda version: Reference(np.zeros((3, len(FEATURE_NAMES))), np.zeros(3)),
        Thresholds(0.5, 0.9), DriftConfig(window_events=10, min_events=5),
        tmp_path / "reports", WorkerMetrics(), store_report=store,
    )  # fmt: skip
    agent.references["1"] = Reference(np.zeros((3, len(FEATURE_NAMES))), np.zeros(3))
    return agent


def test_the_report_is_kept_with_the_judged_versions_run_and_linked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(streams.drift_agent, "write_drift_html", _stub_html)
    registry = InMemoryRegistry()
    best = candidate(1)
    registered = registry.log_training(tmp_path, MODEL, {}, {}, [best], best, ROWS)
    agent = _agent(tmp_path, lambda version, path: registry.store_report(MODEL, version, path))

    report = agent.write_html(_window())

    assert report.report_path == str(
        tmp_path / "reports" / "drift-fraud-detector-1-20260302T120000.html"
    )
    assert report.report_uri == (
        f"memory:/{registered.run_id}/drift/drift-fraud-detector-1-20260302T120000.html"
    )
    Path(report.report_path).unlink()  # the pod is gone; the registry still has it
    assert registry.read_report(report.report_uri) == b"<html>3 reference rows, 4 current</html>"


def test_a_registry_that_fails_leaves_the_local_report_and_no_link(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(streams.drift_agent, "write_drift_html", _stub_html)

    def unreachable(version: str, path: Path) -> str:
        raise ConnectionError("MLflow is away")

    report = _agent(tmp_path, unreachable).write_html(_window())

    assert report.report_uri is None
    assert report.report_path is not None and Path(report.report_path).is_file()
