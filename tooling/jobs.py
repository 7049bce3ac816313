"""The batch jobs behind ``fraudstream simulate | train | score``: thin glue from files and
settings to the pure code in ``retraining`` and ``scoring``."""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd

from retraining.budget import BudgetThresholds
from retraining.dataset import replay_features
from retraining.io import Checked, check_labels, check_transactions, rejected_file, write_table
from retraining.metrics import evaluate
from retraining.training import (
    Dataset,
    TrainingWindow,
    best_of,
    build_dataset,
    train_candidates,
)
from scoring.decision import Thresholds
from scoring.features.store import FeatureStore
from scoring.serving import RulesFallback, Scorer
from simulator.generator import Simulation, SimulationConfig, simulate
from streams.settings import Settings

logger = logging.getLogger(__name__)

SCORE_CHUNK = 20_000


def write_simulation(config: SimulationConfig, out_dir: Path, file_format: str) -> Simulation:
    simulation = simulate(config)
    for name in ("transactions", "labels", "truth"):
        write_table(getattr(simulation, name), out_dir / f"{name}.{file_format}")
    return simulation


@dataclasses.dataclass(frozen=True)
class Skipped:
    """Rows of ``source`` left out by ``--skip-invalid``, written with reasons to ``written``."""

    source: Path
    rows: int
    total: int
    written: Path


@dataclasses.dataclass(frozen=True)
class TrainReport:
    window: TrainingWindow
    summary: dict[str, float]
    metrics: dict[str, dict[str, float]]  # candidate -> metrics on the test window
    best: str
    version: str
    champion: bool
    skipped: tuple[Skipped, ...] = ()
    validation: dict[str, dict[str, float]] = dataclasses.field(default_factory=dict)
    budget: BudgetThresholds | None = None  # the best's thresholds and what they cost
    seconds: float = 0.0
    trials: int = 0


@dataclasses.dataclass(frozen=True)
class ScoreReport:
    model: str  # name/version scored with ("rules/fallback" for the rules)
    metrics: dict[str, float]  # empty without labels
    skipped: tuple[Skipped, ...] = ()


def valid_rows(checked: Checked, skip_invalid: bool, rejected_to: Path) -> pd.DataFrame:
    """The valid rows; invalid ones stop the job (``InvalidRows``) unless ``skip_invalid``,
    which writes them with their reasons to ``rejected_to``."""
    if not skip_invalid or checked.rejected.empty:
        return checked.or_raise()
    write_table(checked.rejected, rejected_to)
    logger.warning(
        "%s: skipped %d of %d rows (reasons in %s)",
        checked.path, len(checked.rejected), checked.total, rejected_to,
    )  # fmt: skip
    return checked.valid


def read_inputs(
    settings: Settings,
    transactions_file: Path,
    labels_file: Path | None,
    skip_invalid: bool,
    rejected_beside: dict[Path, Path],
) -> tuple[pd.DataFrame, pd.DataFrame | None, tuple[Skipped, ...]]:
    """Transactions and labels, checked row by row; ``rejected_beside`` says, for each
    input, what its rejected file is written beside."""
    skipped = []
    tx_checked = check_transactions(transactions_file, max_future_skew_s=settings.max_future_skew)
    tx_rejected = rejected_file(rejected_beside[transactions_file])
    transactions = valid_rows(tx_checked, skip_invalid, tx_rejected)
    if len(tx_checked.rejected):
        skipped.append(
            Skipped(transactions_file, len(tx_checked.rejected), tx_checked.total, tx_rejected)
        )
    labels = None
    if labels_file is not None:
        label_checked = check_labels(labels_file, transactions, settings.label_delay_days)
        label_rejected = rejected_file(rejected_beside[labels_file])
        labels = valid_rows(label_checked, skip_invalid, label_rejected)
        if len(label_checked.rejected):
            skipped.append(
                Skipped(labels_file, len(label_checked.rejected), label_checked.total,
                        label_rejected)
            )  # fmt: skip
    return transactions, labels, tuple(skipped)


def dataset_from_files(
    settings: Settings,
    transactions_file: Path,
    labels_file: Path,
    window_overrides: dict[str, pd.Timestamp | None],
    progress: bool = False,
    store: FeatureStore | None = None,
    skip_invalid: bool = False,
) -> tuple[TrainingWindow, Dataset, tuple[Skipped, ...]]:
    """The files' history replayed and split by the protocol: the default windows end with
    the data, ``window_overrides`` (train_start, ..., test_end) move them."""
    beside = {transactions_file: transactions_file, labels_file: labels_file}
    transactions, labels, skipped = read_inputs(
        settings, transactions_file, labels_file, skip_invalid, beside
    )
    assert labels is not None  # a labels file was given
    default = TrainingWindow.ending_at(
        transactions["event_time"].max(), delay_days=settings.label_delay_days
    )
    window = dataclasses.replace(
        default, **{k: v for k, v in window_overrides.items() if v is not None}
    )
    dataset = build_dataset(
        transactions, labels, window, settings.label_delay_days, progress=progress, store=store,
        protocol=settings.protocol(),
    )  # fmt: skip
    return window, dataset, skipped


