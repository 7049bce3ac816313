"""The closed loop on real Kafka, Redis and MLflow: drift injected at a known time is
detected, asks for one retrain, a better model is promoted and the scorers swap to it; a
stream without drift asks for nothing."""

from __future__ import annotations

import dataclasses
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
import redis

from schemas.events import Severity
from streams.challenger import ChallengerChannel
from streams.settings import Settings, to_env
from tests.conftest import Endpoints
from tooling.cli import main
from tooling.demo import AFTER_SWAP, DemoPlan, LoopRun, run_loop
from tooling.services.process import free_port


def loop_settings(services: Endpoints, tmp_path: Path, name: str) -> Settings:
    run = uuid.uuid4().hex[:8]
    port = free_port()  # for this run's API
    return services.settings(
        home=tmp_path, topic_prefix=f"{name}{run}.", app_id=f"fraudstream-{name}-{run}",
        model_name=f"it-{name}-{run}", metrics_port=0, api_port=port,
        api_keys=f"test:{uuid.uuid4().hex}", training_store=str(tmp_path / "store"),
    )  # fmt: skip


def run(settings: Settings, plan: DemoPlan, tmp_path: Path) -> LoopRun:
    lines: list[str] = []
    try:
        return run_loop(settings, plan, tmp_path / "data", tmp_path / "logs", lines.append,
                        time.monotonic())  # fmt: skip
    finally:
        print("\n".join(lines))  # noqa: T201 - shown by pytest when the test fails


def test_drift_is_detected_retrained_promoted_and_scorers_swap(
    services: Endpoints, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow.tracking import MlflowClient

    from retraining.adapters.mlflow_registry import MlflowRegistry

    settings = loop_settings(services, tmp_path, "loop")
    plan = DemoPlan.default()
    drift_at = plan.config.drift_at
    assert drift_at is not None
    state = run(settings, plan, tmp_path).state

    # no severe window before the drift began; the first severe one names the changed features
    assert all(r.severity != Severity.SEVERE for r in state.reports if r.window_end < drift_at)
    severe = state.first_severe()
    assert severe is not None and severe.window_end >= drift_at
    drifted = {f.feature for f in severe.features if f.drifted}
    assert {"amount", "card_amount_sum_1d", "merchant_category_code"} <= drifted
    assert severe.report_path is not None and Path(severe.report_path).stat().st_size > 0
    # the same HTML kept in MLflow with version 1's training run, where the UI shows it
    assert severe.report_uri is not None and severe.report_uri.startswith("runs:/")
    kept = MlflowRegistry(settings.mlflow_tracking_uri).read_report(severe.report_uri)
    assert kept == Path(severe.report_path).read_bytes()

    # one shift, one request, one promotion: version 1 (history) -> 2 (retrained)
    assert [r.drift.model_version for r in state.requests] == ["1"]
    assert [(u.version, u.previous_version) for _, u in state.updates] == [("2", "1")]
    client = MlflowClient(settings.mlflow_tracking_uri)
    champion = client.get_model_version_by_alias(settings.model_name, "champion")
    assert str(champion.version) == "2" and champion.tags["gate"] == "passed"

    # the online challenger learnt from the labels and scored in shadow
    assert len(state.challenger_score) > 10_000
    assert all(0.0 <= p <= 1.0 for p in state.challenger_score.values())

    # the scorers swapped: the last events scored all carry the new version
    assert state.versions["2"] >= AFTER_SWAP
    latest = list(state.version_of.values())[-1_000:]
    assert set(latest) == {"2"}

    # the challenger can be promoted by hand: registered as the logistic regression it is,
    # it serves the very probabilities it gave in shadow
    for name, value in to_env(settings).items():
        monkeypatch.setenv(name, value)
    assert main(["promote-challenger", "--force"]) == 0
    champion = client.get_model_version_by_alias(settings.model_name, "champion")
    assert str(champion.version) == "3" and champion.tags["candidate"] == "logistic_regression"
    challenger = ChallengerChannel(
        redis.Redis.from_url(settings.redis_url), f"{settings.topic_prefix}challenger"
    ).refresh()
    assert challenger is not None
    rows = np.random.default_rng(3).normal(size=(20, len(challenger.features)))
    served = (
        MlflowRegistry(settings.mlflow_tracking_uri).load_scorer(settings.model_name).score(rows)
    )
    assert np.allclose(served.probabilities, challenger.score(rows), atol=1e-9)


def test_a_stream_without_drift_asks_for_no_retrain(services: Endpoints, tmp_path: Path) -> None:
    settings = loop_settings(services, tmp_path, "calm")
    default = DemoPlan.default()
    plan = dataclasses.replace(
        default, config=dataclasses.replace(default.config, drift_at=None, days=70)
    )
    state = run(settings, plan, tmp_path).state

    assert len(state.version_of) > 40_000  # 25 simulated days streamed and scored
    assert len(state.reports) >= 5
    assert [r.severity for r in state.reports if r.severity == Severity.SEVERE] == []
    assert state.requests == [] and state.updates == []
    assert set(state.versions) == {"1"}
