"""Path attribution: the leaves' sum is LightGBM's own score, the contributions add up to it."""

from __future__ import annotations

import lightgbm
import numpy as np

from scoring.model import TrainedModel
from scoring.tree_paths import DENSE_ROWS


def fitted_model() -> tuple[TrainedModel, np.ndarray]:
    rng = np.random.default_rng(7)
    rows = rng.normal(size=(2_000, 5))
    labels = rows[:, 0] + 2 * rows[:, 3] * (rows[:, 1] > 0) + rng.normal(size=2_000) > 1.5
    estimator = lightgbm.LGBMClassifier(n_estimators=40, num_leaves=15, n_jobs=1, verbose=-1)
    estimator.fit(rows, labels.astype(int))
    names = tuple(f"f{i}" for i in range(5))
    return TrainedModel.fit_summary("lightgbm", estimator, names, rows), rows[:300]


def test_one_pass_gives_lightgbms_probabilities_and_additive_contributions() -> None:
    model, rows = fitted_model()
    probabilities, contributions = model.predict_explained(rows)
    expected = model.estimator.booster_.predict(rows, num_threads=1)
    np.testing.assert_allclose(probabilities, expected, rtol=1e-12, atol=1e-15)
    raw = model.estimator.booster_.predict(rows, raw_score=True, num_threads=1)
    roots = model.paths().explain(np.zeros((1, 5)))[0] - model.contributions(np.zeros((1, 5))).sum()
    # every row's contributions sum to its raw score less the trees' root values
    np.testing.assert_allclose(contributions.sum(axis=1) + roots, raw, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(contributions, model.contributions(rows))


def test_feature_without_effect_gets_no_contribution() -> None:
    model, rows = fitted_model()
    _, contributions = model.predict_explained(rows)
    assert np.abs(contributions[:, 0]).mean() > 0.1  # f0 drives the label
    assert np.abs(contributions[:, 2]).mean() < np.abs(contributions[:, 0]).mean() / 4  # noise


def test_a_few_rows_get_the_same_answer_as_a_large_batch() -> None:
    model, rows = fitted_model()
    raw_all, contributions_all = model.paths().explain(rows)
    few = DENSE_ROWS  # gathered, where the batch is multiplied
    raw_few, contributions_few = model.paths().explain(rows[:few])
    np.testing.assert_allclose(raw_few, raw_all[:few], rtol=1e-12)
    np.testing.assert_allclose(contributions_few, contributions_all[:few], rtol=1e-12, atol=1e-15)
