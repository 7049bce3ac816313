"""The MLflow side of the model lifecycle: experiments, registered versions, the champion alias."""

from __future__ import annotations

from pathlib import Path
from typing import Any

CHAMPION = "champion"


def ensure_experiment(client: Any, name: str, artifact_root: Path) -> str:
    """The id of experiment ``name``, created with its artifacts under ``artifact_root``.

    The location is given explicitly: with a sqlite tracking store MLflow would otherwise put
    artifacts in ``./mlruns`` below whatever directory the process happens to run in.
    """
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return str(experiment.experiment_id)
    artifact_root.mkdir(parents=True, exist_ok=True)
    return str(client.create_experiment(name, artifact_location=(artifact_root / name).as_uri()))


def champion_uri(model_name: str) -> str:
    """The registry URI scorers load.

    >>> champion_uri("fraud-detector")
    'models:/fraud-detector@champion'
    """
    return f"models:/{model_name}@{CHAMPION}"
