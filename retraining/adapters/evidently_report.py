"""The human drift report: Evidently's data-drift preset as one HTML file.

Evidently takes 1-2 s a report (and seconds to import), so the drift agent writes one only
when drift first appears and every few windows, never for every window.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from scoring.features.definitions import CATEGORICAL_FEATURES


def write_drift_html(
    reference: pd.DataFrame, current: pd.DataFrame, features: tuple[str, ...], path: Path
) -> Path:
    """Compare ``features`` (plus ``fraud_probability``) of two frames; write ``path``."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    columns = [*features, "fraud_probability"]
    definition = DataDefinition(
        numerical_columns=[c for c in columns if c not in CATEGORICAL_FEATURES],
        categorical_columns=[c for c in columns if c in CATEGORICAL_FEATURES],
    )
    snapshot = Report([DataDriftPreset()]).run(
        Dataset.from_pandas(current[columns], data_definition=definition),
        Dataset.from_pandas(reference[columns], data_definition=definition),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    snapshot.save_html(str(partial))
    partial.rename(path)
    return path


def frame_of(rows: np.ndarray, scores: np.ndarray, names: tuple[str, ...]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=list(names))
    frame["fraud_probability"] = scores
    return frame
