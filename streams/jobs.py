"""The batch jobs behind ``fraudstream simulate | train | score``: thin glue from files and
settings to the pure code in ``retraining`` and ``scoring``."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from retraining.dataset import replay_features
from retraining.io import read_labels, read_transactions, write_table
from retraining.metrics import evaluate
from retraining.training import TrainingWindow, best_of, build_dataset, train_candidates
from scoring.decision import Thresholds
from scoring.features.store import FeatureStore
from scoring.serving import RulesFallback, Scorer
from streams.settings import Settings
from streams.simulator.generator import Simulation, SimulationConfig, simulate

logger = logging.getLogger(__name__)

SCORE_CHUNK = 20_000


def write_simulation(config: SimulationConfig, out_dir: Path, file_format: str) -> Simulation:
    simulation = simulate(config)
    for name in ("transactions", "labels", "truth"):
        write_table(getattr(simulation, name), out_dir / f"{name}.{file_format}")
    return simulation


@dataclasses.dataclass(frozen=True)
class TrainReport:
    window: TrainingWindow
    summary: dict[str, float]
    metrics: dict[str, dict[str, float]]  # candidate -> metrics
    best: str
    version: str
    champion: bool


def train(
    settings: Settings,
    transactions_file: Path,
    labels_file: Path,
    window_overrides: dict[str, pd.Timestamp | None],
    k: int = 100,
    seed: int = 7,
    progress: bool = False,
    store: FeatureStore | None = None,
) -> TrainReport:
    """Train on the files' history. ``store``: replay it into this feature store (the online
    one, to warm the stream's state up) instead of a throwaway in-memory one."""
    from retraining.registry import log_training

    transactions = read_transactions(transactions_file)
    labels = read_labels(labels_file, transactions, settings.label_delay_days)
    default = TrainingWindow.ending_at(
        transactions["event_time"].max(), delay_days=settings.label_delay_days
    )
    window = dataclasses.replace(
        default, **{k: v for k, v in window_overrides.items() if v is not None}
    )
    dataset = build_dataset(
        transactions, labels, window, settings.label_delay_days, progress=progress, store=store
    )
    results = train_candidates(dataset, seed=seed, k=k)
    best = best_of(results)
    # the drift agent's reference: the most recent rows, whose feature windows are full
    test_rows = dataset.features[dataset.test]
    sample = np.random.default_rng(seed).permutation(len(test_rows))[:5_000]
    reference = test_rows[np.sort(sample)]
    params = {
        **window.as_params(),
        "label_delay_days": settings.label_delay_days,
        "transactions_file": str(transactions_file),
        "labels_file": str(labels_file),
        "k": k,
    }
    registered = log_training(
        settings.mlflow_tracking_uri,
        settings.mlflow_artifact_dir,
        settings.model_name,
        params,
        dataset.summary(),
        results,
        best,
        reference,
    )
    return TrainReport(
        window,
        dataset.summary(),
        {r.kind: r.metrics for r in results},
        best.kind,
        registered.version,
        registered.champion,
    )


def load_scorer_or_fallback(settings: Settings, model: str) -> Scorer:
    """``name@alias`` from the registry; the rules fallback when that cannot be loaded."""
    from retraining.registry import load_scorer

    name, _, alias = model.partition("@")
    try:
        return load_scorer(settings.mlflow_tracking_uri, name, alias or "champion")
    except Exception as error:  # any registry failure means: decide by rules
        logger.warning("model %s unavailable (%s): scoring with the rules fallback", model, error)
        return RulesFallback()


def score_file(
    settings: Settings,
    transactions_file: Path,
    labels_file: Path | None,
    out_file: Path,
    model: str,
    k: int = 100,
    progress: bool = False,
) -> dict[str, float]:
    """Backtest: the stream's features and model over a file; metrics when labels are given."""
    transactions = read_transactions(transactions_file)
    labels = (
        read_labels(labels_file, transactions, settings.label_delay_days) if labels_file else None
    )
    rows = replay_features(transactions, labels, settings.label_delay_days, progress=progress)
    scorer = load_scorer_or_fallback(settings, model)
    thresholds = Thresholds(settings.review_threshold, settings.decline_threshold)
    scores, reasons = [], []
    for start in range(0, len(rows), SCORE_CHUNK):
        batch = scorer.score(rows[start : start + SCORE_CHUNK])
        scores.append(batch.probabilities)
        reasons += [";".join(str(reason["code"]) for reason in row) for row in batch.reasons]
    probabilities = np.concatenate(scores) if scores else np.array([])
    out = pd.DataFrame(
        {
            "transaction_id": transactions["transaction_id"],
            "score": probabilities,
            "decision": thresholds.decide(probabilities),
            "reasons": reasons,
            "model_version": f"{scorer.name}/{scorer.version}",
            "fallback": scorer.fallback,
        }
    )
    write_table(out, out_file)
    if labels is None:
        return {}
    frauds = set(labels.loc[labels["is_fraud"], "transaction_id"])
    truth = transactions["transaction_id"].isin(frauds).to_numpy().astype(int)
    days = transactions["event_time"].dt.floor("D").to_numpy()
    return evaluate(probabilities, truth, days, transactions["card_id"].to_numpy(), k)