def train(
    settings: Settings,
    transactions_file: Path,
    labels_file: Path,
    window_overrides: dict[str, pd.Timestamp | None],
    k: int = 100,
    seed: int = 7,
    progress: bool = False,
    store: FeatureStore | None = None,
    skip_invalid: bool = False,
) -> TrainReport:
    """Train on the files' history. ``store``: replay it into this feature store (the online
    one, to warm the stream's state up) instead of a throwaway in-memory one.
    ``skip_invalid``: leave invalid rows out (written beside each input file) instead of
    stopping."""
    from retraining.adapters.mlflow_registry import MlflowRegistry

    started = time.perf_counter()
    window, dataset, skipped = dataset_from_files(
        settings, transactions_file, labels_file, window_overrides, progress, store, skip_invalid
    )
    options = settings.training_options(seed, k)
    results = train_candidates(dataset, options=options)
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
        **options.as_params(),
        **dataset.fold_params(),
    }
    registered = MlflowRegistry(settings.mlflow_tracking_uri).log_training(
        settings.mlflow_artifact_dir,
        settings.model_name,
        params,
        dataset.summary(),
        results,
        best,
        reference,
        report=dataset,
    )
    return TrainReport(
        window,
        dataset.summary(),
        {r.kind: r.metrics for r in results},
        best.kind,
        registered.version,
        registered.champion,
        skipped,
        {r.kind: r.validation for r in results},
        best.budget,
        time.perf_counter() - started,
        sum(len(r.trials) for r in results),
    )


def evaluate_models(
    settings: Settings,
    transactions_file: Path,
    labels_file: Path,
    ablation: bool,
    seed: int = 7,
    k: int = 100,
    progress: bool = False,
) -> str:
    """The former champion beside the new one under the protocol, and (``ablation``) what
    each feature group adds, as Markdown; nothing is registered."""
    from retraining.compare import ablation as ablation_rows
    from retraining.compare import former_champion, markdown, new_champion

    window, dataset, _ = dataset_from_files(settings, transactions_file, labels_file, {}, progress)
    options = settings.training_options(seed, k)
    folds = ", ".join(f"{f.name} {f.train} -> {f.evaluate}" for f in dataset.folds)
    sections = [
        f"{len(dataset.transactions):,} transactions; test {window.test_start.date()}.."
        f"{window.test_end.date()}; train {window.train_start.date()}.."
        f"{window.train_end.date()}; folds: {folds}; search budget "
        f"{settings.search_budget_seconds:.0f} s",
        "",
        markdown([former_champion(dataset, seed, k), new_champion(dataset, options)], k),
    ]
    if ablation:
        sections += ["", markdown(ablation_rows(dataset, options), k)]
    return "\n".join(sections)


def load_scorer_or_fallback(settings: Settings, model: str) -> Scorer:
    """``name@alias`` from the registry; the rules fallback when that cannot be loaded."""
    from retraining.adapters.mlflow_registry import MlflowRegistry
    from schemas.events import CHAMPION

    name, _, alias = model.partition("@")
    try:
        return MlflowRegistry(settings.mlflow_tracking_uri).load_scorer(name, alias or CHAMPION)
    except Exception as error:  # any registry failure means: decide by rules
        logger.warning("model %s unavailable (%s): scoring with the rules fallback", model, error)
        return RulesFallback()


RULES = "rules"  # ``score --model rules``: backtest the rules fallback itself


def backtest_scorer(settings: Settings, model: str) -> Scorer:
    """The model a backtest was asked for: ``rules``, or a registered model by alias or
    version; a model that cannot be loaded is an error, never the rules in its place."""
    from retraining.adapters.mlflow_registry import MlflowRegistry
    from retraining.registry import parse_model_ref

    if model == RULES:
        return RulesFallback()
    return MlflowRegistry(settings.mlflow_tracking_uri).load_model_ref(parse_model_ref(model))


def score_file(
    settings: Settings,
    transactions_file: Path,
    labels_file: Path | None,
    out_file: Path,
    model: str,
    k: int = 100,
    progress: bool = False,
    skip_invalid: bool = False,
) -> ScoreReport:
    """Backtest: the stream's features and ``model`` over a file; metrics when labels are
    given. ``skip_invalid``: invalid rows are left out and written beside ``out_file``."""
    scorer = backtest_scorer(settings, model)  # before the replay: a wrong name fails at once
    beside = {transactions_file: out_file}
    if labels_file is not None:
        beside[labels_file] = out_file.with_name(f"{out_file.stem}.labels{out_file.suffix}")
    transactions, labels, skipped = read_inputs(
        settings, transactions_file, labels_file, skip_invalid, beside
    )
    rows = replay_features(transactions, labels, settings.label_delay_days, progress=progress)
    thresholds = Thresholds(settings.review_threshold, settings.decline_threshold)
    scores, reasons = [], []
    for start in range(0, len(rows), SCORE_CHUNK):
        batch = scorer.score(rows[start : start + SCORE_CHUNK])
        scores.append(batch.probabilities)
        reasons += [";".join(str(reason["code"]) for reason in row) for row in batch.reasons]
    probabilities = np.concatenate(scores) if scores else np.array([])
    label = f"{scorer.name}/{scorer.version}"
    out = pd.DataFrame(
        {
            "transaction_id": transactions["transaction_id"],
            "score": probabilities,
            "decision": thresholds.decide(probabilities),
            "reasons": reasons,
            "model_version": label,
            "fallback": scorer.fallback,
        }
    )
    write_table(out, out_file)
    if labels is None:
        return ScoreReport(label, {}, skipped)
    frauds = set(labels.loc[labels["is_fraud"], "transaction_id"])
    truth = transactions["transaction_id"].isin(frauds).to_numpy().astype(int)
    days = transactions["event_time"].dt.floor("D").to_numpy()
    metrics = evaluate(probabilities, truth, days, transactions["card_id"].to_numpy(), k)
    return ScoreReport(label, metrics, skipped)
