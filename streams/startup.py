"""Start-up waits: a process started with its services (or just before them) waits them out.

A broker that does not listen yet, or answers metadata but cannot coordinate a group yet, a
Redis that is still loading, an MLflow server that is still starting: each is a moment, not a
failure. Every process waits for what it needs with backoff, says once what it waits for,
and gives up after ``FRAUD_STARTUP_TIMEOUT`` seconds with one line that names the service and
its address (``ServiceUnavailable``). Errors that are not transient (a wrong partition count,
a refused configuration) fail at once.

>>> from aiokafka.errors import GroupCoordinatorNotAvailableError, TopicAlreadyExistsError
>>> is_transient_kafka_error(GroupCoordinatorNotAvailableError())
True
>>> is_transient_kafka_error(TopicAlreadyExistsError())
False
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx
from aiokafka.errors import KafkaConnectionError, KafkaError, KafkaTimeoutError
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    RetryError,
    Retrying,
    retry_if_exception,
    stop_after_delay,
    wait_exponential,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")
MAX_PAUSE_S = 2.0  # backoff from 0.1 s, doubling, to this


class ServiceUnavailable(RuntimeError):
    """A service did not answer within the start-up timeout; the message names it."""


def is_transient_kafka_error(error: BaseException) -> bool:
    """Kafka's retriable errors (coordinator not available, not leader, ...), a broker that
    does not listen yet, and time-outs."""
    if isinstance(error, KafkaConnectionError | KafkaTimeoutError | OSError | TimeoutError):
        return True
    return isinstance(error, KafkaError) and bool(getattr(error, "retriable", False))


def is_transient_redis_error(error: BaseException) -> bool:
    import redis

    transient = (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError, OSError)
    return isinstance(error, transient)


async def until_kafka_answers(
    address: str, attempt: Callable[[], Awaitable[T]], give_up_after: float
) -> T:
    """``attempt()`` until it returns, while it fails with a transient Kafka error."""
    retrying = AsyncRetrying(**_policy("Kafka", address, is_transient_kafka_error, give_up_after))
    try:
        return await retrying(attempt)
    except RetryError as error:
        raise _gave_up("Kafka", address, give_up_after, error) from None


def until_answers(
    service: str,
    address: str,
    attempt: Callable[[], T],
    transient: Callable[[BaseException], bool],
    give_up_after: float,
) -> T:
    """``attempt()`` until it returns, while it fails with an error ``transient`` accepts."""
    retrying = Retrying(**_policy(service, address, transient, give_up_after))
    try:
        return retrying(attempt)
    except RetryError as error:
        raise _gave_up(service, address, give_up_after, error) from None


def wait_for_redis(url: str, give_up_after: float) -> None:
    """Until Redis answers PING (a client that gives up fast on each try)."""
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=1.0, socket_timeout=2.0)
    try:
        until_answers("Redis", _without_password(url), client.ping, is_transient_redis_error,
                      give_up_after)  # fmt: skip
    finally:
        client.close()


def mlflow_server_url(tracking_uri: str) -> str | None:
    """The HTTP server behind a tracking URI, or None for a local store (always there).

    >>> mlflow_server_url("http://127.0.0.1:15000/"), mlflow_server_url("sqlite:///m.db")
    ('http://127.0.0.1:15000', None)
    """
    return tracking_uri.rstrip("/") if tracking_uri.startswith(("http://", "https://")) else None


def wait_for_mlflow(tracking_uri: str, give_up_after: float) -> None:
    """Until an MLflow tracking server answers its ``/health``; a local store: at once."""
    server = mlflow_server_url(tracking_uri)
    if server is None:
        return

    def healthy() -> None:
        httpx.get(f"{server}/health", timeout=3.0).raise_for_status()

    until_answers("MLflow", server, healthy, _is_transient_http_error, give_up_after)


def _is_transient_http_error(error: BaseException) -> bool:
    if isinstance(error, httpx.HTTPStatusError):  # a proxy in front of a starting server
        return error.response.status_code in (502, 503, 504)
    return isinstance(error, httpx.TransportError | OSError)


def _policy(
    service: str, address: str, transient: Callable[[BaseException], bool], give_up_after: float
) -> dict[str, Any]:
    def say_once(state: RetryCallState) -> None:
        if state.attempt_number == 1 and state.outcome is not None:
            logger.warning(
                "waiting for %s at %s (%s); giving up after %.0f s",
                service, address, _describe(state.outcome.exception()), give_up_after,
            )  # fmt: skip

    return {
        "retry": retry_if_exception(transient),
        "stop": stop_after_delay(give_up_after),
        "wait": wait_exponential(multiplier=0.1, max=MAX_PAUSE_S),
        "before_sleep": say_once,
    }


def _gave_up(service: str, address: str, seconds: float, error: RetryError) -> ServiceUnavailable:
    last = error.last_attempt.exception()
    return ServiceUnavailable(
        f"{service} at {address} did not answer within {seconds:.0f} s "
        f"(FRAUD_STARTUP_TIMEOUT): {_describe(last)}"
    )


def _describe(error: BaseException | None) -> str:
    if error is None:
        return "no answer"
    text = str(error).strip()
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _without_password(url: str) -> str:
    """A Redis URL fit for a log line.

    >>> _without_password("redis://:s3cret@cache:6379/0")
    'redis://cache:6379/0'
    """
    scheme, sep, rest = url.partition("://")
    return f"{scheme}{sep}{rest.rpartition('@')[2]}" if sep else url
