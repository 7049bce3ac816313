"""Requests a second per API key."""

import threading
import time
from collections.abc import Callable


class RateLimiter:
    """A token bucket per key: ``rate`` requests a second, bursts up to one second's worth.

    >>> now = [0.0]
    >>> limiter = RateLimiter(2, clock=lambda: now[0])
    >>> [limiter.take("k") for _ in range(3)]
    [True, True, False]
    >>> now[0] = 0.5; limiter.take("k"), limiter.take("other")
    (True, True)
    """

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate, self.clock = rate, clock
        self.buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)
        self.lock = threading.Lock()

    def take(self, key: str) -> bool:
        now = self.clock()
        with self.lock:
            tokens, at = self.buckets.get(key, (self.rate, now))
            tokens = min(self.rate, tokens + (now - at) * self.rate)
            if tokens < 1:
                self.buckets[key] = (tokens, now)
                return False
            self.buckets[key] = (tokens - 1, now)
            return True
