"""``fraudstream bench``: scoring throughput and latency on the real broker, next to ceilings
measured in the same run (a raw aiokafka consume->produce pass-through, a Faust agent that
only consumes and decodes, and the scorer's own way in - Faust's consumer into a batch
inbox - with only decoding behind it).

Each stage reads the same pre-published transactions from its own topics; a stage's rate is
counted from its first output to its last, so start-up (group join, model load) is left out.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import platform
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import faust
import numpy as np
import orjson
import uvloop
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from schemas.codec import encode
from schemas.events import CHAMPION
from schemas.topics import SCORED, TRANSACTIONS
from simulator.generator import SimulationConfig, simulate
from simulator.records import transaction_records
from streams.app import create_topics, faust_app
from streams.consumer import QuietMonitor
from streams.kafka_admin import ensure_topics
from streams.producer import BatchSender
from streams.settings import Settings
from tooling.processes import spawn_worker


@dataclasses.dataclass(frozen=True)
class BenchResult:
    name: str
    value: float
    unit: str
    note: str = ""


def machine() -> str:
    cpu = "unknown CPU"
    with open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{os.cpu_count()} cores ({cpu}), {memory_gib:.0f} GiB, {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}"
    )


async def run_bench(
    settings: Settings, count: int, rate: float, seconds: float
) -> list[BenchResult]:
    run = uuid.uuid4().hex[:8]
    values = _transactions(count + int(rate * seconds))
    source = f"bench{run}.source"
    await ensure_topics(
        settings.kafka_bootstrap,
        {source: settings.partitions, f"{source}.out": settings.partitions},
    )
    await _produce(settings.kafka_bootstrap, source, values[:count])
    results = [
        BenchResult(
            "raw aiokafka consume->produce",
            await _raw_passthrough(settings, source, count),
            "msg/s",
        ),
        BenchResult(
            "Faust agent, consume + decode only",
            await _faust_noop(settings, source, count, run),
            "msg/s",
        ),
        BenchResult(
            "Faust agent, consume + decode only, on the worker's runtime (uvloop, QuietMonitor)",
            await _faust_noop_as_worker(settings, source, count, run),
            "msg/s",
        ),
        BenchResult(
            "Faust agent, batched pass-through (take 500, decode, produce as the scorer does)",
            await _faust_noop(settings, source, count, run, produce=True),
            "msg/s",
        ),
        BenchResult(
            "Faust consumer into the scorer's batch inbox, consume + decode only (uvloop)",
            await _on_uvloop(_inbox_noop(settings, source, count, run)),
            "msg/s",
        ),
    ]
    floor = await _latency_floor(settings, run, values[count:], rate)
    worker_settings = _worker_settings(settings, run)
    await create_topics(worker_settings)
    await _produce(
        settings.kafka_bootstrap, worker_settings.topic(TRANSACTIONS.name), values[:count]
    )
    with state_deleted_after(settings, worker_settings.topic_prefix):
        results += await _worker_latency(settings, worker_settings, values, count, rate)
    return results + await _unaligned_throughput(settings, run, values[:count]) + floor


async def _unaligned_throughput(
    settings: Settings, run: str, values: list[tuple[bytes, bytes]]
) -> list[BenchResult]:
    """The same worker on the same waiting transactions with its partitions not kept in step
    by event time (``FRAUD_MAX_PARTITION_LEAD=0``): what the alignment costs."""
    unaligned = _worker_settings(settings, f"{run}u").replace(max_partition_lead=0.0)
    await create_topics(unaligned)
    await _produce(settings.kafka_bootstrap, unaligned.topic(TRANSACTIONS.name), values)
    with state_deleted_after(settings, unaligned.topic_prefix):
        async with _scoring_workers(unaligned, 1, "bench-worker-unaligned.log") as (worker,):
            throughput, cpu = await _count_rate(
                settings.kafka_bootstrap, unaligned.topic(SCORED.name), len(values), worker.pid
            )
    name = "scoring worker, partitions not kept in step by event time (FRAUD_MAX_PARTITION_LEAD=0)"
    return [
        BenchResult(
            name, throughput, "tx/s", "the alignment's cost: compare with the worker above"
        ),
        BenchResult("the same, CPU per transaction", cpu * 1e6, "µs"),
    ]


async def _worker_latency(
    settings: Settings,
    worker_settings: Settings,
    values: list[tuple[bytes, bytes]],
    count: int,
    rate: float,
) -> list[BenchResult]:
    """One worker's throughput on ``count`` waiting transactions, then its latency on the
    rest sent at ``rate``."""
    results = []
    async with _scoring_workers(worker_settings, 1, "bench-worker.log") as (worker,):
        throughput, cpu = await _count_rate(
            settings.kafka_bootstrap, worker_settings.topic(SCORED.name), count, worker.pid
        )
        name = "scoring worker (1 process: score and model-updates agents)"
        results.append(BenchResult(name, throughput, "tx/s"))
        results.append(BenchResult("scoring worker CPU per transaction", cpu * 1e6, "µs"))
        with CpuMeter.of_run(settings, {"scoring worker": worker.pid}) as meter:
            latencies = await _steady_latency(
                settings.kafka_bootstrap,
                worker_settings.topic(TRANSACTIONS.name),
                worker_settings.topic(SCORED.name),
                values[count:],
                rate,
            )
    at = f"{rate:.0f} tx/s"
    note = "produce -> scored output received"
    results += latency_rows("end-to-end latency", at, latencies, note)
    return results + meter.results(f"at {at}")


async def _latency_floor(
    settings: Settings, run: str, items: list[tuple[bytes, bytes]], rate: float
) -> list[BenchResult]:
    """The same steady load through a process that does nothing but pass each message on
    (``relay``): the latency of two Kafka hops and the load generator on this machine, below
    which no scorer can go."""
    source, target = f"bench{run}.floor", f"bench{run}.floor.out"
    partitions = settings.partitions
    await ensure_topics(settings.kafka_bootstrap, {source: partitions, target: partitions})
    command = "from tooling.bench import relay_process; relay_process()"
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", command, settings.kafka_bootstrap, source, target, str(partitions),
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        if await asyncio.wait_for(process.stdout.readline(), timeout=60) != b"ready\n":
            raise RuntimeError("the relay did not start")
        with CpuMeter.of_run(settings, {"relay": process.pid}) as meter:
            latencies = await _steady_latency(settings.kafka_bootstrap, source, target, items, rate)
    finally:
        if process.returncode is None:
            process.terminate()
        await process.wait()
    at = f"{rate:.0f} tx/s"
    note = "the floor: raw aiokafka passing each message on, no work"
    return latency_rows("relay latency", at, latencies, note) + meter.brief(
        f"at {at} (floor run)", "relay"
    )


def latency_rows(what: str, at: str, seconds: np.ndarray, note: str = "") -> list[BenchResult]:
    """The p50, p95 and p99 of ``seconds``, in milliseconds.

    >>> [(r.name, r.value) for r in latency_rows("relay latency", "5 tx/s", np.full(4, 0.002))]
    ... # doctest: +NORMALIZE_WHITESPACE
    [('relay latency p50 at 5 tx/s', 2.0), ('relay latency p95 at 5 tx/s', 2.0),
     ('relay latency p99 at 5 tx/s', 2.0)]
    """
    return [
        BenchResult(f"{what} p{q} at {at}", float(np.percentile(seconds, q)) * 1000, "ms", note)
        for q in (50, 95, 99)
    ]


def relay_process() -> None:
    """``python -c`` entry of ``relay``: bootstrap, source, target, partitions."""
    bootstrap, source, target, partitions = sys.argv[1:5]

    def say_ready() -> None:
        sys.stdout.write("ready\n")
        sys.stdout.flush()

    uvloop.run(relay(bootstrap, source, target, int(partitions), say_ready))


async def relay(
    bootstrap: str, source: str, target: str, partitions: int, ready: Callable[[], None]
) -> None:
    """Pass every new message of ``source`` on to the same partition of ``target``, as soon
    as it comes and with nothing else done: fetches answered once a byte is there, sends sent
    at once. Calls ``ready`` when it reads every partition; runs until cancelled."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, fetch_max_wait_ms=100)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=0)
    await consumer.start()
    await producer.start()
    try:
        assigned = [TopicPartition(source, p) for p in range(partitions)]
        consumer.assign(assigned)
        await consumer.seek_to_end(*assigned)
        for tp in assigned:
            await consumer.position(tp)  # resolved now, so nothing sent after ``ready`` is missed
        ready()
        while True:
            fetched = await consumer.getmany(timeout_ms=1_000, max_records=5_000)
            for tp, messages in fetched.items():
                for message in messages:
                    await producer.send(
                        target, key=message.key, value=message.value, partition=tp.partition
                    )
    finally:
        await producer.stop()
        await consumer.stop()


