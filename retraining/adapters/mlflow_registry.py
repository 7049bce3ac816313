"""``MlflowRegistry``: the ``retraining.registry.ModelRegistry`` on MLflow (runs, registered
versions, the champion alias).

MLflow is imported inside the functions: it takes seconds to import, and the modules that
import this one (the CLI, the services) mostly do not need it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import logging
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from retraining.model_card import model_card
from retraining.registry import (
    ModelRef,
    Promotion,
    Registered,
    gate_tags,
    gate_verdict,
    promotion_tags,
    reference_frame,
    rollback_champion,
    version_metrics,
    version_tags_of,
    version_thresholds,
)
from schemas.events import CHAMPION
from scoring.features import FEATURE_NAMES
from scoring.features.definitions import feature_columns
from scoring.model import TrainedModel
from scoring.serving import ModelScorer

logger = logging.getLogger(__name__)

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


DRIFT_ARTIFACTS = "drift"  # the folder of a training run that holds its drift reports


class MlflowRegistry:
    """The model registry on the MLflow tracking server (or sqlite store) at ``tracking_uri``."""

    def __init__(self, tracking_uri: str, experiment: str = DEFAULT_EXPERIMENT) -> None:
        self.tracking_uri, self.experiment = tracking_uri, experiment

    def client(self) -> Any:
        from mlflow.tracking import MlflowClient

        return MlflowClient(self.tracking_uri)

    def champion_version(self, model_name: str) -> str | None:
        from mlflow.exceptions import MlflowException

        try:
            return str(self.client().get_model_version_by_alias(model_name, CHAMPION).version)
        except MlflowException:
            return None

    def log_training(
        self, artifact_root: Path, model_name: str, params: dict[str, Any],
        summary: dict[str, float], results: list[Any], best: Any, reference_rows: np.ndarray,
        report: Any = None,
    ) -> Registered:  # fmt: skip
        """Log every candidate as a nested run (params, metrics; the model itself only for
        the best), register the best; it becomes champion only if there is none yet
        (replacing a champion is the promotion gate's job). ``report`` (the training
        ``Dataset``): its test window drawn in the report."""
        import mlflow

        mlflow.set_tracking_uri(self.tracking_uri)
        client = self.client()
        experiment_id = ensure_experiment(client, self.experiment, artifact_root)
        with mlflow.start_run(experiment_id=experiment_id, run_name="train") as parent:
            mlflow.log_params({**params, "best_candidate": best.kind})
            mlflow.log_metrics(summary)
            mlflow.log_dict({"features": list(FEATURE_NAMES)}, "features.json")
            model_uri = ""
            for result in results:
                with mlflow.start_run(
                    experiment_id=experiment_id, run_name=result.kind, nested=True
                ):
                    _log_candidate(result)
                    if result is best:  # ~6 s a model: only the one that may serve is kept
                        model_uri = _log_model(best, reference_rows)
            mlflow.log_metrics(
                {f"best_{name}": value for name, value in _candidate_metrics(best).items()}
            )
            with tempfile.TemporaryDirectory() as folder:
                path = Path(folder) / "reference.parquet"
                reference_frame(best, reference_rows).to_parquet(path, index=False)
                mlflow.log_artifact(str(path), "reference")
                if report is not None:
                    for png in _report_pngs(best, report, Path(folder)):
                        mlflow.log_artifact(str(png), "report")
            mlflow.log_text(model_card(model_name, params, summary, results, best), "model_card.md")
            run_id = parent.info.run_id

        with contextlib.redirect_stderr(io.StringIO()) as printed:  # MLflow prints this
            version = mlflow.register_model(model_uri, model_name)
        for line in filter(None, printed.getvalue().splitlines()):
            logger.info("mlflow: %s", line)
        version_id = str(version.version)
        for name, value in {**version_tags_of(best), "training_run": run_id}.items():
            client.set_model_version_tag(model_name, version_id, name, value)
        became_champion = self.champion_version(model_name) is None
        if became_champion:
            client.set_registered_model_alias(model_name, CHAMPION, version_id)
        logger.info(
            "registered %s version %s (champion: %s)", model_name, version_id, became_champion
        )
        return Registered(model_name, version_id, run_id, became_champion)

    def load_version(self, model_name: str, version: str) -> TrainedModel:
        import mlflow

        mlflow.set_tracking_uri(self.tracking_uri)
        loaded = mlflow.pyfunc.load_model(f"models:/{model_name}/{version}")
        return loaded.unwrap_python_model().model

    def load_scorer(self, model_name: str, alias: str = CHAMPION) -> ModelScorer:
        """The scorer for ``model_name@alias``, loaded by version number so that an alias
        moving between the lookup and the load cannot mix two versions."""
        version = str(self.client().get_model_version_by_alias(model_name, alias).version)
        return self.load_scorer_version(model_name, version)

    def load_scorer_version(self, model_name: str, version: str) -> ModelScorer:
        """The scorer for one version, with the metrics its training run logged."""
        client = self.client()
        run_id = client.get_model_version(model_name, version).run_id
        metrics = dict(client.get_run(run_id).data.metrics) if run_id else {}
        model = self.load_version(model_name, version)
        return ModelScorer(model, model_name, version, metrics=metrics)

    def load_model_ref(self, ref: ModelRef) -> ModelScorer:
        """The scorer ``ref`` names; ``ValueError`` saying what is not there when it cannot
        be loaded (a backtest scores the model it was asked for, never a stand-in)."""
        from mlflow.exceptions import MlflowException

        try:
            if ref.version is not None:
                return self.load_scorer_version(ref.name, ref.version)
            return self.load_scorer(ref.name, ref.alias or CHAMPION)
        except MlflowException as error:
            message = str(error.message).splitlines()[0] if error.message else type(error).__name__
            raise ValueError(
                f"model {ref} cannot be loaded from {self.tracking_uri}: {message}"
            ) from None

    def version_tags(self, model_name: str, version: str) -> dict[str, str]:
        return dict(self.client().get_model_version(model_name, version).tags)

    def promote(
        self, model_name: str, version: str, reason: str, by: str, *, rollback: bool = False
    ) -> Promotion:
        """Point the champion alias at ``version`` and record who did it and why on the
        version. A promotion remembers the champion it replaced (``previous_champion``),
        which is where ``rollback`` goes; a rollback keeps the target's own memory, so
        rollbacks walk back."""
        client = self.client()
        target = client.get_model_version(model_name, version)  # raises if there is none
        previous = self.champion_version(model_name)
        client.set_registered_model_alias(model_name, CHAMPION, version)
        for key, value in promotion_tags(by, reason, previous, version, rollback).items():
            client.set_model_version_tag(model_name, version, key, value)
        logger.info("champion of %s: %s -> %s (%s)", model_name, previous, version, reason)
        tags = dict(target.tags)
        return Promotion(
            model_name, version, previous, version_metrics(tags), version_thresholds(tags)
        )

    def rollback(self, model_name: str, by: str) -> Promotion:
        return rollback_champion(self, model_name, by)

    def record_gate(
        self, model_name: str, version: str, run_id: str, gate: Any, context: dict[str, str]
    ) -> None:
        """Keep the gate's verdict with the version (tags) and its run (metrics, gate.json)."""
        client = self.client()
        for key, value in gate_tags(gate).items():
            client.set_model_version_tag(model_name, version, key, value)
        for side in ("challenger", "champion"):
            for name, value in getattr(gate, side).items():
                if np.isfinite(value):
                    client.log_metric(run_id, f"gate_{side}_{name}", float(value))
        client.log_dict(run_id, gate_verdict(gate, context), "gate.json")

    def load_reference(self, model_name: str, version: str) -> pd.DataFrame:
        """The reference sample logged with a version's training run: feature columns and
        the model's ``fraud_probability`` for each row."""
        import mlflow

        run_id = self.version_tags(model_name, version).get("training_run")
        if not run_id:
            raise ValueError(f"{model_name} version {version} has no training run tag")
        mlflow.set_tracking_uri(self.tracking_uri)
        with tempfile.TemporaryDirectory() as folder:
            path = mlflow.artifacts.download_artifacts(
                run_id=run_id, artifact_path="reference/reference.parquet", dst_path=folder
            )
            return pd.read_parquet(path)

    def store_report(self, model_name: str, version: str, path: Path) -> str:
        """The HTML becomes an artifact of the version's training run (``drift/``): the MLflow
        UI shows it beside the model it judged, and it outlives the process that wrote it."""
        run_id = self.version_tags(model_name, version).get("training_run")
        if not run_id:
            raise ValueError(f"{model_name} version {version} has no training run tag")
        self.client().log_artifact(run_id, str(path), DRIFT_ARTIFACTS)
        return f"runs:/{run_id}/{DRIFT_ARTIFACTS}/{path.name}"

    def read_report(self, uri: str) -> bytes:
        import mlflow

        mlflow.set_tracking_uri(self.tracking_uri)
        with tempfile.TemporaryDirectory() as folder:
            path = mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=folder)
            return Path(path).read_bytes()


def _log_candidate(result: Any) -> None:
    import mlflow

    mlflow.log_params({"candidate": result.kind, **result.params})
    mlflow.log_metrics(_candidate_metrics(result))
    for trial in result.trials:
        mlflow.log_metric(
            "trial_validation_average_precision", trial.average_precision, step=trial.number
        )
    mlflow.log_dict({"trials": [dataclasses.asdict(t) for t in result.trials]}, "trials.json")


def _log_model(best: Any, reference_rows: np.ndarray) -> str:
    import mlflow
    from mlflow.models import infer_signature

    from retraining.adapters.mlflow_pyfunc import FraudModel

    sample = pd.DataFrame(reference_rows[:50], columns=list(FEATURE_NAMES))
    scores = best.model.predict_proba(feature_columns(sample.to_numpy(), best.model.feature_names))
    info = mlflow.pyfunc.log_model(
        name="model",
        python_model=FraudModel(best.model),
        signature=infer_signature(sample, scores),
        input_example=sample.head(3),
        pip_requirements=model_requirements(),
    )
    return str(info.model_uri)


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
