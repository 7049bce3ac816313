"""The registry format of a fraud model: an MLflow pyfunc around ``scoring.model.TrainedModel``.

Anyone can ``mlflow.pyfunc.load_model(...).predict(frame)`` it (columns = the feature names,
output = fraud probability); scorers unwrap it and call the estimator directly.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel

from scoring.model import TrainedModel


class FraudModel(PythonModel):
    def __init__(self, model: TrainedModel) -> None:
        self.model = model

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> np.ndarray:
        rows = model_input[list(self.model.feature_names)].to_numpy(dtype=np.float64)
        return self.model.predict_proba(rows)