async def workers_throughput(settings: Settings, count: int, workers: int) -> list[BenchResult]:
    """``workers`` scoring processes sharing the partitions: started and settled in their
    group first (a warm-up batch scored), then ``count`` transactions published at once."""
    run = uuid.uuid4().hex[:8]
    values = _transactions(count + 600)
    worker_settings = _worker_settings(settings, run)
    await create_topics(worker_settings)
    with state_deleted_after(settings, worker_settings.topic_prefix):
        throughput = await _shared_throughput(worker_settings, values, count, workers)
    name = f"scoring workers ({workers} processes sharing {settings.partitions} partitions)"
    return [BenchResult(name, throughput, "tx/s", "group settled before the load")]


async def _shared_throughput(
    worker_settings: Settings, values: list[tuple[bytes, bytes]], count: int, workers: int
) -> float:
    source, scored = worker_settings.topic(TRANSACTIONS.name), worker_settings.topic(SCORED.name)
    bootstrap = worker_settings.kafka_bootstrap
    async with _scoring_workers(worker_settings, workers, "bench-workers.log") as processes:
        await _produce(bootstrap, source, values[:600])
        await _count_rate(bootstrap, scored, 600)
        await asyncio.sleep(15.0)  # every member has joined and the group has settled
        counting = asyncio.create_task(
            _count_rate(bootstrap, scored, 600 + count, processes[0].pid)
        )
        await _produce(bootstrap, source, values[600:])
        throughput, _ = await counting
    return throughput


