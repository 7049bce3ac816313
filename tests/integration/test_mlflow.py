"""MLflow registers a model, gives it the champion alias and loads it back by that alias."""

from __future__ import annotations

import uuid

import mlflow
import numpy as np
from mlflow.tracking import MlflowClient
from sklearn.linear_model import LogisticRegression

from retraining.adapters.mlflow_registry import ensure_experiment
from retraining.registry import champion_uri
from schemas.events import CHAMPION
from tests.conftest import Endpoints


def test_register_alias_champion_and_load_by_alias(services: Endpoints) -> None:
    rng = np.random.default_rng(7)
    features = rng.normal(size=(400, 3))
    labels = (features[:, 0] + 0.5 * features[:, 1] > 0).astype(int)
    model = LogisticRegression().fit(features, labels)
    name = f"it-model-{uuid.uuid4().hex[:8]}"

    mlflow.set_tracking_uri(services.mlflow_tracking_uri)
    client = MlflowClient(services.mlflow_tracking_uri)
    experiment_id = ensure_experiment(client, "fraudstream-it", services.mlflow_artifact_dir)
    with mlflow.start_run(experiment_id=experiment_id):
        info = mlflow.sklearn.log_model(model, name="model", registered_model_name=name)
    version = client.get_registered_model(name).latest_versions[0].version
    client.set_registered_model_alias(name, CHAMPION, version)

    loaded = mlflow.pyfunc.load_model(champion_uri(name))

    assert client.get_model_version_by_alias(name, CHAMPION).version == version
    assert loaded.metadata.model_uuid == info.model_uuid
    np.testing.assert_array_equal(loaded.predict(features), model.predict(features))


def test_the_mlflow_registry_keeps_the_registry_contract(services: Endpoints) -> None:
    from retraining.adapters.mlflow_registry import MlflowRegistry
    from tests.registry_contract import check_registry

    registry = MlflowRegistry(services.mlflow_tracking_uri, experiment="fraudstream-contract")
    check_registry(registry, services.mlflow_artifact_dir, f"contract-{uuid.uuid4().hex[:8]}")
