"""Online (Redis) and offline (in-memory replay) features are identical for the same history."""

from __future__ import annotations

import uuid

import numpy as np
import redis

from retraining.dataset import replay_features
from scoring.adapters.redis_store import RedisFeatureStore
from scoring.features import FEATURE_NAMES
from simulator.generator import SimulationConfig, simulate
from tests.feature_store_contract import check_feature_store_contract


def test_redis_store_keeps_the_contract(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    prefix = f"it-contract-{uuid.uuid4().hex[:8]}"
    try:
        check_feature_store_contract(
            RedisFeatureStore(client, prefix=prefix),
            reopen=lambda: RedisFeatureStore(client, prefix=prefix),
        )
    finally:
        client.delete(*client.keys(f"{prefix}:*"))
        client.close()


def test_online_and_offline_features_are_identical(redis_url: str) -> None:
    simulation = simulate(SimulationConfig(seed=3, days=20, customers=150, terminals=80))
    transactions, labels = simulation.transactions, simulation.labels
    client = redis.Redis.from_url(redis_url)
    prefix = f"it-parity-{uuid.uuid4().hex[:8]}"
    try:
        offline = replay_features(transactions, labels, label_delay_days=7)
        # no card cache: every batch reads the histories back from Redis
        online = replay_features(
            transactions, labels, label_delay_days=7,
            store=RedisFeatureStore(client, prefix=prefix, cache_cards=False),
        )  # fmt: skip
        assert len(transactions) > 3_000 and labels["is_fraud"].sum() > 20
        np.testing.assert_array_equal(online, offline)
        # and a second pass over the same history (a full replay after a crash) changes nothing
        state_before = _feature_state(client, prefix)
        again = replay_features(
            transactions, labels, label_delay_days=7, store=RedisFeatureStore(client, prefix=prefix)
        )  # with the cache this time, as a worker runs
        state_after = _feature_state(client, prefix)
        assert state_after == state_before
        # features are the same too, except the terminal's fraud shares: every label is
        # known by now
        known_later = [
            i
            for i, name in enumerate(FEATURE_NAMES)
            if name.startswith(("terminal_risk", "terminal_known_fraud_rate"))
        ]
        same = np.delete(np.arange(len(FEATURE_NAMES)), known_later)
        np.testing.assert_array_equal(again[:, same], offline[:, same])
    finally:
        keys = client.keys(f"{prefix}:*")
        if keys:
            client.delete(*keys)
        client.close()


def _feature_state(client: redis.Redis, prefix: str) -> dict[bytes, bytes | None]:
    """Every stored key under ``prefix`` but the batch tokens (each run leaves its own)."""
    return {
        key: client.dump(key)
        for key in client.keys(f"{prefix}:*")
        if not key.startswith(f"{prefix}:applied:".encode())
    }