def _worker_settings(settings: Settings, run: str) -> Settings:
    """A bench run's workers: topics and consumer group of their own, no metrics port."""
    return settings.replace(
        topic_prefix=f"bench{run}.", app_id=f"fraudstream-bench-{run}", metrics_port=0
    )


@contextlib.asynccontextmanager
async def _scoring_workers(
    settings: Settings, count: int, log_name: str
) -> AsyncIterator[list[subprocess.Popen[bytes]]]:
    """``count`` scoring processes (score and model-updates agents), stopped on the way out."""
    log = Path(settings.home) / log_name
    processes = [
        spawn_worker(settings, log, agents=("score", "model-updates")) for _ in range(count)
    ]
    try:
        yield processes
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=60)


def _transactions(count: int) -> list[tuple[bytes, bytes]]:
    days = max(2, count // 3_000 + 1)
    simulation = simulate(SimulationConfig(seed=99, days=days, customers=2_000, terminals=1_000))
    records = transaction_records(simulation.transactions.head(count))
    if len(records) < count:
        raise ValueError(f"the simulation gave {len(records)} transactions, {count} wanted")
    return [(r.card_id.encode(), encode(r)) for r in records]


async def _produce(bootstrap: str, topic: str, items: list[tuple[bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=10, max_batch_size=262_144)
    await producer.start()
    try:
        for key, value in items:
            await producer.send(topic, key=key, value=value)
        await producer.flush()
    finally:
        await producer.stop()


async def _raw_passthrough(settings: Settings, source: str, count: int) -> float:
    consumer = AIOKafkaConsumer(
        source,
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=f"bench-raw-{uuid.uuid4().hex[:6]}",
        auto_offset_reset="earliest",
        max_poll_records=5_000,
    )
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap, linger_ms=5, max_batch_size=262_144
    )
    await consumer.start()
    await producer.start()
    seen, started = 0, None
    try:
        while seen < count:
            for messages in (await consumer.getmany(timeout_ms=500, max_records=5_000)).values():
                started = started or time.perf_counter()
                for message in messages:
                    await producer.send(f"{source}.out", key=message.key, value=message.value)
                seen += len(messages)
        await producer.flush()
    finally:
        await producer.stop()
        await consumer.stop()
    return count / (time.perf_counter() - (started or time.perf_counter()))


async def _faust_noop_as_worker(settings: Settings, source: str, count: int, run: str) -> float:
    """The no-op agent on the scoring worker's runtime (uvloop, ``QuietMonitor``): the same
    ceiling with the same choices the worker makes, run on a loop of its own."""
    return await _on_uvloop(_faust_noop(settings, source, count, f"{run}-uv", monitor=QuietMonitor))


async def _on_uvloop(stage: Coroutine[Any, Any, float]) -> float:
    """Run ``stage`` on a uvloop loop of its own, as a worker runs."""
    previous = asyncio.get_event_loop_policy()
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())  # also for Faust's consumer thread
    try:
        return await asyncio.to_thread(asyncio.run, stage)
    finally:
        asyncio.set_event_loop_policy(previous)


async def _inbox_noop(settings: Settings, source: str, count: int, run: str) -> float:
    """The scorer's way in (``streams.consumer``: Faust's consumer delivering to a batch
    inbox) with nothing but decoding behind it: the ceiling of the worker's own runtime."""
    name = f"bench-inbox-{run}"
    app = faust_app(settings, name)
    await ensure_topics(settings.kafka_bootstrap, {f"{name}-__assignor-__leader": 1})
    topic = app.topic(source, value_serializer="raw", partitions=settings.partitions)
    inbox = app.inbox(topic, settings.batch_size, settings.batch_within)

    async def drain() -> float:
        """Seconds from the first batch decoded to the last."""
        seen, first = 0, 0.0
        while seen < count:
            batch = await inbox.take()
            for message in batch:
                orjson.loads(message.value or b"{}")
            inbox.acknowledge(batch)
            first = first or time.perf_counter()
            seen += len(batch)
        return time.perf_counter() - first

    await app.start()
    try:
        return count / await asyncio.wait_for(drain(), timeout=600)
    finally:
        await app.stop()


async def _faust_noop(
    settings: Settings, source: str, count: int, run: str, produce: bool = False,
    monitor: type | None = None,
) -> float:  # fmt: skip
    """The no-op agent; with ``produce``, the scorer's own batching and output path around
    no scoring at all (what Faust and Kafka cost a scoring worker before it does anything)."""
    name = f"bench-{'pass' if produce else 'noop'}-{run}"
    extra: dict[str, Any] = {"Monitor": monitor} if monitor is not None else {}
    app = faust.App(
        name, broker=f"kafka://{settings.kafka_bootstrap}", store="memory://",
        web_enabled=False, topic_allow_declare=False, consumer_auto_offset_reset="earliest",
        broker_session_timeout=settings.broker_session_timeout,
        broker_heartbeat_interval=settings.broker_heartbeat_interval,
        broker_rebalance_timeout=settings.broker_rebalance_timeout,
        datadir=settings.faust_datadir(name), producer_max_batch_size=1_000_000,
        **extra,
    )  # fmt: skip
    await ensure_topics(settings.kafka_bootstrap, {f"{name}-__assignor-__leader": 1})
    outputs = BatchSender.of_app(app, f"{source}.out")
    state = {"seen": 0, "first": 0.0, "last": 0.0}
    done = asyncio.Event()

    async def passthrough(stream: faust.StreamT) -> None:
        batches = stream.take_events(settings.batch_size, within=settings.batch_within)  # type: ignore[attr-defined]
        async for events in batches:
            values = [event.message.value for event in events]
            await outputs.send([(orjson.loads(v)["card_id"].encode(), v) for v in values])
            state["seen"] += len(values)
            state["first"] = state["first"] or time.perf_counter()
            if state["seen"] >= count:
                state["last"] = time.perf_counter()
                done.set()

    async def noop(stream: faust.StreamT) -> None:
        async for value in stream:
            orjson.loads(value)
            state["seen"] += 1
            state["first"] = state["first"] or time.perf_counter()
            if state["seen"] >= count:
                state["last"] = time.perf_counter()
                done.set()

    source_topic = app.topic(source, value_serializer="raw", partitions=settings.partitions)
    app.agent(source_topic, name="agent")(passthrough if produce else noop)
    await app.start()
    try:
        await asyncio.wait_for(done.wait(), timeout=600)
    finally:
        await app.stop()
    return count / (state["last"] - state["first"])


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_ticks(stat_line: str) -> tuple[int, int]:
    """All and idle CPU ticks of the machine so far, from the first line of ``/proc/stat``
    (user nice system idle iowait irq softirq steal; guest time is already in user).

    >>> machine_ticks("cpu  91616 0 9193 148605 470 0 1814 115 0 0")
    (251813, 149075)
    """
    ticks = [int(field) for field in stat_line.split()[1:9]]
    return sum(ticks), ticks[3] + ticks[4]


def _machine_ticks_now() -> tuple[int, int]:
    return machine_ticks(Path("/proc/stat").read_text().splitlines()[0])


def busy_share(before: tuple[int, int], after: tuple[int, int]) -> float:
    """The share of all cores that was busy between two ``machine_ticks`` samples.

    >>> busy_share((1_000, 600), (1_400, 700))
    0.75
    """
    elapsed = after[0] - before[0]
    return 1.0 - (after[1] - before[1]) / elapsed if elapsed > 0 else 0.0


# Runs beside a measurement (``python -c``): a fixed ~100-200 us of pure-Python arithmetic
# every ~5 ms (~3 % of a core), until SIGTERM; then each unit's microseconds and the context
# switches the guest's kernel made during it. A unit stretched with no switch lost its vCPU
# to something the guest's scheduler does not see: on a shared VM the host (steal the VM
# does not report), or interrupt work on that core.
_STEAL_PROBE = """
import resource, signal, sys, time
def work(n):
    x = 1.0
    for _ in range(n):
        x = x * 1.0000001 + 0.5
    return x
n = 256
while True:
    t = time.perf_counter(); work(n)
    if time.perf_counter() - t >= 1e-4: break
    n *= 2
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
units = []
try:
    while True:
        r0 = resource.getrusage(resource.RUSAGE_THREAD)
        t = time.perf_counter(); work(n); spent = time.perf_counter() - t
        r1 = resource.getrusage(resource.RUSAGE_THREAD)
        switches = r1.ru_nvcsw - r0.ru_nvcsw + r1.ru_nivcsw - r0.ru_nivcsw
        units.append(f"{spent * 1e6:.0f} {switches}")
        time.sleep(0.005)
finally:
    print("\\n".join(units), flush=True)
"""
STRETCHED = 3.0  # a unit this many times the median was interrupted


def host_taken_share(units: list[tuple[float, int]]) -> float:
    """The share of probe units (microseconds, guest context switches) stretched to
    ``STRETCHED`` times the median or more with no switch: time taken from the probe that
    the guest's scheduler never saw (the host's, or interrupt work on its core).

    >>> host_taken_share([(100, 0)] * 7 + [(400, 0), (900, 1), (320, 0)])
    0.2
    """
    if not units:
        return 0.0
    typical = float(np.median([spent for spent, _ in units]))
    taken = [spent for spent, switches in units if spent >= STRETCHED * typical and not switches]
    return len(taken) / len(units)


class CpuMeter:
    """What the processes of a measurement cost while it ran, so that a latency reads
    against the load on the machine: the CPU each named process spent (as a share of one
    core), how busy all cores were, how often Redis forked (a log rewrite pauses it and
    copies its memory while the measurement runs) and, with ``probe``, how often the host
    took a vCPU away (``host_taken_share``). A process that has gone is left out."""

    def __init__(
        self, pids: dict[str, int], redis_client: Any | None = None, probe: bool = False
    ) -> None:
        self.pids, self.redis, self.probe = pids, redis_client, probe
        self.host_taken: float | None = None
        self.probe_units = 0

    @classmethod
    def of_run(cls, settings: Settings, measured: dict[str, int]) -> CpuMeter:
        """The ``measured`` processes, this one (the load generator, which also reads the
        answers) and, when ``fraudstream services up`` runs them here, the broker and Redis."""
        import redis

        from tooling.services import LocalServices

        services = LocalServices(settings)
        pids = {**measured, "load generator (this process)": os.getpid()}
        for name, service in (("Kafka broker", services.kafka), ("Redis", services.redis)):
            if (pid := service.process.pid()) is not None:
                pids[name] = pid
        return cls(pids, redis.Redis.from_url(settings.redis_url, socket_timeout=2.0), probe=True)

    def __enter__(self) -> CpuMeter:
        self.prober = (
            subprocess.Popen(
                [sys.executable, "-c", _STEAL_PROBE], stdout=subprocess.PIPE, text=True
            )
            if self.probe
            else None
        )
        self.started = time.perf_counter()
        self.machine_at_start = _machine_ticks_now()
        self.spent_at_start = {name: _cpu_seconds(pid) for name, pid in self.pids.items()}
        self.forks_at_start = self._forks()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.started
        self.busy = busy_share(self.machine_at_start, _machine_ticks_now())
        self.spent: dict[str, float] = {}
        for name, pid in self.pids.items():
            with contextlib.suppress(OSError):  # gone: left out
                self.spent[name] = _cpu_seconds(pid) - self.spent_at_start[name]
        forks = self._forks()
        self.forks = forks - self.forks_at_start if min(forks, self.forks_at_start) >= 0 else -1
        if self.redis is not None:
            self.redis.close()
        if self.prober is not None:
            self.prober.terminate()
            out, _ = self.prober.communicate(timeout=30)
            units = [line.split() for line in out.splitlines() if line.strip()]
            self.probe_units = len(units)
            self.host_taken = host_taken_share([(float(a), int(b)) for a, b in units])

    def _forks(self) -> int:
        if self.redis is None:
            return -1
        try:
            return int(self.redis.info("stats")["total_forks"])
        except Exception:  # a measure beside the benchmark: never its failure
            return -1

    def brief(self, during: str, name: str) -> list[BenchResult]:
        """Of ``results``, only process ``name``'s CPU and how busy the machine was."""
        wanted = (f"CPU {during}: {name}", f"machine busy {during}")
        return [row for row in self.results(during) if row.name in wanted]

    def results(self, during: str) -> list[BenchResult]:
        rows = [
            BenchResult(f"CPU {during}: {name}", spent / self.seconds * 100, "% of a core")
            for name, spent in self.spent.items()
        ]
        cores = os.cpu_count() or 1
        rows.append(BenchResult(f"machine busy {during}", self.busy * 100, f"% of {cores} cores"))
        if self.forks >= 0:
            rows.append(BenchResult(f"Redis forks (log rewrites) {during}", self.forks, "forks"))
        if self.host_taken is not None:
            rows.append(
                BenchResult(
                    f"probe units the host stretched {during}", self.host_taken * 100, "%",
                    f"~100 us of work stretched {STRETCHED:.0f} x or more with no switch in the "
                    "guest: the host took its vCPU, or interrupts its core",
                )
            )  # fmt: skip
        return rows


async def _count_rate(
    bootstrap: str, topic: str, count: int, pid: int | None = None
) -> tuple[float, float]:
    """Outputs per second from the first to the last, and the CPU seconds process ``pid``
    spent per output meanwhile (steadier than the rate on a shared machine)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        partitions = [
            TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or range(6)
        ]
        first = None
        while True:
            done = sum((await consumer.end_offsets(partitions)).values())
            now = time.perf_counter()
            if done and first is None:
                first = (now, done, _cpu_seconds(pid) if pid else 0.0)
            if done >= count:
                break
            await asyncio.sleep(0.05)
        cpu = _cpu_seconds(pid) if pid else 0.0
    finally:
        await consumer.stop()
    assert first is not None
    scored = max(count - first[1], 1)
    return scored / max(now - first[0], 1e-9), (cpu - first[2]) / scored


async def _steady_latency(
    bootstrap: str, source: str, scored: str, items: list[tuple[bytes, bytes]], rate: float
) -> np.ndarray:
    """Publish ``items`` to ``source`` at ``rate`` and time each transaction from its send
    to its output on ``scored``."""
    consumer = AIOKafkaConsumer(scored, bootstrap_servers=bootstrap, auto_offset_reset="latest")
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=1)
    await consumer.start()
    await producer.start()
    await consumer.seek_to_end()
    sent_at: dict[bytes, float] = {}
    latencies: list[float] = []
    # the load generator stays light so it takes little CPU from the worker it measures:
    # sends go out in 2 ms ticks as one record batch per partition, and an output's id is
    # cut from its first bytes ({"transaction":{"transaction_id":"..." as the scorer writes
    # it) instead of parsed
    sender = BatchSender(lambda: producer, source)
    ids = [orjson.loads(value)["transaction_id"].encode() for _, value in items]

    async def receive() -> None:
        while len(latencies) < len(items):
            for messages in (await consumer.getmany(timeout_ms=200)).values():
                arrived = time.perf_counter()
                for message in messages:
                    tx_id = cut_string(message.value, TRANSACTION_ID)
                    if tx_id in sent_at:
                        latencies.append(arrived - sent_at[tx_id])

    receiver = asyncio.create_task(receive())
    started = time.perf_counter()
    try:
        sent = 0
        while sent < len(items):
            due = min(len(items), int((time.perf_counter() - started) * rate) + 1)
            now = time.perf_counter()
            for index in range(sent, due):
                sent_at[ids[index]] = now
            await sender.send(items[sent:due])
            sent = due
            await asyncio.sleep(0.002)
        await asyncio.wait_for(receiver, timeout=120)
    finally:
        receiver.cancel()
        await producer.stop()
        await consumer.stop()
    return np.array(latencies)


TRANSACTION_ID = b'"transaction_id":"'  # how the scorer writes the id first in its output


def cut_string(value: bytes, marker: bytes) -> bytes:
    """The JSON string that follows ``marker`` in ``value``, cut out, not parsed (a load
    generator reading every output must stay light).

    >>> cut_string(b'{"transaction":{"transaction_id":"t-1","amount":2}}', TRANSACTION_ID)
    b't-1'
    """
    start = value.index(marker) + len(marker)
    return value[start : value.index(b'"', start)]


def result_rows(results: list[BenchResult]) -> list[str]:
    """One markdown table row per result: name, value with unit, and the note."""
    return [
        f"| {r.name} | {r.value:,.1f} {r.unit}{' (' + r.note + ')' if r.note else ''} |"
        for r in results
    ]


def report(results: list[BenchResult], command: str, kafka: str) -> str:
    lines = [
        f"Machine: {machine()}; Apache Kafka {kafka} (local KRaft node).",
        f"Command: `{command}`",
        "",
        "| measure | value |",
        "|---|---|",
    ]
    lines += result_rows(results)
    return "\n".join(lines) + "\n"


def step_costs(settings: Settings, count: int = 10_000, batch: int = 500) -> list[BenchResult]:
    """Microseconds per transaction of each step of the scoring path, in one process,
    against the real Redis and the registered champion (the rules if there is none)."""
    import redis

    from schemas.codec import decode
    from schemas.transaction import Transaction
    from scoring.features import FeatureEngine, FeatureInput
    from scoring.pipeline import InboundMessage, utc_now
    from streams.wiring import feature_store, scoring_pipeline
    from tooling.jobs import load_scorer_or_fallback

    values = [value for _, value in _transactions(count)]
    client = redis.Redis.from_url(settings.redis_url)
    # two key spaces of their own: the features alone, then the whole path
    spaces = [
        settings.replace(topic_prefix=f"bench-steps-{uuid.uuid4().hex[:8]}.") for _ in range(2)
    ]
    engine = FeatureEngine(feature_store(spaces[0], client), settings.label_delay_days)
    scorer = load_scorer_or_fallback(settings, f"{settings.model_name}@{CHAMPION}")
    pipeline = scoring_pipeline(
        spaces[1], FeatureEngine(feature_store(spaces[1], client), settings.label_delay_days),
        lambda: scorer,
    )  # fmt: skip
    spent: dict[str, float] = {}

    @contextlib.contextmanager
    def timed(step: str) -> Iterator[None]:
        started = time.perf_counter()
        yield
        spent[step] = spent.get(step, 0.0) + time.perf_counter() - started

    try:
        for start in range(0, count, batch):
            raw = values[start : start + batch]
            with timed("decode + validate"):
                transactions = [decode(Transaction, v) for v in raw]
            with timed("feature inputs"):
                inputs = [FeatureInput.of(t) for t in transactions]
            with timed("features: read Redis, compute"):
                rows, writes = engine.compute(inputs)
            with timed("features: write Redis (in a thread in the worker)"):
                engine.save(writes)
            with timed(f"model + reason codes ({scorer.name}/{scorer.version})"):
                scorer.score(rows)
            now = utc_now()
            messages = [InboundMessage(v, "bench", 0, 0, now) for v in raw]
            with timed("whole path: pipeline prepare (decode .. decisions)"):
                result = pipeline.prepare(messages)
            with timed("whole path: pipeline save (in a thread in the worker)"):
                pipeline.save(result)
            with timed("whole path: encode outputs"):
                result.encoded()
    finally:
        for space in spaces:
            delete_keys(client, f"{space.redis_prefix('features')}:*")
        client.close()
    return [BenchResult(step, seconds / count * 1e6, "µs/tx") for step, seconds in spent.items()]


@contextlib.contextmanager
def state_deleted_after(settings: Settings, prefix: str) -> Iterator[None]:
    """Delete the Redis keys under ``prefix`` (a run's own state) when the block ends, however
    it ends: left behind, every run's ~50,000-150,000 keys grow the data set that each later
    append-only-file rewrite copies, while a benchmark measures."""
    import redis

    try:
        yield
    finally:
        client = redis.Redis.from_url(settings.redis_url)
        try:
            delete_keys(client, f"{prefix}*")
        finally:
            client.close()


def delete_keys(client: Any, pattern: str) -> None:
    """Delete every Redis key matching ``pattern`` (a benchmark's own state), 10,000 a call."""
    keys = list(client.scan_iter(pattern, count=10_000))
    for first in range(0, len(keys), 10_000):
        client.delete(*keys[first : first + 10_000])
