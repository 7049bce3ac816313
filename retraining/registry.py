"""The MLflow side of the model lifecycle: runs, registered versions, the champion alias.

MLflow is imported inside the functions: it takes seconds to import, and the modules that
import this one (the CLI, the services) mostly do not need it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import logging
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from scoring.features import FEATURE_NAMES
from scoring.features.definitions import feature_columns
from scoring.model import TrainedModel
from scoring.serving import ModelScorer

logger = logging.getLogger(__name__)

CHAMPION = "champion"
DEFAULT_EXPERIMENT = "fraudstream"
REFERENCE_ROWS = 5_000
# what loading a logged model imports (the pickled estimators and our model code); named,
# not inferred: MLflow's inference imports the model in a subprocess, ~10 s a retrain here,
# and it left LightGBM out
MODEL_DISTRIBUTIONS = (
    "mlflow", "cloudpickle", "numpy", "pandas", "scikit-learn", "scipy", "lightgbm", "fraudstream",
)  # fmt: skip


def model_requirements() -> list[str]:
    """``MODEL_DISTRIBUTIONS`` pinned to the versions this process runs.

    >>> [r.split("==")[0] for r in model_requirements()] == list(MODEL_DISTRIBUTIONS)
    True
    """
    from importlib.metadata import version

    return [f"{name}=={version(name)}" for name in MODEL_DISTRIBUTIONS]


@dataclasses.dataclass(frozen=True)
class Registered:
    name: str
    version: str
    run_id: str
    champion: bool  # whether this version got the champion alias


def ensure_experiment(client: Any, name: str, artifact_root: Path) -> str:
    """The id of experiment ``name``, created with its artifacts under ``artifact_root``.

    The location is given explicitly: with a sqlite tracking store MLflow would otherwise put
    artifacts in ``./mlruns`` below whatever directory the process happens to run in. A
    tracking *server* (``http(s)://``) keeps its own: it serves the artifacts to every process,
    where a local path would exist only on the machine that trained.
    """
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return str(experiment.experiment_id)
    if str(client.tracking_uri).startswith(("http://", "https://")):
        return str(client.create_experiment(name))
    artifact_root.mkdir(parents=True, exist_ok=True)
    return str(client.create_experiment(name, artifact_location=(artifact_root / name).as_uri()))


def champion_uri(model_name: str) -> str:
    """The registry URI scorers load.

    >>> champion_uri("fraud-detector")
    'models:/fraud-detector@champion'
    """
    return f"models:/{model_name}@{CHAMPION}"


def champion_version(client: Any, model_name: str) -> str | None:
    from mlflow.exceptions import MlflowException

    try:
        return str(client.get_model_version_by_alias(model_name, CHAMPION).version)
    except MlflowException:
        return None


def log_training(
    tracking_uri: str,
    artifact_root: Path,
    model_name: str,
    params: dict[str, Any],
    summary: dict[str, float],
    results: list[Any],  # retraining.training.CandidateResult
    best: Any,
    reference_rows: np.ndarray,
    experiment: str = DEFAULT_EXPERIMENT,
    report: Any = None,  # retraining.training.Dataset: its test window drawn in the report
) -> Registered:
    """Log every candidate as a nested run (params, metrics; the model itself only for the
    best), register the best; it becomes champion only if there is none yet (replacing a
    champion is the promotion gate's job)."""
    import mlflow
    from mlflow.models import infer_signature
    from mlflow.tracking import MlflowClient

    from retraining.pyfunc import FraudModel

    mlflow.set_tracking_uri(tracking_uri)
    client = MlflowClient(tracking_uri)
    experiment_id = ensure_experiment(client, experiment, artifact_root)
    sample = pd.DataFrame(reference_rows[:50], columns=list(FEATURE_NAMES))
    with mlflow.start_run(experiment_id=experiment_id, run_name="train") as parent:
        mlflow.log_params({**params, "best_candidate": best.kind})
        mlflow.log_metrics(summary)
        mlflow.log_dict({"features": list(FEATURE_NAMES)}, "features.json")
        model_uris = {}
        for result in results:
            with mlflow.start_run(experiment_id=experiment_id, run_name=result.kind, nested=True):
                mlflow.log_params({"candidate": result.kind, **result.params})
                mlflow.log_metrics(_candidate_metrics(result))
                for trial in result.trials:
                    mlflow.log_metric(
                        "trial_validation_average_precision", trial.average_precision,
                        step=trial.number,
                    )  # fmt: skip
                trials = [dataclasses.asdict(trial) for trial in result.trials]
                mlflow.log_dict({"trials": trials}, "trials.json")
                if result is not best:  # ~6 s a model: only the one that may serve is kept
                    continue
                signature = infer_signature(
                    sample,
                    result.model.predict_proba(
                        feature_columns(sample.to_numpy(), result.model.feature_names)
                    ),
                )
                info = mlflow.pyfunc.log_model(
                    name="model",
                    python_model=FraudModel(result.model),
                    signature=signature,
                    input_example=sample.head(3),
                    pip_requirements=model_requirements(),
                )
                model_uris[result.kind] = info.model_uri
        mlflow.log_metrics(
            {f"best_{name}": value for name, value in _candidate_metrics(best).items()}
        )
        reference = pd.DataFrame(reference_rows, columns=list(FEATURE_NAMES))
        reference["fraud_probability"] = best.model.predict_proba(
            feature_columns(reference_rows, best.model.feature_names)
        )
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "reference.parquet"
            reference.to_parquet(path, index=False)
            mlflow.log_artifact(str(path), "reference")
            if report is not None:
                for png in _report_pngs(best, report, Path(folder)):
                    mlflow.log_artifact(str(png), "report")
        mlflow.log_text(model_card(model_name, params, summary, results, best), "model_card.md")
        run_id = parent.info.run_id

    with contextlib.redirect_stderr(io.StringIO()) as printed:  # MLflow prints, not logs, this
        version = mlflow.register_model(model_uris[best.kind], model_name)
    for line in filter(None, printed.getvalue().splitlines()):
        logger.info("mlflow: %s", line)
    version_id = str(version.version)
    client.set_model_version_tag(model_name, version_id, "candidate", best.kind)
    client.set_model_version_tag(model_name, version_id, "training_run", run_id)
    for name, value in best.metrics.items():
        client.set_model_version_tag(model_name, version_id, name, f"{value:.6f}")
    if best.budget is not None:
        for name, value in best.budget.as_metrics().items():
            client.set_model_version_tag(model_name, version_id, name, f"{value:.6f}")
    became_champion = champion_version(client, model_name) is None
    if became_champion:
        client.set_registered_model_alias(model_name, CHAMPION, version_id)
    logger.info("registered %s version %s (champion: %s)", model_name, version_id, became_champion)
    return Registered(model_name, version_id, run_id, became_champion)


def _candidate_metrics(result: Any) -> dict[str, float]:
    """A candidate's figures for MLflow: the test's as they are, the validation's mean and
    each fold's with a prefix, the thresholds' expected cost; finite values only."""
    metrics = {**result.metrics, "fit_seconds": result.fit_seconds}
    metrics.update({f"validation_{k}": v for k, v in result.validation.items()})
    for fold, values in result.fold_metrics.items():
        metrics.update({f"{fold}_{k}": v for k, v in values.items()})
    if result.budget is not None:
        metrics.update(result.budget.as_metrics())
    return {k: float(v) for k, v in metrics.items() if np.isfinite(v)}


def _report_pngs(best: Any, dataset: Any, folder: Path) -> list[Path]:
    from retraining import report

    test = dataset.test_split()
    scores = best.model.predict_proba(feature_columns(test.rows, best.model.feature_names))
    pngs = [
        report.precision_recall_png(scores, test.labels, folder / "precision_recall.png"),
        report.card_precision_png(
            test.days, test.cards, scores, test.labels, dataset.compromised_since,
            folder / "card_precision_at_k.png",
        ),
        report.importance_png(best.model, folder / "feature_importance.png"),
    ]  # fmt: skip
    if best.validation_scores is not None:
        pngs.append(
            report.calibration_png(
                best.validation_scores, best.validation_labels, folder / "calibration.png"
            )
        )
    return pngs


@dataclasses.dataclass(frozen=True)
class ModelRef:
    """A registered model by alias or by version, as a user names it."""

    name: str
    alias: str | None = None
    version: str | None = None

    def __str__(self) -> str:
        return f"{self.name}/{self.version}" if self.version else f"{self.name}@{self.alias}"


def parse_model_ref(text: str) -> ModelRef:
    """``name@alias``, ``name/VERSION`` or the ``models:/...`` URI MLflow prints for either.

    >>> [str(parse_model_ref(t)) for t in ("fd@champion", "fd/3", "models:/fd/3",
    ...     "models:/fd@challenger", "fd")]
    ['fd@champion', 'fd/3', 'fd/3', 'fd@challenger', 'fd@champion']
    >>> parse_model_ref("fd/latest")
    Traceback (most recent call last):
    ...
    ValueError: model 'fd/latest': use name@alias, name/VERSION (a number) or models:/...
    """
    body = text.strip().removeprefix("models:/")
    name, at, alias = body.partition("@")
    if at:
        if name and alias and "/" not in name:
            return ModelRef(name, alias=alias)
    else:
        name, slash, version = body.partition("/")
        if not slash and name:
            return ModelRef(name, alias=CHAMPION)
        if name and version.isdigit():
            return ModelRef(name, version=version)
    raise ValueError(f"model {text!r}: use name@alias, name/VERSION (a number) or models:/...")


def load_model_ref(tracking_uri: str, ref: ModelRef) -> ModelScorer:
    """The scorer ``ref`` names; ``ValueError`` saying what is not there when it cannot be
    loaded (a backtest scores the model it was asked for, never a stand-in)."""
    from mlflow.exceptions import MlflowException

    try:
        if ref.version is not None:
            return load_scorer_version(tracking_uri, ref.name, ref.version)
        return load_scorer(tracking_uri, ref.name, ref.alias or CHAMPION)
    except MlflowException as error:
        first_line = str(error.message).splitlines()[0] if error.message else type(error).__name__
        raise ValueError(
            f"model {ref} cannot be loaded from {tracking_uri}: {first_line}"
        ) from None


def load_version(tracking_uri: str, model_name: str, version: str) -> TrainedModel:
    import mlflow

    mlflow.set_tracking_uri(tracking_uri)
    loaded = mlflow.pyfunc.load_model(f"models:/{model_name}/{version}")
    return loaded.unwrap_python_model().model


def load_scorer(tracking_uri: str, model_name: str, alias: str = CHAMPION) -> ModelScorer:
    """The scorer for ``model_name@alias``, loaded by version number so that an alias moving
    between the lookup and the load cannot mix two versions."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri)
    version = str(client.get_model_version_by_alias(model_name, alias).version)
    return load_scorer_version(tracking_uri, model_name, version)


def load_scorer_version(tracking_uri: str, model_name: str, version: str) -> ModelScorer:
    """The scorer for one version, with the metrics its training run logged."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri)
    run_id = client.get_model_version(model_name, version).run_id
    metrics = dict(client.get_run(run_id).data.metrics) if run_id else {}
    model = load_version(tracking_uri, model_name, version)
    return ModelScorer(model, model_name, version, metrics=metrics)


def model_card(
    model_name: str,
    params: dict[str, Any],
    summary: dict[str, float],
    results: list[Any],
    best: Any,
) -> str:
    """The version's card in Markdown: data windows, protocol, metrics with their folds,
    thresholds and known limits."""

    def row(name: str, metrics: dict[str, float]) -> str:
        return f"| {name} | " + " | ".join(f"{v:.4f}" for v in metrics.values()) + " |"

    candidates = "\n".join(
        f"| {r.kind} | {len(r.trials)} | "
        + " | ".join(f"{v:.4f}" for v in r.validation.values())
        + " | "
        + " | ".join(f"{v:.4f}" for v in r.metrics.values())
        + f" | {r.fit_seconds:.1f} |"
        for r in results
    )
    names = list(best.metrics)
    columns = " | ".join([*(f"validation {n}" for n in names), *(f"test {n}" for n in names)])
    folds = "\n".join(row(fold, metrics) for fold, metrics in best.fold_metrics.items())
    window = "\n".join(f"- {key}: {value}" for key, value in params.items())
    budget = best.budget
    thresholds = (
        f"""- review at or above **{budget.thresholds.review:.4f}**: on validation
  {budget.reviews_per_day:.1f} cards a day (budget {params.get("review_budget_per_day")}),
  {budget.review_precision:.1%} of them with a fraud that day;
- decline at or above **{budget.thresholds.decline:.4f}**: {budget.declines_per_day:.1f}
  transactions a day, precision {budget.decline_precision:.1%} (target
  {params.get("decline_precision_target")}; 1.0 means no automatic declines: no threshold
  met the target on validation)."""
        if budget is not None
        else "- none: the configured thresholds decide"
    )
    calibration = (
        f"Platt scaling fitted on the pooled validation folds (slope "
        f"{best.model.calibration.slope:.3f}, intercept {best.model.calibration.intercept:.3f})"
        if best.model.calibration is not None
        else "none (raw model scores)"
    )
    return f"""# {model_name}: model card

Chosen candidate: **{best.kind}**, the highest mean average precision over the validation
folds. The test window was scored once, after the choice.

## Data and protocol
{window}
- rows: {json.dumps(summary)}

Validation folds end before the final training window does and leave the label delay
between their training and validation days; each fold's training rows are fraud if the
label was known when its validation began. Training rows of the final model are fraud if
the label was known at the start of the test window; test rows are judged by every label.
Card precision@k leaves out, each day, cards with a fraud label known before that day and
cards already caught on an earlier day. Genuine training rows are down-sampled
(`train_genuine_per_fraud`); validation and test rows never are.

## Candidates (validation: mean of folds; test: once)

| candidate | trials | {columns} | fit s |
|---{"|---" * (2 * len(names) + 2)}|
{candidates}

## {best.kind} per validation fold (calibrated)

| fold | {" | ".join(names)} |
|---{"|---" * len(names)}|
{folds}

## Probabilities and decisions
Calibration: {calibration}.
Thresholds (from the review budget, on the calibrated validation scores; they travel with
this version):
{thresholds}

## Features
{", ".join(best.model.feature_names)}

## Reason codes
LightGBM: exact per-feature contributions (path attribution, in raw log-odds, before
calibration); logistic regression: coefficient x standardised value; random forest:
importance x standardised distance from the training mean (a heuristic).

## Known limits
Simulated or supplied history only; calendar features are in UTC; a label without
`labelled_at` is taken as known `label_delay_days` after its transaction; the hyper-parameter
search is bounded by time, so two runs on machines of different speed may choose
differently; validation labels are those known at training time, so frauds reported later
count as genuine there.
"""


@dataclasses.dataclass(frozen=True)
class Promotion:
    name: str
    version: str
    previous: str | None
    metrics: dict[str, float]  # the version's test-window metrics, from its tags
    thresholds: dict[str, float] | None = None  # review and decline, from its tags


def promote(
    tracking_uri: str,
    model_name: str,
    version: str,
    reason: str,
    by: str,
    *,
    rollback: bool = False,
) -> Promotion:
    """Point the champion alias at ``version`` and record who did it and why on the version.

    A promotion remembers the champion it replaced (``previous_champion``), which is where
    ``rollback`` goes; a rollback keeps the target's own memory, so rollbacks walk back."""
    from datetime import UTC, datetime

    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri)
    target = client.get_model_version(model_name, version)  # raises if there is no such version
    previous = champion_version(client, model_name)
    client.set_registered_model_alias(model_name, CHAMPION, version)
    tags = {
        "promoted_at": datetime.now(UTC).isoformat(),
        "promoted_by": by,
        "promotion_reason": reason,
    }
    if previous is not None and previous != version and not rollback:
        tags["previous_champion"] = previous
    for key, value in tags.items():
        client.set_model_version_tag(model_name, version, key, value)
    logger.info("champion of %s: %s -> %s (%s)", model_name, previous, version, reason)
    tags_of_target = dict(target.tags)
    return Promotion(
        model_name, version, previous, version_metrics(tags_of_target),
        version_thresholds(tags_of_target),
    )  # fmt: skip


def rollback(tracking_uri: str, model_name: str, by: str) -> Promotion:
    """Give the champion alias back to the version the current champion replaced."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri)
    current = champion_version(client, model_name)
    if current is None:
        raise ValueError(f"{model_name} has no champion to roll back")
    earlier = client.get_model_version(model_name, current).tags.get("previous_champion")
    if not earlier:
        raise ValueError(f"{model_name} version {current} replaced no earlier champion")
    return promote(
        tracking_uri, model_name, earlier, f"rollback from version {current}", by, rollback=True
    )


def record_gate(
    tracking_uri: str,
    model_name: str,
    version: str,
    run_id: str,
    gate: Any,
    context: dict[str, str],
) -> None:
    """Keep the gate's verdict with the version (tags) and its run (metrics, gate.json)."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri)
    client.set_model_version_tag(
        model_name, version, "gate", "passed" if gate.promote else "failed"
    )
    client.set_model_version_tag(model_name, version, "gate_reason", gate.reason)
    low, high = gate.interval
    client.set_model_version_tag(model_name, version, "gate_interval", f"[{low:.6f}, {high:.6f}]")
    for side in ("challenger", "champion"):
        for name, value in getattr(gate, side).items():
            if np.isfinite(value):
                client.log_metric(run_id, f"gate_{side}_{name}", float(value))
    verdict = {
        "promote": gate.promote,
        "reason": gate.reason,
        "challenger": gate.challenger,
        "champion": gate.champion,
        "gain_interval_95": list(gate.interval),
        **context,
    }
    client.log_dict(run_id, verdict, "gate.json")


def version_metrics(tags: dict[str, str]) -> dict[str, float]:
    """The metrics ``log_training`` kept as version tags.

    >>> version_metrics({"average_precision": "0.5", "candidate": "lightgbm"})
    {'average_precision': 0.5}
    """
    found = {}
    for key, value in tags.items():
        try:
            found[key] = float(value)
        except ValueError:
            continue
    return {
        k: v
        for k, v in found.items()
        if k in ("auc_roc", "average_precision") or k.startswith("card_precision_at_")
    }


def version_thresholds(tags: dict[str, str]) -> dict[str, float] | None:
    """The thresholds ``log_training`` kept as version tags (None: the version has none).

    >>> version_thresholds({"threshold_review": "0.2", "threshold_decline": "0.9"})
    {'review': 0.2, 'decline': 0.9}
    """
    try:
        return {
            "review": float(tags["threshold_review"]),
            "decline": float(tags["threshold_decline"]),
        }
    except (KeyError, ValueError):
        return None


def load_reference(tracking_uri: str, model_name: str, version: str) -> pd.DataFrame:
    """The reference sample logged with a version's training run: feature columns and the
    model's ``fraud_probability`` for each row."""
    import mlflow
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri)
    run_id = client.get_model_version(model_name, version).tags.get("training_run")
    if not run_id:
        raise ValueError(f"{model_name} version {version} has no training run tag")
    mlflow.set_tracking_uri(tracking_uri)
    with tempfile.TemporaryDirectory() as folder:
        path = mlflow.artifacts.download_artifacts(
            run_id=run_id, artifact_path="reference/reference.parquet", dst_path=folder
        )
        return pd.read_parquet(path)
