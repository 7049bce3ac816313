"""train -> MLflow registry (champion) -> score a file in the minimal format with that model."""

from __future__ import annotations

import uuid
from pathlib import Path

import numpy as np
import pandas as pd

from retraining.dataset import replay_features
from retraining.io import read_transactions
from retraining.registry import load_scorer
from streams.jobs import score_file, train
from streams.simulator.generator import SimulationConfig, simulate
from tests.conftest import Endpoints


def test_train_registers_a_champion_and_score_uses_it_on_minimal_files(
    services: Endpoints, tmp_path: Path
) -> None:
    settings = services.settings(model_name=f"it-fraud-{uuid.uuid4().hex[:8]}")
    simulation = simulate(SimulationConfig(seed=21, days=40, customers=600, terminals=300))
    minimal = simulation.transactions[
        ["transaction_id", "event_time", "card_id", "terminal_id", "amount"]
    ]
    minimal.assign(event_time=minimal["event_time"].map(pd.Timestamp.isoformat)).to_csv(
        tmp_path / "tx.csv", index=False
    )
    simulation.labels[["transaction_id", "is_fraud"]].to_csv(tmp_path / "labels.csv", index=False)

    report = train(settings, tmp_path / "tx.csv", tmp_path / "labels.csv", {}, k=20)
    metrics = score_file(
        settings, tmp_path / "tx.csv", tmp_path / "labels.csv", tmp_path / "scored.parquet",
        f"{settings.model_name}@champion", k=20,
    )  # fmt: skip
    scored = pd.read_parquet(tmp_path / "scored.parquet")

    assert (report.version, report.champion) == ("1", True)
    assert set(report.metrics) == {"logistic_regression", "random_forest", "lightgbm"}
    assert list(scored.columns) == [
        "transaction_id",
        "score",
        "decision",
        "reasons",
        "model_version",
        "fallback",
    ]
    assert (
        scored["transaction_id"].tolist()
        == read_transactions(tmp_path / "tx.csv")["transaction_id"].tolist()
    )
    assert (scored["model_version"] == f"{settings.model_name}/1").all() and not scored[
        "fallback"
    ].any()
    assert set(scored["decision"]) <= {"approve", "review", "decline"}
    # the file's scores are the registered model's scores on the replayed features
    scorer = load_scorer(settings.mlflow_tracking_uri, settings.model_name)
    rows = replay_features(read_transactions(tmp_path / "tx.csv"), None, settings.label_delay_days)
    assert scorer.version == "1"
    assert metrics["auc_roc"] > 0.7
    unlabelled = scorer.score(rows[:200]).probabilities
    assert unlabelled.shape == (200,) and np.isfinite(unlabelled).all()


def test_score_falls_back_to_rules_when_no_model_is_registered(
    services: Endpoints, tmp_path: Path
) -> None:
    settings = services.settings(model_name=f"it-missing-{uuid.uuid4().hex[:8]}")
    simulation = simulate(SimulationConfig(seed=2, days=3, customers=50, terminals=30))
    simulation.transactions.to_parquet(tmp_path / "tx.parquet")

    score_file(
        settings,
        tmp_path / "tx.parquet",
        None,
        tmp_path / "out.csv",
        f"{settings.model_name}@champion",
    )
    scored = pd.read_csv(tmp_path / "out.csv")

    assert len(scored) == len(simulation.transactions)
    assert scored["fallback"].all() and (scored["model_version"] == "rules/fallback").all()
