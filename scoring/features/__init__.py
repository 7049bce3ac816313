"""Online and offline features: one implementation behind a store protocol."""

from scoring.features.definitions import CATEGORICAL_FEATURES, FEATURE_INDEX, FEATURE_NAMES
from scoring.features.engine import FeatureEngine, FeatureInput, LabelResult
from scoring.features.store import FeatureStore, InMemoryFeatureStore

__all__ = [
    "CATEGORICAL_FEATURES",
    "FEATURE_INDEX",
    "FEATURE_NAMES",
    "FeatureEngine",
    "FeatureInput",
    "FeatureStore",
    "InMemoryFeatureStore",
    "LabelResult",
]
