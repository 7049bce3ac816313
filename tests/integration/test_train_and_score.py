"""train -> MLflow registry (champion) -> score a file in the minimal format with that model;
a user's own file with bad rows, zero amounts, and a model named by version."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from retraining.adapters.mlflow_registry import MlflowRegistry
from retraining.dataset import replay_features
from retraining.io import read_transactions
from simulator.generator import SimulationConfig, simulate
from streams.settings import Settings, to_env
from tests.conftest import Endpoints
from tooling.cli import main
from tooling.jobs import TrainReport, score_file, train

ZERO_AMOUNTS = 13  # card verifications: valid transactions, scored like any other


@pytest.fixture(scope="module")
def trained(
    services: Endpoints, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Settings, Path, TrainReport]]:
    """A minimal CSV (with zero amounts) trained into a model of this module's own name."""
    folder = tmp_path_factory.mktemp("files")
    settings = services.settings(model_name=f"it-fraud-{uuid.uuid4().hex[:8]}")
    simulation = simulate(SimulationConfig(seed=21, days=40, customers=600, terminals=300))
    minimal = simulation.transactions[
        ["transaction_id", "event_time", "card_id", "terminal_id", "amount"]
    ].copy()
    minimal.loc[minimal.index[100 : 100 + ZERO_AMOUNTS], "amount"] = 0.0
    minimal.assign(event_time=minimal["event_time"].map(pd.Timestamp.isoformat)).to_csv(
        folder / "tx.csv", index=False
    )
    simulation.labels[["transaction_id", "is_fraud"]].to_csv(folder / "labels.csv", index=False)
    report = train(settings, folder / "tx.csv", folder / "labels.csv", {}, k=20)
    yield settings, folder, report


def test_train_registers_a_champion_and_score_uses_it_on_minimal_files(
    trained: tuple[Settings, Path, TrainReport], tmp_path: Path
) -> None:
    settings, folder, report = trained
    scored_report = score_file(
        settings, folder / "tx.csv", folder / "labels.csv", tmp_path / "scored.parquet",
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
    transactions = read_transactions(folder / "tx.csv")
    assert (transactions["amount"] == 0).sum() == ZERO_AMOUNTS  # kept, not refused
    assert scored["transaction_id"].tolist() == transactions["transaction_id"].tolist()
    assert scored_report.model == f"{settings.model_name}/1"
    assert (scored["model_version"] == f"{settings.model_name}/1").all()
    assert not scored["fallback"].any() and np.isfinite(scored["score"]).all()
    assert set(scored["decision"]) <= {"approve", "review", "decline"}
    # the file's scores are the registered model's scores on the replayed features
    scorer = MlflowRegistry(settings.mlflow_tracking_uri).load_scorer(settings.model_name)
    rows = replay_features(transactions, None, settings.label_delay_days)
    assert scorer.version == "1"
    assert scored_report.metrics["auc_roc"] > 0.7
    np.testing.assert_allclose(scorer.score(rows[:200]).probabilities, scored["score"][:200])


def cli(settings: Settings, monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    for name, value in to_env(settings).items():
        monkeypatch.setenv(name, value)
    return main(list(args))


def test_score_backtests_the_version_named_and_refuses_a_wrong_name(
    trained: tuple[Settings, Path, TrainReport],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings, folder, _ = trained
    tx = str(folder / "tx.csv")
    for model in (f"{settings.model_name}/1", f"models:/{settings.model_name}/1"):
        assert cli(settings, monkeypatch, "score", "--transactions", tx, "--out",
                   str(tmp_path / "by-version.csv"), "--model", model) == 0  # fmt: skip
        assert set(pd.read_csv(tmp_path / "by-version.csv")["model_version"]) == {
            f"{settings.model_name}/1"
        }
    capsys.readouterr()

    out = str(tmp_path / "wrong.csv")
    typo, version_99 = f"{settings.model_name}-typo@champion", f"{settings.model_name}/99"
    wrong = cli(settings, monkeypatch, "score", "--transactions", tx, "--out", out, "--model", typo)
    missing_version = cli(
        settings, monkeypatch, "score", "--transactions", tx, "--out", out, "--model", version_99
    )

    errors = capsys.readouterr().err
    assert (wrong, missing_version) == (2, 2)
    assert f"model {settings.model_name}-typo@champion cannot be loaded" in errors
    assert f"model {settings.model_name}/99 cannot be loaded" in errors
    assert not (tmp_path / "wrong.csv").exists()  # never the rules in its place


def test_bad_rows_are_named_and_skip_invalid_goes_on(
    trained: tuple[Settings, Path, TrainReport],
    outside_the_scan: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings, folder, _ = trained
    rows = pd.read_csv(folder / "tx.csv", dtype=str).head(2_000)
    rows.loc[4, "amount"] = "-12.5"  # row 5
    rows.loc[9, "event_time"] = "31/12/2026 10:00"  # row 10
    bad = outside_the_scan / "bad.csv"
    rows.to_csv(bad, index=False)
    labels = str(folder / "labels.csv")

    refused_train = cli(settings, monkeypatch, "train", "--transactions", str(bad),
                        "--labels", labels)  # fmt: skip
    refused_score = cli(settings, monkeypatch, "score", "--transactions", str(bad),
                        "--out", str(tmp_path / "refused.csv"))  # fmt: skip
    refusal = capsys.readouterr().err
    skipped = cli(settings, monkeypatch, "score", "--transactions", str(bad), "--labels", labels,
                  "--out", str(tmp_path / "scored.csv"), "--skip-invalid")  # fmt: skip
    said = capsys.readouterr().out

    assert (refused_train, refused_score, skipped) == (2, 2, 0)
    assert f"{bad}: 2 of 2,000 rows are invalid" in refusal
    assert "row 5: amount is negative" in refusal
    assert "row 10: event_time is not an ISO 8601 time" in refusal
    assert not (tmp_path / "refused.csv").exists()
    assert len(pd.read_csv(tmp_path / "scored.csv")) == 1_998
    rejected = pd.read_csv(tmp_path / "scored.rejected.csv")
    assert rejected["row"].tolist() == [5, 10]
    assert f"skipped 2 of 2,000 rows of {bad} as invalid" in said


def test_score_without_a_model_fails_clearly_and_rules_is_asked_for_by_name(
    services: Endpoints, tmp_path: Path
) -> None:
    settings = services.settings(model_name=f"it-missing-{uuid.uuid4().hex[:8]}")
    simulation = simulate(SimulationConfig(seed=2, days=3, customers=50, terminals=30))
    simulation.transactions.to_parquet(tmp_path / "tx.parquet")

    with pytest.raises(ValueError, match=f"model {settings.model_name}@champion cannot be loaded"):
        score_file(settings, tmp_path / "tx.parquet", None, tmp_path / "out.csv",
                   f"{settings.model_name}@champion")  # fmt: skip
    score_file(settings, tmp_path / "tx.parquet", None, tmp_path / "out.csv", "rules")
    scored = pd.read_csv(tmp_path / "out.csv")

    assert len(scored) == len(simulation.transactions)
    assert scored["fallback"].all() and (scored["model_version"] == "rules/fallback").all()
