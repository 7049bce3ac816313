"""Fault injection on the real services: a steady simulated load through real scoring
workers while something breaks, then an account of every transaction.

Each scenario reports what was sent, how many distinct transactions were scored, how many
were lost (sent, valid, never scored), how many scored outputs were duplicates (the same
transaction scored again: at-least-once delivery after a crash), how many the rules decided,
the dead letters, and the longest time the output stopped after a fault (recovery).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import signal
import subprocess
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import redis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from schemas.codec import decode, encode
from schemas.events import DeadLetter
from schemas.pan import find_pans
from schemas.topics import DEAD_LETTERS, SCORED, TRANSACTIONS
from schemas.transaction import Transaction
from scoring.features import FEATURE_NAMES, FeatureEngine, FeatureInput, InMemoryFeatureStore
from streams.app import LAG_INTERVAL_S, create_topics
from streams.settings import Settings
from tooling.bench import TRANSACTION_ID, _produce, _transactions, cut_string, delete_keys
from tooling.processes import spawn_worker
from tooling.services.kafka import LocalKafka
from tooling.services.mlflow import LocalMlflow
from tooling.services.process import free_port
from tooling.services.redis import LocalRedis

WORKER_AGENTS = ("score", "model-updates")
SPARE = 200_000  # transactions the MLflow scenario may add while it waits for the update
_VERSION = b'"model_version":"'

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Outcome:
    scenario: str
    sent: int  # messages on `transactions`, valid and not
    valid: int
    scored: int  # distinct transactions on `transactions.scored`
    lost: int  # valid, sent, never scored
    duplicated: int  # scored outputs beyond the first for a transaction
    fallback: int  # outputs the rules decided
    dead_letters: int
    recovery_s: float  # the longest stop of the output after a fault (0: no fault)
    note: str = ""
    measures: dict[str, float] = dataclasses.field(default_factory=dict)  # for the note's claims

    def row(self) -> str:
        return (
            f"| {self.scenario} | {self.sent:,} | {self.scored:,} | {self.lost:,} | "
            f"{self.duplicated:,} | {self.fallback:,} | {self.dead_letters:,} | "
            f"{self.recovery_s:.1f} s | {self.note} |"
        )


TABLE_HEAD = (
    "| scenario | sent | scored | lost | duplicated | fallback | dead letters | recovery | note |\n"
    "|---|---|---|---|---|---|---|---|---|"
)


def isolated(settings: Settings, name: str) -> Settings:
    run = uuid.uuid4().hex[:8]
    return settings.replace(
        topic_prefix=f"chaos-{name}-{run}.", app_id=f"fraudstream-chaos-{name}-{run}",
        metrics_port=0,
    )  # fmt: skip


class Outputs:
    """Reads `transactions.scored` and the dead letters from the start, counting by id."""

    def __init__(self, settings: Settings, keep: bool | set[bytes] = False) -> None:
        # also keep the last scored output (``values``) of every transaction, or of these
        self.keep = keep
        self.values: dict[bytes, bytes] = {}
        self.consumer = AIOKafkaConsumer(
            settings.topic(SCORED.name), settings.topic(DEAD_LETTERS.name),
            bootstrap_servers=settings.kafka_bootstrap, auto_offset_reset="earliest",
            max_partition_fetch_bytes=4 * 2**20,
        )  # fmt: skip
        self.scored_topic = settings.topic(SCORED.name)
        self.scored: Counter[bytes] = Counter()
        self.fallback = 0
        self.degraded = 0
        self.versions: Counter[bytes] = Counter()  # outputs by model version
        self.first_seen: dict[bytes, float] = {}  # when each version's first output came
        self.dead_letters: list[DeadLetter] = []
        # monotonic time of each scored batch received in which the model decided everything
        self.arrivals: list[float] = []
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Outputs:
        await self.consumer.start()
        self.task = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *_: object) -> None:
        if self.task is not None:
            self.task.cancel()
        await self.consumer.stop()

    async def _read(self) -> None:
        while True:
            for tp, messages in (await self.consumer.getmany(timeout_ms=200)).items():
                if tp.topic != self.scored_topic:
                    self.dead_letters += [decode(DeadLetter, m.value or b"") for m in messages]
                    continue
                now, fallback = time.monotonic(), self.fallback
                for message in messages:
                    value = message.value or b""
                    transaction_id = cut_string(value, TRANSACTION_ID)
                    self.scored[transaction_id] += 1
                    if self.keep is True or (self.keep and transaction_id in self.keep):
                        self.values[transaction_id] = value
                    version = cut_string(value, _VERSION)
                    self.versions[version] += 1
                    self.first_seen.setdefault(version, now)
                    self.fallback += b'"fallback":true' in value
                    self.degraded += b'"degraded":true' in value
                if self.fallback == fallback:
                    self.arrivals.append(now)

    async def first(self, timeout: float) -> None:
        """Wait until some output has come (the worker is up and scoring)."""
        await self._wait(lambda: bool(self.scored), timeout)

    async def until(self, ids: set[bytes], dead: int, timeout: float) -> None:
        def arrived() -> bool:
            return (
                len(self.scored) >= len(ids)  # cheap first: a subset test of 1,000,000 ids is not
                and ids <= self.scored.keys()
                and len(self.dead_letters) >= dead
            )

        if await self._wait(arrived, timeout):
            await asyncio.sleep(2.0)  # anything still on its way is a duplicate to count

    async def _wait(self, done: Callable[[], bool], timeout: float) -> bool:
        """Whether ``done`` came true within ``timeout``."""
        deadline = time.monotonic() + timeout
        while not done():
            if self.task is not None and self.task.done():
                self.task.result()  # the reader failed: its error, not a count of "lost"
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.2)
        return True

    def longest_stop_after(self, faults: list[float]) -> float:
        """For each fault (or a fault's end), how long until the model decided outputs again;
        the longest."""
        longest = 0.0
        for fault in faults:
            later = [t for t in self.arrivals if t > fault]
            longest = max(longest, later[0] - fault if later else float("inf"))
        return longest


async def publish(
    settings: Settings, items: Sequence[tuple[bytes | None, bytes]], rate: float
) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap, acks="all", linger_ms=5,
        max_request_size=4 * 2**20, enable_idempotence=True,  # a retried batch lands once
    )  # fmt: skip
    await producer.start()
    topic, started = settings.topic(TRANSACTIONS.name), time.monotonic()
    sent: list[asyncio.Future[object]] = []
    try:
        for index, (key, value) in enumerate(items):
            sent.append(await producer.send(topic, key=key, value=value))
            if index % 200 == 0:
                await asyncio.sleep(max(0.0, started + index / rate - time.monotonic()))
            if len(sent) >= 10_000:  # a send that failed is the harness's failure: raise it
                await asyncio.gather(*sent)
                sent.clear()
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


def _id(value: bytes) -> bytes:
    return json.loads(value)["transaction_id"].encode()


async def kill_nine(
    settings: Settings, logs: Path, count: int = 100_000, rate: float = 2_000.0,
    every_s: float = 20.0,
) -> Outcome:  # fmt: skip
    """``kill -9`` of the scoring worker every ``every_s`` seconds while ``count``
    transactions stream in at ``rate``; a new worker starts at once each time."""
    settings = isolated(settings, "kill9")
    items = _transactions(count)
    ids = {_id(value) for _, value in items}
    await create_topics(settings)
    workers = [spawn_worker(settings, logs / "kill9-workers.log", WORKER_AGENTS)]
    kills: list[float] = []
    async with Outputs(settings) as outputs:
        sending = asyncio.create_task(publish(settings, items, rate))
        try:
            while not sending.done():
                await asyncio.wait({sending}, timeout=every_s)
                if sending.done():
                    break
                workers[-1].send_signal(signal.SIGKILL)
                workers[-1].wait()
                kills.append(time.monotonic())
                workers.append(spawn_worker(settings, logs / "kill9-workers.log", WORKER_AGENTS))
            await sending
            await outputs.until(ids, 0, timeout=240)
        finally:
            _stop(workers)
            _drop_state(settings)
    return _outcome(
        "kill -9 of the scoring worker every ~20 s", items, ids, outputs, kills,
        f"{len(kills)} kills at {rate:,.0f} tx/s",
    )  # fmt: skip


def hostile_messages(count: int) -> list[bytes]:
    """Wrong types, missing fields, huge fields, invalid JSON, binary noise, full card
    numbers: each kind in turn."""
    base = {"transaction_id": "h", "event_time": "2026-01-05T10:00:00Z", "card_id": "card-h",
            "terminal_id": "term-h", "amount": 12.5}  # fmt: skip

    def kinds(i: int) -> Iterator[bytes]:
        tx = {**base, "transaction_id": f"hostile-{i}"}
        yield b"{not json at all"
        yield b""
        yield bytes(range(256)) * 4  # binary noise
        yield json.dumps({**tx, "amount": "twelve"}).encode()
        yield json.dumps({**tx, "amount": -1}).encode()
        yield json.dumps({**tx, "event_time": "yesterday"}).encode()
        yield json.dumps({k: v for k, v in tx.items() if k != "card_id"}).encode()
        yield json.dumps({**tx, "card_id": "4111 1111 1111 1111"}).encode()
        yield json.dumps({**tx, "card_id": "5500000000000004"}).encode()
        yield json.dumps({**tx, "merchant_category": "x" * 200_000}).encode()
        yield json.dumps({**tx, "amount": {"nested": [1, 2, 3]}}).encode()
        yield json.dumps([tx, tx]).encode()
        yield json.dumps({**tx, "amount": 1e309}).encode().replace(b"Infinity", b"1e309")

    messages: list[bytes] = []
    i = 0
    while len(messages) < count:
        messages += list(kinds(i))
        i += 1
    return messages[:count]


async def hostile(
    settings: Settings, logs: Path, valid: int = 20_000, bad: int = 10_000, rate: float = 2_000.0
) -> Outcome:
    """``bad`` malformed and hostile messages mixed into ``valid`` transactions."""
    settings = isolated(settings, "hostile")
    good = list(_transactions(valid))
    ids = {_id(value) for _, value in good}
    poison = hostile_messages(bad)
    items: list[tuple[bytes | None, bytes]] = []
    step = max(1, len(good) // max(len(poison), 1))
    for index, item in enumerate(good):
        items.append(item)
        if index % step == 0 and poison:
            items.append((None, poison.pop()))
    items += [(None, message) for message in poison]
    await create_topics(settings)
    worker = spawn_worker(settings, logs / "hostile-worker.log", WORKER_AGENTS)
    async with Outputs(settings) as outputs:
        try:
            await publish(settings, items, rate)
            await outputs.until(ids, bad, timeout=240)
            alive = worker.poll() is None
        finally:
            _stop([worker])
            _drop_state(settings)
    letters = outputs.dead_letters
    pans = sum(len(find_pans(letter.raw)) for letter in letters)
    unexplained = sum(not letter.error.strip() for letter in letters)
    note = (
        f"worker {'alive' if alive else 'DIED'} throughout; {unexplained} dead letters without "
        f"a reason; {pans} card numbers in them"
    )
    return _outcome("10,000 malformed or hostile messages", items, ids, outputs, [], note)


async def bad_clocks(
    settings: Settings, logs: Path, valid: int = 20_000, each: int = 500, rate: float = 2_000.0
) -> Outcome:
    """``each`` transactions dated far in the future, ``each`` ancient ones and ``each`` too
    late for any feature window, on the cards and terminals of ``valid`` on-time ones and
    mixed into them under load (one partition: the order the offline replay sees). None may
    change another transaction's features; each is scored, flagged late or a dead letter."""
    settings = isolated(settings, "clocks").replace(partitions=1)
    good = _transactions(valid)
    records = [decode(Transaction, value) for _, value in good]
    offline = FeatureEngine(InMemoryFeatureStore(), settings.label_delay_days)
    expected = offline.process([FeatureInput.of(record) for record in records])
    items: list[tuple[bytes | None, bytes]] = []
    bad_at = {position * (valid // each) + valid // (2 * each) for position in range(each)}
    future = datetime.now(UTC) + timedelta(days=1)
    for index, (item, record) in enumerate(zip(good, records, strict=True)):
        items.append(item)
        if index in bad_at:
            for kind, when in (("future", future), ("ancient", record.event_time - timedelta(
                    days=200)), ("late", record.event_time - timedelta(days=45))):  # fmt: skip
                copy = record.model_copy(
                    update={"transaction_id": f"{kind}-{index}", "event_time": when}
                )
                items.append((item[0], encode(copy)))
    ids = {_id(value) for _, value in good}
    late_ids = {f"late-{index}".encode() for index in bad_at}
    await create_topics(settings)
    worker = spawn_worker(settings, logs / "clocks-worker.log", WORKER_AGENTS)
    async with Outputs(settings, keep=True) as outputs:
        try:
            await publish(settings, items, rate)
            await outputs.until(ids | late_ids, 2 * each, timeout=240)
        finally:
            _stop([worker])
            _drop_state(settings)
    online = [outputs.values.get(_id(value)) for _, value in good]
    changed = sum(
        value is None or _features(value) != row.tolist()
        for value, row in zip(online, expected, strict=True)
    )
    flagged = sum(b'"late":true' in outputs.values.get(i, b"") for i in late_ids)
    reasons = Counter(letter.reason for letter in outputs.dead_letters)
    note = (
        f"{each:,} each: {reasons['future']:,} future and {reasons['too_old']:,} ancient ones "
        f"dead letters, {flagged:,} late ones scored and flagged; {changed:,} of the on-time "
        "transactions' features differ from the offline replay without the bad clocks"
    )
    outcome = _outcome(
        f"{3 * each:,} bad clocks (future, ancient, too late)", items, ids | late_ids,
        outputs, [], note,
    )  # fmt: skip
    measures = {"future": reasons["future"], "too_old": reasons["too_old"],
                "flagged": flagged, "changed": changed}  # fmt: skip
    return dataclasses.replace(outcome, measures=measures)


def _features(value: bytes) -> list[float]:
    features = json.loads(value)["features"]
    return [float(features[name]) for name in FEATURE_NAMES]


def own_services(settings: Settings, home: Path, *names: str) -> Settings:
    """``settings`` with this scenario's own ``names`` ("kafka", "redis", "mlflow"): a home of
    their own and free ports, so stopping them touches nothing else that runs. The other
    services stay where they were (their addresses are derived from the home otherwise).

    >>> base = Settings(home=Path("/srv/fs"))
    >>> own = own_services(base, Path("/tmp/chaos"), "redis")
    >>> own.redis_url == base.redis_url, own.mlflow_tracking_uri == base.mlflow_tracking_uri
    (False, True)
    >>> own.kafka_bootstrap == base.kafka_bootstrap, own.home
    (True, PosixPath('/tmp/chaos'))
    """
    changes: dict[str, object] = {
        "home": home,
        "kafka_bootstrap_override": settings.kafka_bootstrap,
        "redis_url_override": settings.redis_url,
        "mlflow_tracking_uri_override": settings.mlflow_tracking_uri,
        "mlflow_artifact_dir_override": settings.mlflow_artifact_dir,
    }
    if "kafka" in names:
        changes |= {
            "kafka_port": free_port(), "kafka_controller_port": free_port(),
            "kafka_bootstrap_override": None, "kafka_data_dir_override": None,
            "kafka_log_dir_override": None,
        }  # fmt: skip
    if "redis" in names:
        changes |= {"redis_port": free_port(), "redis_url_override": None}
    if "mlflow" in names:
        changes |= {
            "mlflow_port": free_port(), "mlflow_tracking_uri_override": None,
            "mlflow_artifact_dir_override": None,
        }  # fmt: skip
    return settings.replace(**changes)


async def _outage(
    settings: Settings, logs: Path, name: str, count: int, rate: float,
    stop: Callable[[], object], start: Callable[[], object], down_s: float,
) -> tuple[list[tuple[bytes, bytes]], set[bytes], Outputs, float, bool]:  # fmt: skip
    """A worker scores ``count`` transactions at ``rate``; a third of the way in (counted
    from its first output: an outage while it starts is another scenario) ``stop`` runs,
    ``down_s`` later ``start``. Returns the items, their ids, the outputs, when the service
    was back and whether the worker lived throughout."""
    items = _transactions(count)
    ids = {_id(value) for _, value in items}
    await create_topics(settings)
    worker = spawn_worker(settings, logs / f"{name}-worker.log", WORKER_AGENTS)
    try:
        async with Outputs(settings) as outputs:
            sending = asyncio.create_task(publish(settings, items, rate))
            started = time.monotonic()
            await outputs.first(timeout=120)
            await asyncio.sleep(max(0.0, count / rate / 3 - (time.monotonic() - started)))
            await asyncio.to_thread(stop)
            await asyncio.sleep(down_s)
            await asyncio.to_thread(start)
            back = time.monotonic()
            await sending
            await outputs.until(ids, 0, timeout=300)
            alive = worker.poll() is None
    finally:
        _stop([worker])
    return items, ids, outputs, back, alive


async def broker_restart(
    settings: Settings, logs: Path, count: int = 60_000, rate: float = 2_000.0,
    down_s: float = 10.0,
) -> Outcome:  # fmt: skip
    """The Kafka broker shut down a third of the way into the run and started again ``down_s``
    later (a broker of the scenario's own: the rest of the system keeps its own)."""
    settings = isolated(own_services(settings, logs / "broker-home", "kafka"), "broker")
    kafka = LocalKafka(settings)
    await asyncio.to_thread(kafka.up)
    try:
        items, ids, outputs, back, alive = await _outage(
            settings, logs, "broker", count, rate, kafka.down, kafka.up, down_s
        )
    finally:
        await asyncio.to_thread(kafka.down)
        _drop_state(settings)
    note = f"broker away {down_s:.0f} s; worker {'alive' if alive else 'DIED'} throughout"
    outcome = _outcome(
        f"Kafka broker stopped for {down_s:.0f} s, restarted", items, ids, outputs, [back], note
    )
    return dataclasses.replace(outcome, measures={"alive": float(alive)})


async def redis_outage(
    settings: Settings, logs: Path, count: int = 60_000, rate: float = 2_000.0,
    down_s: float = 10.0,
) -> Outcome:  # fmt: skip
    """Redis shut down a third of the way into the run and started again ``down_s`` later:
    scoring goes on from memory (degraded, the rules decide, flagged) and the feature-state
    writes held meanwhile reach Redis when it is back."""
    settings = isolated(own_services(settings, logs / "redis-home", "redis"), "redis")
    server = LocalRedis(settings)
    await asyncio.to_thread(server.up)
    try:
        items, ids, outputs, back, alive = await _outage(
            settings, logs, "redis", count, rate, server.down, server.up, down_s
        )
        missing = await asyncio.to_thread(_without_state, settings, ids)
    finally:
        await asyncio.to_thread(server.down)
    note = (
        f"Redis away {down_s:.0f} s; {outputs.degraded:,} scored degraded; {missing:,} "
        f"transactions without stored state after; worker {'alive' if alive else 'DIED'}"
    )
    outcome = _outcome(
        f"Redis stopped for {down_s:.0f} s, restarted", items, ids, outputs, [back], note
    )
    measures = {"alive": float(alive), "degraded": outputs.degraded, "without_state": missing}
    return dataclasses.replace(outcome, measures=measures)


def _without_state(settings: Settings, ids: set[bytes]) -> int:
    """How many of ``ids`` have no score mark in Redis (the mark is written with the card's
    history and the terminal's count, in one atomic step)."""
    client = redis.Redis.from_url(settings.redis_url)
    prefix = f"{settings.redis_prefix('features')}:mark:tx:"
    ordered = sorted(ids)
    missing = 0
    for start in range(0, len(ordered), 5_000):
        chunk = ordered[start : start + 5_000]
        missing += sum(v is None for v in client.mget([prefix + i.decode() for i in chunk]))
    client.close()
    return missing


async def mlflow_outage(
    settings: Settings, logs: Path, count: int = 100_000, rate: float = 2_000.0,
    down_s: float = 20.0,
) -> Outcome:  # fmt: skip
    """MLflow's server stops; while it is away a new champion is promoted (in the store behind
    the server) and announced on ``model.updates``, and the worker is killed with ``-9`` and
    restarted; the server returns ``down_s`` after it stopped. The cached model must keep
    deciding; the update must apply once MLflow answers."""
    from retraining.adapters.mlflow_registry import MlflowRegistry
    from streams.lifecycle import model_update, publish_update

    base = own_services(settings, logs / "mlflow-home", "mlflow")
    mlflow = LocalMlflow(base)
    await asyncio.to_thread(mlflow.up, True)  # a sqlite store of its own, and the server
    store = base.mlflow_tracking_uri  # what the server serves, reachable without it
    settings = isolated(base.replace(mlflow_tracking_uri_override=base.mlflow_server_uri), "mlflow")
    workers: list[subprocess.Popen[bytes]] = []
    try:
        await asyncio.to_thread(register_versions, settings, (1, 2))  # 1 champion, 2 not
        items = _transactions(count + SPARE)
        items, spare = items[:count], items[count:]
        await create_topics(settings)
        workers.append(spawn_worker(settings, logs / "mlflow-workers.log", WORKER_AGENTS))
        async with Outputs(settings) as outputs:
            sending = asyncio.create_task(publish(settings, items, rate))
            await asyncio.sleep(count / rate / 5)
            await asyncio.to_thread(mlflow.down)
            stopped = time.monotonic()
            promotion = await asyncio.to_thread(
                MlflowRegistry(store).promote, settings.model_name, "2",
                "chaos: promoted during an outage",
                "fraudstream chaos",
            )  # fmt: skip
            await publish_update(settings, model_update(promotion))
            await asyncio.sleep(3)
            workers[-1].send_signal(signal.SIGKILL)
            workers[-1].wait()
            workers.append(spawn_worker(settings, logs / "mlflow-workers.log", WORKER_AGENTS))
            await asyncio.sleep(max(0.0, stopped + down_s - time.monotonic()))
            await asyncio.to_thread(mlflow.up, True)
            back = time.monotonic()
            await sending
            # the load goes on until the update shows (a slow MLflow start must not end the
            # run first), a second's worth at a time
            step, deadline = int(rate), time.monotonic() + 180
            while b"2" not in outputs.first_seen and spare and time.monotonic() < deadline:
                await publish(settings, spare[:step], rate)
                items, spare = items + spare[:step], spare[step:]
            ids = {_id(value) for _, value in items}
            await outputs.until(ids, 0, timeout=300)
    finally:
        _stop(workers)
        await asyncio.to_thread(mlflow.down)
        _drop_state(settings)
    applied = outputs.first_seen.get(b"2", float("nan")) - back
    versions = ", ".join(f"v{v.decode()}: {n:,}" for v, n in sorted(outputs.versions.items()))
    note = (
        f"MLflow away {down_s:.0f} s, worker killed and restarted meanwhile; outputs by "
        f"version {versions}; version 2 served {applied:.1f} s after MLflow returned"
    )
    outcome = _outcome("MLflow unreachable during a model update", items, ids, outputs, [], note)
    measures = {f"v{v.decode()}": float(n) for v, n in outputs.versions.items()}
    return dataclasses.replace(outcome, recovery_s=applied, measures=measures)


def register_versions(settings: Settings, seeds: Sequence[int] = (1, 2)) -> None:
    """Train a small LightGBM model per seed on a seeded simulation and register each: the
    first becomes champion (the registry's rule for a first version), the others wait."""
    from retraining.adapters.mlflow_registry import MlflowRegistry
    from retraining.training import (
        TrainingOptions,
        TrainingWindow,
        build_dataset,
        train_candidates,
    )
    from simulator.generator import SimulationConfig, simulate

    simulation = simulate(SimulationConfig(seed=9, days=36, customers=300, terminals=150))
    window = TrainingWindow.ending_at(simulation.transactions["event_time"].max())
    dataset = build_dataset(
        simulation.transactions, simulation.labels, window, settings.label_delay_days
    )
    for seed in seeds:
        options = TrainingOptions(search_budget_seconds=0, seed=seed, k=10)
        results = train_candidates(dataset, kinds=("lightgbm",), options=options)
        MlflowRegistry(settings.mlflow_tracking_uri).log_training(
            settings.mlflow_artifact_dir, settings.model_name,
            {"seed": seed}, dataset.summary(), results, results[0], dataset.features[:100],
        )  # fmt: skip


async def backlog(settings: Settings, logs: Path, count: int = 1_000_000) -> Outcome:
    """``count`` transactions already waiting when a worker starts (a consumer that was down
    or too slow): drained without loss, the lag visible in ``fraudstream_consumer_lag``."""
    settings = isolated(settings, "backlog")
    settings = settings.replace(metrics_port=free_port())
    items = _transactions(count)
    ids = {_id(value) for _, value in items}
    sample = {_id(value) for _, value in items[::PARITY_SAMPLE_EVERY]}
    await create_topics(settings)
    await _produce(settings.kafka_bootstrap, settings.topic(TRANSACTIONS.name), items)
    worker = spawn_worker(settings, logs / "backlog-worker.log", WORKER_AGENTS)
    lags: list[float] = []
    try:
        async with Outputs(settings, keep=sample) as outputs:
            started = time.monotonic()
            while len(outputs.scored) < len(ids) and time.monotonic() - started < 1_800:
                if (lag := await asyncio.to_thread(scraped_lag, settings)) is not None:
                    lags.append(lag)
                await asyncio.sleep(5.0)
            drained = time.monotonic() - started
            await outputs.until(ids, 0, timeout=60)
            await asyncio.sleep(LAG_INTERVAL_S + 1)  # one more lag report after the last batch
            final = await asyncio.to_thread(scraped_lag, settings)
            alive = worker.poll() is None
    finally:
        _stop([worker])
        _drop_state(settings)
    differing = await asyncio.to_thread(
        _unlike_the_replay, items, sample, outputs.values, settings.label_delay_days
    )
    note = (
        f"drained in {drained:.0f} s ({len(outputs.scored) / drained:,.0f} tx/s, one worker "
        f"from its start); lag peak {max(lags, default=0):,.0f}, at the end {final or 0:,.0f}; "
        f"worker {'alive' if alive else 'DIED'}; features unlike the offline replay: "
        f"{differing:,} of {len(sample):,} sampled ({differing / max(len(sample), 1):.2%})"
    )
    outcome = _outcome(f"backlog of {count:,} transactions", items, ids, outputs, [], note)
    measures = {
        "alive": float(alive), "drained_s": drained, "lag_peak": max(lags, default=0.0),
        "lag_end": final if final is not None else float("nan"), "sampled": len(sample),
        "differing": differing,
    }  # fmt: skip
    return dataclasses.replace(outcome, measures=measures)


PARITY_SAMPLE_EVERY = 50  # the backlog's features are compared on every 50th transaction


def _unlike_the_replay(
    items: Sequence[tuple[bytes, bytes]],
    sampled: set[bytes],
    scored: dict[bytes, bytes],
    label_delay_days: int,
) -> int:
    """How many of the ``scored`` outputs (of the ``sampled`` ids) carry features other than
    an offline replay of ``items`` in the order they were sent (a missing output counts as
    unlike)."""
    engine = FeatureEngine(InMemoryFeatureStore(), label_delay_days)
    differing = 0
    for start in range(0, len(items), 20_000):
        chunk = [decode(Transaction, value) for _, value in items[start : start + 20_000]]
        rows = engine.process([FeatureInput.of(t) for t in chunk])
        for transaction, row in zip(chunk, rows.tolist(), strict=True):
            value = scored.get(transaction.transaction_id.encode())
            differing += value is not None and _features(value) != row
    return differing + len(sampled - scored.keys())


def scraped_lag(settings: Settings) -> float | None:
    """The worker's ``fraudstream_consumer_lag`` on ``transactions``, summed over partitions
    (``None`` until its metrics answer)."""
    url = f"http://127.0.0.1:{settings.metrics_port}/metrics"
    try:
        with urllib.request.urlopen(url, timeout=2.0) as response:
            text = response.read().decode()
    except OSError:
        return None
    topic = settings.topic(TRANSACTIONS.name)
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "fraudstream_consumer_lag"
        for sample in family.samples
        if sample.labels.get("topic") == topic
    )


def _outcome(
    scenario: str,
    items: Sequence[tuple[bytes | None, bytes]],
    ids: set[bytes],
    outputs: Outputs,
    faults: list[float],
    note: str,
) -> Outcome:
    scored = set(outputs.scored) & ids
    return Outcome(
        scenario=scenario,
        sent=len(items),
        valid=len(ids),
        scored=len(scored),
        lost=len(ids - scored),
        duplicated=sum(outputs.scored.values()) - len(outputs.scored),
        fallback=outputs.fallback,
        dead_letters=len(outputs.dead_letters),
        recovery_s=outputs.longest_stop_after(faults),
        note=note,
    )


def _drop_state(settings: Settings) -> None:
    """Delete the run's keys from the shared Redis once its workers are gone: its feature
    state keeps a key a transaction (the backlog scenario left a million), and Redis's
    rewrites of its log of them stalled the benchmarks that ran after the tests."""
    client = redis.Redis.from_url(settings.redis_url, socket_timeout=30)
    try:
        delete_keys(client, f"{settings.topic_prefix}*")
    except redis.RedisError as error:  # the outcome matters more than the clean-up
        logger.warning("could not delete the keys of %s: %s", settings.topic_prefix, error)
    finally:
        client.close()


def _stop(workers: list[subprocess.Popen[bytes]]) -> None:
    for worker in workers:
        if worker.poll() is None:
            worker.terminate()
            worker.wait(timeout=60)
