"""Fast drift statistics for one window of scored transactions against a reference sample.

Per feature: the two-sample Kolmogorov-Smirnov test for numeric features, chi-square on the
category counts for categorical ones, and the population stability index (PSI) for both.
A feature counts as drifted only if the change is both significant (p below ``alpha``) and
material (PSI at least ``min_psi``): on windows of thousands of events a p-value alone flags
shifts too small to matter. ~0.2 s for 32 features over 10,000 events here, where an Evidently
report takes 1-2 s: these are for every window, Evidently for the human report.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
from scipy import stats

from schemas.events import FeatureDrift, Severity

PSI_BINS = 10
PSI_FLOOR = 1e-4  # an empty bin's share, so the log stays finite


@dataclasses.dataclass(frozen=True)
class DriftThresholds:
    alpha: float = 0.01  # a test's p-value below this is significant
    min_psi: float = 0.1  # and its PSI at least this is material
    severe_share: float = 0.2  # more drifted features than this share is severe drift


def psi(reference: np.ndarray, current: np.ndarray) -> float:
    """Population stability index of two share vectors over the same bins.

    >>> round(psi(np.array([0.5, 0.5]), np.array([0.25, 0.75])), 4)
    0.2747
    """
    reference = np.maximum(reference, PSI_FLOOR)
    current = np.maximum(current, PSI_FLOOR)
    return float(np.sum((current - reference) * np.log(current / reference)))


def numeric_drift(
    feature: str, reference: np.ndarray, current: np.ndarray, thresholds: DriftThresholds
) -> FeatureDrift:
    _require(reference, current)
    statistic, p_value = stats.ks_2samp(reference, current)
    # bins at the reference's deciles; repeated edges (a feature with few values) merged
    edges = np.unique(np.quantile(reference, np.linspace(0, 1, PSI_BINS + 1)[1:-1]))
    reference_share = _shares(np.searchsorted(edges, reference, side="right"), len(edges) + 1)
    current_share = _shares(np.searchsorted(edges, current, side="right"), len(edges) + 1)
    return _verdict(
        feature, "ks", statistic, p_value, psi(reference_share, current_share), thresholds
    )


def categorical_drift(
    feature: str, reference: np.ndarray, current: np.ndarray, thresholds: DriftThresholds
) -> FeatureDrift:
    _require(reference, current)
    categories, codes = np.unique(np.concatenate([reference, current]), return_inverse=True)
    reference_counts = np.bincount(codes[: len(reference)], minlength=len(categories))
    current_counts = np.bincount(codes[len(reference) :], minlength=len(categories))
    if len(categories) < 2:  # one category in both: nothing can have changed
        statistic, p_value = 0.0, 1.0
    else:
        table = np.vstack([reference_counts, current_counts])
        statistic, p_value = stats.chi2_contingency(table, correction=False)[:2]
    change = psi(reference_counts / len(reference), current_counts / len(current))
    return _verdict(feature, "chi2", statistic, p_value, change, thresholds)


def feature_drift(
    reference: np.ndarray,
    current: np.ndarray,
    names: Sequence[str],
    categorical: Sequence[str] = (),
    thresholds: DriftThresholds = DriftThresholds(),
) -> list[FeatureDrift]:
    """One ``FeatureDrift`` per column of ``(events, features)`` matrices, in ``names`` order."""
    return [
        (categorical_drift if name in categorical else numeric_drift)(
            name, reference[:, i], current[:, i], thresholds
        )
        for i, name in enumerate(names)
    ]


def drift_share(features: Sequence[FeatureDrift]) -> float:
    return sum(f.drifted for f in features) / len(features) if features else 0.0


def severity(features: Sequence[FeatureDrift], thresholds: DriftThresholds) -> Severity:
    """Severe when more than ``severe_share`` of the features drifted; moderate when any did."""
    share = drift_share(features)
    if share > thresholds.severe_share:
        return Severity.SEVERE
    return Severity.MODERATE if share > 0 else Severity.NONE


def _verdict(
    feature: str,
    test: str,
    statistic: float,
    p_value: float,
    change: float,
    thresholds: DriftThresholds,
) -> FeatureDrift:
    p_value = float(np.clip(np.nan_to_num(p_value, nan=1.0), 0.0, 1.0))
    return FeatureDrift(
        feature=feature,
        test=test,  # type: ignore[arg-type]
        statistic=float(np.nan_to_num(statistic)),
        p_value=p_value,
        psi=change,
        drifted=p_value < thresholds.alpha and change >= thresholds.min_psi,
    )


def _shares(bins: np.ndarray, count: int) -> np.ndarray:
    return np.bincount(bins, minlength=count) / len(bins)


def _require(reference: np.ndarray, current: np.ndarray) -> None:
    if not len(reference) or not len(current):
        raise ValueError("drift needs a reference and a current window with events in both")
