"""Path attribution: the leaves' sum is LightGBM's own score, the contributions add up to it."""

from __future__ import annotations

import types

import lightgbm
import numpy as np
import pytest

from scoring import tree_paths
from scoring.model import TrainedModel


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


def test_any_number_of_rows_gets_the_same_bits_as_a_large_batch() -> None:
    model, rows = fitted_model()
    raw_all, contributions_all = model.paths().explain(rows)
    for few in (1, 2, 5, 17):  # a REST call's group against the stream's batch
        raw_few, contributions_few = model.paths().explain(rows[:few])
        np.testing.assert_array_equal(raw_few, raw_all[:few])
        np.testing.assert_array_equal(contributions_few, contributions_all[:few])
    raw_none, contributions_none = model.paths().explain(rows[:0])
    assert raw_none.shape == (0,) and contributions_none.shape == (0, 5)


def test_scipys_public_product_sums_the_same_bits(monkeypatch: pytest.MonkeyPatch) -> None:
    model, rows = fitted_model()
    direct = model.paths().explain(rows)
    monkeypatch.setattr(tree_paths, "csr_matvecs", None)
    public = model.paths().explain(rows)
    np.testing.assert_array_equal(public[0], direct[0])
    np.testing.assert_array_equal(public[1], direct[1])


def test_leaf_indices_from_the_c_api_are_lightgbms_own() -> None:
    model, rows = fitted_model()
    rows = rows.copy()
    rows[::7, 1] = np.nan  # missing values take each split's default direction
    booster = model.estimator.booster_
    leaves = model.paths().leaves
    expected = booster.predict(rows, pred_leaf=True, num_threads=1)
    np.testing.assert_array_equal(leaves(rows), expected)  # a batch
    for i in range(20):  # one row at a time: the single-row predictor
        np.testing.assert_array_equal(leaves(rows[i : i + 1]), expected[i : i + 1])
    np.testing.assert_array_equal(leaves(rows[:0]), np.zeros((0, booster.num_trees())))


def test_leaf_indices_stop_at_the_best_iteration_as_lightgbm_does() -> None:
    rng = np.random.default_rng(3)
    rows = rng.normal(size=(1_000, 4))
    labels = (rows[:, 0] + rng.normal(size=1_000) > 0).astype(int)
    data = lightgbm.Dataset(rows[:700], labels[:700])
    booster = lightgbm.train(
        {"objective": "binary", "num_leaves": 7, "num_threads": 1, "verbose": -1},
        data,
        num_boost_round=200,
        valid_sets=[lightgbm.Dataset(rows[700:], labels[700:], reference=data)],
        callbacks=[lightgbm.early_stopping(5, verbose=False)],
        keep_training_booster=True,  # keeps the trees after the best iteration
    )
    estimator = types.SimpleNamespace(booster_=booster)
    assert 0 < booster.best_iteration < booster.num_trees()  # the test needs a cut-off
    model = TrainedModel.fit_summary("lightgbm", estimator, ("a", "b", "c", "d"), rows)
    expected = booster.predict(rows[:50], pred_leaf=True, num_threads=1)
    assert expected.shape == (50, booster.best_iteration)
    np.testing.assert_array_equal(model.paths().leaves(rows[:50]), expected)
    np.testing.assert_array_equal(model.paths().leaves(rows[:1]), expected[:1])
    probabilities, _ = model.predict_explained(rows[:50])
    np.testing.assert_allclose(probabilities, booster.predict(rows[:50], num_threads=1), rtol=1e-12)


def test_rows_of_the_wrong_width_are_refused() -> None:
    model, rows = fitted_model()
    with pytest.raises(ValueError, match="rows of 5 features expected"):
        model.paths().leaves(rows[:3, :4])
