from __future__ import annotations

import numpy as np
import pytest

from retraining.candidates import make_estimator
from scoring.model import TrainedModel


@pytest.mark.parametrize("rows", [1, 7, 300])
def test_the_forest_scores_exactly_as_sklearn_does(rows: int) -> None:
    rng = np.random.default_rng(11)
    features = rng.normal(size=(3_000, 6))
    labels = features[:, 0] + features[:, 3] * rng.normal(size=3_000) > 1.8
    forest = make_estimator("random_forest", seed=3, negatives_per_positive=10.0)
    forest.fit(features, labels)
    model = TrainedModel.fit_summary(
        "random_forest", forest, tuple(f"f{i}" for i in range(6)), features
    )
    asked = rng.normal(size=(rows, 6)) * 2

    served = model.predict_proba(asked)

    assert served.dtype == np.float64 and served.shape == (rows,)
    assert np.array_equal(served, forest.predict_proba(asked)[:, 1])
    assert 0.0 < served.max() <= 1.0


def test_the_forest_contributions_use_its_importances_read_once() -> None:
    rng = np.random.default_rng(12)
    features = rng.normal(size=(2_000, 4))
    labels = features[:, 1] > 1.2
    forest = make_estimator("random_forest", seed=3, negatives_per_positive=8.0)
    forest.fit(features, labels)
    model = TrainedModel.fit_summary("random_forest", forest, ("a", "b", "c", "d"), features)
    rows = rng.normal(size=(5, 4))

    first, again = model.contributions(rows), model.contributions(rows)

    expected = np.abs((rows - model.feature_mean) / model.feature_std) * forest.feature_importances_
    assert np.array_equal(first, expected) and np.array_equal(again, expected)
    assert model.importances() is model.importances()
    assert first[:, 1].mean() > first[:, [0, 2, 3]].mean()  # the feature the labels follow
