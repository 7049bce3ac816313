"""One contract for every ``retraining.registry.ModelRegistry``: the in-memory one
(``tests/unit/test_registry.py``) and MLflow (``tests/integration/test_mlflow.py``)."""

from __future__ import annotations

from pathlib import Path

import lightgbm as lgb
import numpy as np
import pytest

from retraining.gate import GateDecision
from retraining.registry import ModelRef, ModelRegistry
from retraining.training import CandidateResult
from scoring.decision import Thresholds
from scoring.features import FEATURE_NAMES
from scoring.model import TrainedModel

ROWS = np.random.default_rng(3).normal(size=(300, len(FEATURE_NAMES)))
LABELS = (ROWS[:, 0] > 1.0).astype(int)


def candidate(seed: int) -> CandidateResult:
    estimator = lgb.LGBMClassifier(
        n_estimators=5, num_leaves=4, random_state=seed, verbose=-1, n_jobs=1
    ).fit(ROWS, LABELS)
    model = TrainedModel(
        "lightgbm", estimator, tuple(FEATURE_NAMES), ROWS.mean(0), ROWS.std(0),
        thresholds=Thresholds(review=0.2 + seed / 100, decline=0.9),
    )  # fmt: skip
    metrics = {"average_precision": 0.5 + seed / 100, "auc_roc": 0.8}
    return CandidateResult("lightgbm", model, metrics, {"seed": seed}, 0.1)


def check_registry(registry: ModelRegistry, artifacts: Path, name: str) -> None:
    first, second = candidate(1), candidate(2)

    assert registry.champion_version(name) is None
    one = registry.log_training(artifacts, name, {"run": 1}, {"rows": 300.0}, [first], first, ROWS)
    two = registry.log_training(
        artifacts, name, {"run": 2}, {"rows": 300.0}, [second], second, ROWS
    )
    assert (one.version, one.champion, two.version, two.champion) == ("1", True, "2", False)
    assert registry.champion_version(name) == "1"  # a second version waits for the gate

    served = registry.load_scorer(name)
    assert (served.name, served.version) == (name, "1")
    loaded = registry.load_version(name, "2")
    assert loaded.predict_proba(ROWS[:5]).tolist() == second.model.predict_proba(ROWS[:5]).tolist()
    assert registry.load_model_ref(ModelRef(name, version="2")).version == "2"
    assert registry.version_tags(name, "2")["average_precision"] == "0.520000"

    reference = registry.load_reference(name, "1")
    assert list(reference.columns) == [*FEATURE_NAMES, "fraud_probability"]
    assert len(reference) == len(ROWS)

    html = artifacts / "drift-report.html"
    html.write_text("<html>drift of version 1</html>")
    uri = registry.store_report(name, "1", html)
    assert uri.endswith("/drift/drift-report.html") and one.run_id in uri
    html.unlink()  # the registry keeps its own copy: the writer's disk may go
    assert registry.read_report(uri) == b"<html>drift of version 1</html>"

    gate = GateDecision(True, "better", {"average_precision": 0.52}, {"average_precision": 0.51},
                        (0.001, 0.02))  # fmt: skip
    registry.record_gate(name, "2", two.run_id, gate, {"request_id": "r1"})
    assert registry.version_tags(name, "2")["gate"] == "passed"

    promotion = registry.promote(name, "2", "the gate passed", "a test")
    assert (promotion.version, promotion.previous) == ("2", "1")
    assert promotion.metrics == {"average_precision": 0.52, "auc_roc": 0.8}
    assert registry.champion_version(name) == "2"
    assert registry.version_tags(name, "2")["previous_champion"] == "1"

    back = registry.rollback(name, "a person")
    assert (back.version, back.previous, registry.champion_version(name)) == ("1", "2", "1")
    with pytest.raises(ValueError, match="replaced no earlier champion"):
        registry.rollback(name, "a person")
