"""The drift monitor on seeded data: windows by count and time, severity, one request per
shift."""

from __future__ import annotations

import numpy as np
import pytest

from retraining.drift_monitor import DriftConfig, DriftMonitor, Reference
from schemas.events import RetrainReason, Severity
from scoring.decision import Thresholds
from scoring.features.definitions import FEATURE_INDEX, FEATURE_NAMES

THRESHOLDS = Thresholds(0.5, 0.9)
AMOUNT_LIKE = [n for n in FEATURE_NAMES if "amount" in n]  # 15 of the 47 monitored: severe


def rows_like(rng: np.random.Generator, n: int, shift: float = 0.0) -> np.ndarray:
    rows = rng.normal(size=(n, len(FEATURE_NAMES)))
    for name in ("channel_code", "merchant_category_code", "day_of_week"):
        rows[:, FEATURE_INDEX[name]] = rng.integers(0, 3, n)
    for name in AMOUNT_LIKE:
        rows[:, FEATURE_INDEX[name]] += shift
    return rows


def monitor(config: DriftConfig) -> DriftMonitor:
    rng = np.random.default_rng(1)
    reference = Reference(rows_like(rng, 3_000), rng.uniform(0, 0.6, 3_000))
    return DriftMonitor(reference, "fraud-detector", "3", THRESHOLDS, config)


def feed(m: DriftMonitor, rng: np.random.Generator, n: int, shift: float, t0: float = 0.0):
    probabilities = rng.uniform(0, 0.6, n)
    decisions = THRESHOLDS.decide(probabilities)
    return m.add(rows_like(rng, n, shift), probabilities, decisions, t0 + np.arange(n, dtype=float))


def test_windows_close_by_count_and_calm_data_raises_nothing() -> None:
    m = monitor(DriftConfig(window_events=1_000, min_events=100))
    results = feed(m, np.random.default_rng(2), 2_500, shift=0.0)
    assert [r.report.events for r in results] == [1_000, 1_000]  # 500 wait in the open window
    assert [r.report.severity for r in results] == [Severity.NONE, Severity.NONE]
    assert [r.request for r in results] == [None, None]
    assert len(results[0].report.features) == len(FEATURE_NAMES) - 2  # day of week unmonitored


def test_a_shift_is_severe_names_its_features_and_asks_once() -> None:
    m = monitor(DriftConfig(window_events=1_000, min_events=100, rearm_windows=2))
    rng = np.random.default_rng(3)
    results = feed(m, rng, 3_000, shift=1.0)
    assert [r.report.severity for r in results] == [Severity.SEVERE] * 3
    drifted = {f.feature for f in results[0].report.features if f.drifted}
    assert drifted == set(AMOUNT_LIKE)
    assert results[0].report.drift_share == pytest.approx(
        len(AMOUNT_LIKE) / len(results[0].report.features)
    )
    requests = [r.request for r in results if r.request is not None]
    assert len(requests) == 1 and requests[0].reason == RetrainReason.DRIFT
    assert requests[0].drift.model_version == "3"
    # two calm windows re-arm it: the next shift asks again
    assert all(r.request is None for r in feed(m, rng, 2_000, shift=0.0))
    again = feed(m, rng, 1_000, shift=1.0)
    assert again[0].request is not None and m.requests == 2


def test_time_windows_close_at_their_span_and_small_ones_are_dropped() -> None:
    m = monitor(DriftConfig(window_events=5_000, window_seconds=600.0, min_events=500))
    rng = np.random.default_rng(4)
    results = feed(m, rng, 1_500, shift=0.0)  # one event a second: windows of 600 events
    assert [r.report.events for r in results] == [600, 600]
    assert results[0].report.window_start.timestamp() == 0.0
    assert results[0].report.window_end.timestamp() == 599.0
    # 300 events left open; a gap in time closes that window, too small to test
    assert feed(m, rng, 10, shift=0.0, t0=10_000.0) == []
    assert m.windows == 2


def test_prediction_and_decision_mix_drift_are_reported() -> None:
    m = monitor(DriftConfig(window_events=1_000, min_events=100))
    rng = np.random.default_rng(5)
    probabilities = rng.uniform(0.4, 1.0, 1_000)  # scores moved up: more reviews, declines
    (result,) = m.add(
        rows_like(rng, 1_000), probabilities, THRESHOLDS.decide(probabilities), np.arange(1_000.0)
    )
    assert result.report.prediction_drift is not None and result.report.prediction_drift.drifted
    assert result.report.decision_mix_drift is not None
    assert result.report.decision_mix_drift.drifted
    assert result.report.severity == Severity.NONE  # the features did not move


def test_a_new_champion_continues_the_drift_episode_of_the_one_it_replaced() -> None:
    config = DriftConfig(window_events=1_000, min_events=100, rearm_windows=2)
    old, new = monitor(config), monitor(config)
    rng = np.random.default_rng(6)
    assert feed(old, rng, 1_000, shift=1.0)[0].request is not None
    new.continue_episode(old)
    assert feed(new, rng, 1_000, shift=1.0)[0].request is None  # the same shift, still on
    feed(new, rng, 2_000, shift=0.0)  # calm again: re-armed
    assert feed(new, rng, 1_000, shift=1.0)[0].request is not None
