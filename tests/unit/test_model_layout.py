"""Models registered before a move of the code still load: MLflow pickles the model's
classes by module path. ``tests/fixtures/model_saved_before_layout_move`` was saved with
``mlflow.pyfunc.save_model`` by the layout of commit 1c3f95c (``retraining.pyfunc``,
``scoring.model``, ``scoring.calibration``, ``scoring.decision``), as the registry saves."""

from __future__ import annotations

import pickletools
from pathlib import Path

import mlflow.pyfunc
import numpy as np
import pandas as pd

from scoring.decision import Thresholds
from scoring.features import FEATURE_NAMES
from scoring.model import TrainedModel

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "model_saved_before_layout_move"
# what the model scored on the probe rows when it was saved
SAVED_SCORES = [0.4283889685163385, 0.5185543680526211, 0.06376849117254732]


def test_a_model_saved_by_the_previous_layout_loads_and_scores_as_it_did() -> None:
    assert "retraining.pyfunc" in pickled_modules(FIXTURE / "python_model.pkl")
    loaded = mlflow.pyfunc.load_model(str(FIXTURE))
    model = loaded.unwrap_python_model().model
    probe = np.load(FIXTURE.with_suffix(".probe.npy"))

    assert isinstance(model, TrainedModel)
    assert model.thresholds == Thresholds(review=0.3, decline=0.8)
    assert model.predict_proba(probe).tolist() == SAVED_SCORES
    frame = pd.DataFrame(probe, columns=list(FEATURE_NAMES))
    assert np.asarray(loaded.predict(frame)).tolist() == SAVED_SCORES


def pickled_modules(path: Path) -> set[str]:
    """The modules a pickle refers to (its global references)."""
    found: set[str] = set()
    strings: list[str] = []
    for opcode, argument, _ in pickletools.genops(path.read_bytes()):
        if opcode.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE"):
            strings.append(str(argument))
        elif opcode.name == "STACK_GLOBAL" and len(strings) >= 2:
            found.add(strings[-2])
        elif opcode.name == "GLOBAL":
            found.add(str(argument).split(" ")[0])
    return found
