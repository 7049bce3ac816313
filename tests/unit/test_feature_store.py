from __future__ import annotations

from scoring.features import InMemoryFeatureStore
from tests.feature_store_contract import check_feature_store_contract


def test_in_memory_store_keeps_the_contract() -> None:
    store = InMemoryFeatureStore()
    check_feature_store_contract(store, reopen=lambda: store)  # memory is its own durability
