"""Drift statistics on seeded samples: no false alarm on the same distribution, a flag on a
material shift, and the severity of a window from its share of drifted features."""

from __future__ import annotations

import numpy as np
import pytest

from retraining.drift import (
    DriftThresholds,
    categorical_drift,
    drift_share,
    feature_drift,
    numeric_drift,
    severity,
)
from schemas.events import Severity

RULES = DriftThresholds()


def normal(seed: int, mean: float = 0.0, size: int = 5_000) -> np.ndarray:
    return np.random.default_rng(seed).normal(mean, 1.0, size)


def test_the_same_distribution_is_not_drift() -> None:
    result = numeric_drift("amount", normal(1), normal(2), RULES)
    assert (result.test, result.drifted) == ("ks", False)
    assert result.p_value > RULES.alpha and result.psi < 0.02


def test_a_half_sigma_shift_is_drift() -> None:
    result = numeric_drift("amount", normal(1), normal(2, mean=0.5), RULES)
    assert result.drifted and result.p_value < 1e-10 and result.psi > RULES.min_psi
    assert result.statistic == pytest.approx(0.197, abs=0.03)  # KS distance of N(0,1), N(.5,1)


def test_a_significant_but_immaterial_shift_is_not_drift() -> None:
    big = 200_000  # so large that a tiny shift is significant
    result = numeric_drift("amount", normal(1, size=big), normal(2, 0.03, size=big), RULES)
    assert result.p_value < RULES.alpha and result.psi < RULES.min_psi and not result.drifted


def test_categorical_mix_change() -> None:
    rng = np.random.default_rng(4)
    reference = rng.choice([1, 2, 3], size=4_000, p=[0.6, 0.3, 0.1])
    same = rng.choice([1, 2, 3], size=4_000, p=[0.6, 0.3, 0.1])
    moved = rng.choice([1, 2, 3, 4], size=4_000, p=[0.3, 0.3, 0.2, 0.2])  # and a new category

    assert not categorical_drift("channel_code", reference, same, RULES).drifted
    changed = categorical_drift("channel_code", reference, moved, RULES)
    assert changed.test == "chi2" and changed.drifted and changed.psi > 0.5


def test_a_constant_feature_never_drifts_and_empty_windows_are_refused() -> None:
    ones = np.ones(100)
    assert not numeric_drift("is_weekend", ones, ones, RULES).drifted
    assert categorical_drift("is_weekend", ones, ones, RULES).p_value == 1.0
    with pytest.raises(ValueError, match="events in both"):
        numeric_drift("amount", ones, np.array([]), RULES)


def test_window_severity_from_the_share_of_drifted_features() -> None:
    rng = np.random.default_rng(5)
    reference = rng.normal(size=(3_000, 10))
    current = rng.normal(size=(3_000, 10))
    current[:, :3] += 1.0  # three of ten features move

    names = [f"f{i}" for i in range(10)]
    features = feature_drift(reference, current, names)

    assert [f.feature for f in features if f.drifted] == ["f0", "f1", "f2"]
    assert drift_share(features) == 0.3
    assert severity(features, RULES) == Severity.SEVERE
    assert severity(features[3:], RULES) == Severity.NONE
    assert severity(features[2:], RULES) == Severity.MODERATE  # 1 of 8 = 0.125
