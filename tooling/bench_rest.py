"""``fraudstream bench --rest``: the REST facade's throughput and latency next to a trivial
FastAPI endpoint measured in the same run, each served by uvicorn in its own process and
driven over loopback by a small keep-alive HTTP/1.1 load generator (this process).
"""

from __future__ import annotations

import asyncio
import os
import sys
import time

import numpy as np
import redis
from fastapi import FastAPI
from pydantic import BaseModel

from schemas.codec import encode
from scoring.features import FeatureEngine, FeatureInput
from simulator.generator import SimulationConfig, simulate
from simulator.records import transaction_records
from streams.settings import Settings
from streams.wiring import feature_store
from tooling.bench import BenchResult, CpuMeter, delete_keys, latency_rows
from tooling.processes import spawn_api, start_http_service

BENCH_KEY = "bench-secret-00000001"
CONNECTIONS = 32


class _Small(BaseModel):
    transaction_id: str
    card_id: str
    amount: float


trivial_app = FastAPI()


@trivial_app.post("/echo")
async def echo(body: _Small) -> dict[str, str]:
    """The framework's own ceiling: a small pydantic body in, a small JSON out."""
    return {"transaction_id": body.transaction_id}


HISTORY_DAYS = 30  # of card and terminal state behind the scored transactions
REQUESTS = 20_000


async def run_rest_bench(settings: Settings, seconds: float, rate: float) -> list[BenchResult]:
    port = settings.api_port + 1
    trivial = start_http_service(
        [sys.executable, "-m", "uvicorn", "tooling.bench_rest:trivial_app",
         "--port", str(port), "--no-access-log", "--log-level", "warning"],
        os.environ.copy(), f"http://127.0.0.1:{port}/docs", settings.home / "bench-trivial.log",
    )  # fmt: skip
    try:
        echo_request = _request("/echo", b'{"transaction_id":"t1","card_id":"c1","amount":5.5}')
        ceiling, _ = await _closed_loop(port, [echo_request], seconds)
        with CpuMeter.of_run(settings, {"trivial endpoint": trivial.pid}) as floor_meter:
            floor = await _open_loop(port, [echo_request], rate, seconds)
    finally:
        trivial.terminate()
        trivial.wait(timeout=30)
    api_settings = settings.replace(
        api_keys=f"bench:{BENCH_KEY}", api_access_log=False, api_rate_per_key=1e9,
        topic_prefix=f"bench{os.getpid()}.", app_id=f"fraudstream-bench-api-{os.getpid()}",
    )  # fmt: skip
    client = redis.Redis.from_url(settings.redis_url)
    state = api_settings.redis_prefix("features")
    try:
        bodies = _with_history(client, api_settings, settings.label_delay_days)
        api = spawn_api(api_settings, settings.home / "bench-api.log")
        try:
            requests = [_request("/predict", body, BENCH_KEY) for body in bodies]
            throughput, _ = await _closed_loop(api_settings.api_port, requests, seconds)
            with CpuMeter.of_run(settings, {"API": api.pid}) as meter:
                latencies = await _open_loop(api_settings.api_port, requests, rate, seconds)
        finally:
            api.terminate()
            api.wait(timeout=30)
    finally:
        delete_keys(client, f"{state}:*")
        client.close()
    results = [
        BenchResult(
            "trivial FastAPI endpoint (small pydantic body), closed loop", ceiling, "req/s"
        ),
        BenchResult("POST /predict, closed loop", throughput, "req/s"),
    ]
    at = f"{rate:.0f} req/s"
    results += latency_rows("POST /predict latency", at, latencies)
    results += meter.results(f"at {at}")
    note = "the floor: the framework and the load generator, no work"
    results += latency_rows("trivial endpoint latency", at, floor, note)
    return results + floor_meter.brief(f"at {at} (floor run)", "trivial endpoint")


def _with_history(client: redis.Redis, settings: Settings, label_delay_days: int) -> list[bytes]:
    """``REQUESTS`` transaction bodies whose cards and terminals have ``HISTORY_DAYS`` of
    state in Redis for ``settings`` (as the stream would have stored it): a /predict reads
    and computes what it would in production, not an empty history."""
    days = HISTORY_DAYS + REQUESTS // 3_000 + 1
    simulation = simulate(SimulationConfig(seed=99, days=days, customers=2_000, terminals=1_000))
    records = transaction_records(simulation.transactions)
    split = len(records) - REQUESTS
    engine = FeatureEngine(feature_store(settings, client), label_delay_days)
    for start in range(0, split, 1_000):
        engine.process([FeatureInput.of(t) for t in records[start : min(start + 1_000, split)]])
    return [encode(record) for record in records[split:]]


def _request(path: str, body: bytes, key: str | None = None) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
    )
    if key:
        head += f"X-API-Key: {key}\r\n"
    return head.encode() + b"\r\n" + body


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> int:
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    await reader.readexactly(length)
    return status


async def _closed_loop(port: int, requests: list[bytes], seconds: float) -> tuple[float, int]:
    """Requests a second with ``CONNECTIONS`` connections each sending as soon as answered."""
    done, failed = 0, 0
    stop = time.perf_counter() + seconds

    async def connection(offset: int) -> None:
        nonlocal done, failed
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        index = offset
        while time.perf_counter() < stop:
            status = await _exchange(reader, writer, requests[index % len(requests)])
            done += 1
            failed += status >= 400
            index += CONNECTIONS
        writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(connection(i) for i in range(CONNECTIONS)))
    if failed:
        raise RuntimeError(f"{failed} of {done} requests failed")
    return done / (time.perf_counter() - started), done


async def _open_loop(port: int, requests: list[bytes], rate: float, seconds: float) -> np.ndarray:
    """Latency of requests sent at a steady ``rate`` (each on a free connection)."""
    idle: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
    for _ in range(CONNECTIONS):
        idle.put_nowait(await asyncio.open_connection("127.0.0.1", port))
    latencies: list[float] = []
    tasks = []

    async def one(request: bytes, due: float) -> None:
        reader, writer = await idle.get()
        status = await _exchange(reader, writer, request)
        latencies.append(time.perf_counter() - due)  # from when it was due: no coordinated omission
        idle.put_nowait((reader, writer))
        if status >= 400:
            raise RuntimeError(f"HTTP {status}")

    started = time.perf_counter()
    for index in range(int(rate * seconds)):
        due = started + index / rate
        if (delay := due - time.perf_counter()) > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(requests[index % len(requests)], due)))
    await asyncio.gather(*tasks)
    while not idle.empty():
        idle.get_nowait()[1].close()
    return np.array(latencies)
