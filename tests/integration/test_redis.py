"""Redis is a real server: values, expiry and pipelines behave as the feature store needs."""

from __future__ import annotations

import uuid

import redis


def test_set_get_and_pipelined_hash_updates(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    prefix = f"it:{uuid.uuid4().hex[:8]}"
    try:
        assert client.set(f"{prefix}:plain", b"value", ex=60)
        assert client.get(f"{prefix}:plain") == b"value"
        assert 0 < client.ttl(f"{prefix}:plain") <= 60

        pipe = client.pipeline(transaction=True)
        for amount in (10, 20, 30):
            pipe.hincrbyfloat(f"{prefix}:card", "sum", amount)
            pipe.hincrby(f"{prefix}:card", "count", 1)
        pipe.execute()
        assert client.hgetall(f"{prefix}:card") == {b"sum": b"60", b"count": b"3"}
    finally:
        client.delete(f"{prefix}:plain", f"{prefix}:card")
        client.close()
