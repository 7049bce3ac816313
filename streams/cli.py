"""The ``fraudstream`` command line: the one place the environment is read."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from streams.settings import Settings, SettingsError

logger = logging.getLogger("fraudstream")
# the fault-injection scenarios of `fraudstream chaos`, in the order they run
SCENARIOS = ("kill", "broker", "redis", "mlflow", "hostile", "backlog")


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:
        for chatty in ("faust", "mode", "aiokafka", "alembic"):
            logging.getLogger(chatty).setLevel(logging.WARNING)
        # MLflow warns on every pyfunc it logs that pickled models run code when loaded:
        # ours are our own, loaded from our own registry. MLflow resets its logger's level
        # when imported, unless this variable says otherwise (worker processes inherit it).
        logging.getLogger("mlflow").setLevel(logging.ERROR)
        os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "ERROR")
    try:
        settings = Settings.from_env(os.environ)
        return int(args.handler(settings, args))
    except (SettingsError, RuntimeError, ValueError) as error:
        # ServiceError, TopicMismatch and friends say what to do; a traceback would hide it
        print(f"fraudstream: {error}", file=sys.stderr)  # noqa: T201
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fraudstream", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    commands = parser.add_subparsers(dest="command", required=True)

    services = commands.add_parser(
        "services", help="local Kafka (KRaft), Redis and MLflow without Docker"
    )
    services.add_argument("action", choices=["up", "down", "status"])
    services.add_argument(
        "--only", default="kafka,redis,mlflow", help="comma-separated subset (default: all three)"
    )
    services.add_argument(
        "--mlflow-server",
        action="store_true",
        help="with up: also serve the MLflow UI on FRAUD_MLFLOW_PORT",
    )
    services.set_defaults(handler=_services)

    _add_data_commands(commands)

    worker = commands.add_parser(
        "worker", help="the stream agents: scoring, model updates, labels, training store, drift"
    )
    worker.add_argument(
        "--agents",
        default="score,model-updates,labels,training-store,drift,challenger",
        help="which agents this process runs (comma-separated)",
    )
    worker.set_defaults(handler=_worker)

    trainer = commands.add_parser(
        "trainer", help="the training worker: retrain on requests and on FRAUD_RETRAIN_CRON"
    )
    trainer.set_defaults(handler=_trainer)
    retrain = commands.add_parser(
        "retrain", help="retrain now from the training store; promote if the gate passes"
    )
    retrain.set_defaults(handler=_retrain)
    promote = commands.add_parser("promote", help="make VERSION the champion, scorers follow")
    promote.add_argument("version")
    promote.add_argument("--reason", default="promoted by hand")
    promote.set_defaults(handler=_promote)
    promote_challenger = commands.add_parser(
        "promote-challenger",
        help="register the online challenger; champion if it passes the gate (or --force)",
    )
    promote_challenger.add_argument(
        "--force", action="store_true", help="promote even if the gate says no (recorded)"
    )
    promote_challenger.set_defaults(handler=_promote_challenger)
    rollback = commands.add_parser(
        "rollback", help="give the champion back to the version the current one replaced"
    )
    rollback.set_defaults(handler=_rollback)

    api = commands.add_parser(
        "api", help="the REST facade (FRAUD_API_HOST/PORT; keys from FRAUD_API_KEYS)"
    )
    api.set_defaults(handler=_api)

    bench = commands.add_parser(
        "bench", help="scoring throughput and latency against the real broker"
    )
    bench.add_argument(
        "--count", type=int, default=50_000, help="transactions for the throughput runs"
    )
    bench.add_argument(
        "--rate", type=float, default=2_000.0, help="steady rate for the latency run"
    )
    bench.add_argument("--seconds", type=float, default=20.0, help="length of the latency run")
    bench.add_argument("--out", type=Path, default=None, help="also write the report here")
    bench.add_argument(
        "--steps", action="store_true", help="only time each step of the scoring path (no Kafka)"
    )
    bench.add_argument(
        "--rest",
        action="store_true",
        help="the REST facade instead: throughput and latency next to a trivial endpoint",
    )
    bench.add_argument(
        "--report", type=Path, nargs="?", const=Path("docs/BENCHMARKS.md"), default=None,
        help="everything (stream with 1 and 2 workers, REST, training, the loop's drift to "
        "champion), written between the markers of this file (default docs/BENCHMARKS.md)",
    )  # fmt: skip
    bench.add_argument(
        "--history", type=int, default=1_000_000, help="with --report: transactions to train on"
    )
    bench.set_defaults(handler=_bench)

    chaos = commands.add_parser(
        "chaos", help="fault injection on the real services: what was sent, scored, lost"
    )
    chaos.add_argument("--count", type=int, default=100_000, help="transactions in the kill run")
    chaos.add_argument("--rate", type=float, default=2_000.0, help="transactions a second")
    chaos.add_argument(
        "--only", default=",".join(SCENARIOS),
        help=f"comma-separated scenarios to run, of {', '.join(SCENARIOS)} (default: all)",
    )  # fmt: skip
    chaos.add_argument(
        "--backlog", type=int, default=1_000_000, help="transactions in the backlog run"
    )
    chaos.add_argument("--out", type=Path, default=None, help="also write the table here")
    chaos.set_defaults(handler=_chaos)

    smoke = commands.add_parser(
        "smoke", help="records through Kafka and a Faust agent, counted back"
    )
    smoke.add_argument("--count", type=int, default=10_000)
    smoke.set_defaults(handler=_smoke)

    demo = commands.add_parser("demo", help="services up, then the main flow on embedded defaults")
    demo.add_argument(
        "--keep-services", action="store_true", help="leave the services running afterwards"
    )
    demo.add_argument(
        "--data", type=Path, default=Path("data/demo"), help="where the demo's files go"
    )
    demo.set_defaults(handler=_demo)
    return parser


def _add_data_commands(commands: argparse._SubParsersAction) -> None:
    simulate = commands.add_parser(
        "simulate", help="synthetic transactions and late labels, to files or to Kafka"
    )
    simulate.add_argument("--out", type=Path, default=Path("data/simulated"), help="output folder")
    simulate.add_argument("--format", choices=["parquet", "csv"], default="parquet")
    simulate.add_argument("--days", type=int, default=60)
    simulate.add_argument("--customers", type=int, default=2_000)
    simulate.add_argument("--terminals", type=int, default=1_000)
    simulate.add_argument("--seed", type=int, default=42)
    simulate.add_argument("--start", type=_utc_time, default=None, help="first day (ISO 8601)")
    simulate.add_argument("--drift-at", type=_utc_time, default=None, help="switch drift on here")
    simulate.add_argument("--drift", default="amount,category,pattern", help="which drift kinds")
    simulate.add_argument("--kafka", action="store_true", help="publish to Kafka instead of files")
    simulate.add_argument("--rate", type=float, default=2_000.0, help="with --kafka: tx per second")
    simulate.set_defaults(handler=_simulate)

    train = commands.add_parser("train", help="train candidates, log to MLflow, register the best")
    train.add_argument("--transactions", type=Path, required=True)
    train.add_argument("--labels", type=Path, required=True)
    for edge in ("train-start", "train-end", "test-start", "test-end"):
        train.add_argument(f"--{edge}", type=_utc_time, default=None, help="ISO 8601 date or time")
    train.add_argument("--k", type=int, default=100, help="cards checked per day (precision@k)")
    train.add_argument("--seed", type=int, default=7)
    train.set_defaults(handler=_train)

    score = commands.add_parser("score", help="batch-score a transaction file (backtest)")
    score.add_argument("--transactions", type=Path, required=True)
    score.add_argument("--labels", type=Path, default=None)
    score.add_argument("--out", type=Path, required=True, help=".csv or .parquet")
    score.add_argument(
        "--model", default=None, help="name@alias (default: <FRAUD_MODEL_NAME>@champion)"
    )
    score.add_argument("--k", type=int, default=100)
    score.set_defaults(handler=_score)


def _utc_time(text: str) -> pd.Timestamp:
    moment = pd.Timestamp(text)
    return moment.tz_localize("UTC") if moment.tzinfo is None else moment.tz_convert("UTC")


def _simulate(settings: Settings, args: argparse.Namespace) -> int:
    from streams.jobs import write_simulation
    from streams.simulator.generator import SimulationConfig, simulate

    config = SimulationConfig(
        seed=args.seed,
        days=args.days,
        customers=args.customers,
        terminals=args.terminals,
        drift_at=args.drift_at.to_pydatetime() if args.drift_at is not None else None,
        drift=frozenset(kind for kind in args.drift.split(",") if kind),
        **({"start": args.start.to_pydatetime()} if args.start is not None else {}),
    )
    if args.kafka:
        import asyncio

        from streams.app import create_topics
        from streams.simulator.publish import publish

        asyncio.run(create_topics(settings))
        simulation = simulate(config)
        result = asyncio.run(
            publish(settings.kafka_bootstrap, simulation.transactions, simulation.labels, args.rate)
        )
        _say(
            f"published {result.transactions} transactions and {result.labels} labels "
            f"in {result.seconds:.1f}s ({result.transactions / result.seconds:.0f} tx/s)"
        )
        return 0
    simulation = write_simulation(config, args.out, args.format)
    frauds = int(simulation.truth["is_fraud"].sum())
    share = frauds / max(len(simulation.transactions), 1)
    _say(
        f"wrote {len(simulation.transactions)} transactions ({frauds} frauds, {share:.2%}) "
        f"and {len(simulation.labels)} labels to {args.out}/"
    )
    return 0


def _train(settings: Settings, args: argparse.Namespace) -> int:
    from streams.jobs import train

    _wait_for_registry(settings)
    edges = ("train_start", "train_end", "test_start", "test_end")
    report = train(
        settings,
        args.transactions,
        args.labels,
        {edge: getattr(args, edge) for edge in edges},
        k=args.k,
        seed=args.seed,
        progress=sys.stderr.isatty(),
    )
    window = report.window
    _say(
        f"window: train {window.train_start.date()}..{window.train_end.date()}, "
        f"test {window.test_start.date()}..{window.test_end.date()}; {report.summary}"
    )
    _say_metrics(report.metrics)
    role = "champion" if report.champion else "registered (champion unchanged)"
    _say(f"best: {report.best} -> {settings.model_name} version {report.version}, {role}")
    if report.champion:
        _announce_first_champion(settings, report.version)
    return 0


def _announce_first_champion(settings: Settings, version: str) -> None:
    """Running scorers (on the rules until now) swap to a first champion without a restart;
    with no broker to tell, they load it when they start."""
    import asyncio
    from datetime import UTC, datetime

    from aiokafka.errors import KafkaError

    from schemas.events import ModelUpdate
    from streams.app import create_topics
    from streams.lifecycle import publish_update

    update = ModelUpdate(
        model_name=settings.model_name, version=version, alias="champion", metrics={},
        previous_version=None, updated_at=datetime.now(UTC),
    )  # fmt: skip

    async def announce() -> None:
        await create_topics(settings)
        await publish_update(settings, update)

    try:
        asyncio.run(asyncio.wait_for(announce(), timeout=20))
    except (OSError, TimeoutError, KafkaError) as error:
        _say(f"no broker at {settings.kafka_bootstrap} ({error!r}): scorers load it at start")
        return
    _say(f"published: {settings.model_name} version {version} is champion")


def _score(settings: Settings, args: argparse.Namespace) -> int:
    from streams.jobs import score_file

    model = args.model or f"{settings.model_name}@champion"
    metrics = score_file(
        settings,
        args.transactions,
        args.labels,
        args.out,
        model,
        k=args.k,
        progress=sys.stderr.isatty(),
    )
    _say(f"scored {args.transactions} -> {args.out}")
    if metrics:
        _say("  " + "  ".join(f"{n}={v:.4f}" for n, v in metrics.items()))
    return 0


def _worker(settings: Settings, args: argparse.Namespace) -> int:
    import asyncio

    import faust
    import uvloop

    from streams.app import (
        build_app,
        create_topics,
        group_id,
        make_parts,
        settle_collector,
    )

    # libuv's event loop: Faust spends most of a message's cost in asyncio machinery. Set
    # before anything asks for a loop: mode keeps the first loop a thread asked for, and
    # building the app asks, so a policy set later leaves the worker on asyncio's own loop.
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    _limit_registry_retries()
    agents = tuple(a.strip() for a in args.agents.split(",") if a.strip())
    _wait_for_state_and_registry(settings)
    created = loop.run_until_complete(create_topics(settings, (group_id(settings, agents),)))
    if created:
        logger.info("created topics %s", ", ".join(created))
    parts = make_parts(settings)
    if settings.metrics_port:
        from prometheus_client import start_http_server

        start_http_server(
            settings.metrics_port, addr=settings.metrics_host, registry=parts.metrics.registry
        )
    model = parts.models.current()
    logger.info(
        "serving %s/%s%s", model.name, model.version, " (rules fallback)" if model.fallback else ""
    )
    app = build_app(settings, parts, agents)
    settle_collector()
    logger.info("event loop: %s.%s", type(app.loop).__module__, type(app.loop).__name__)
    faust.Worker(
        app, loglevel="WARNING" if not args.verbose else "INFO", quiet=True
    ).execute_from_commandline()
    return 0


def _trainer(settings: Settings, args: argparse.Namespace) -> int:
    import asyncio

    import faust

    from streams.app import create_topics
    from streams.trainer import build_trainer_app

    _wait_for_registry(settings)
    asyncio.run(create_topics(settings))
    app = build_trainer_app(settings)
    logger.info("trainer: retrains on requests and on %r", settings.retrain_cron)
    faust.Worker(
        app, loglevel="WARNING" if not args.verbose else "INFO", quiet=True
    ).execute_from_commandline()
    return 0


def _retrain(settings: Settings, args: argparse.Namespace) -> int:
    import asyncio

    from schemas.events import RetrainReason
    from streams.lifecycle import manual_request, publish_update, retrain

    _wait_for_registry(settings)
    outcome = retrain(settings, manual_request(RetrainReason.MANUAL, {"by": "fraudstream retrain"}))
    _say(f"retrain: {outcome.status}, version {outcome.version}: {outcome.reason}")
    if outcome.update is not None:
        asyncio.run(publish_update(settings, outcome.update))
        _say(f"published: {settings.model_name} version {outcome.update.version} is champion")
    return 0 if outcome.status != "skipped" else 1


def _promote(settings: Settings, args: argparse.Namespace) -> int:
    import asyncio

    from streams.lifecycle import promote_version, publish_update

    _wait_for_registry(settings)
    update = promote_version(settings, args.version, args.reason)
    asyncio.run(publish_update(settings, update))
    _say(f"{update.model_name}: champion {update.previous_version} -> {update.version}")
    return 0


def _promote_challenger(settings: Settings, args: argparse.Namespace) -> int:
    import asyncio

    import redis

    from streams.challenger import ChallengerChannel
    from streams.lifecycle import challenger_through_the_gate, publish_update

    _wait_for_registry(settings)
    channel = ChallengerChannel(
        redis.Redis.from_url(settings.redis_url), f"{settings.topic_prefix}challenger"
    )
    challenger = channel.refresh()
    if challenger is None:
        _say("no online challenger has been published yet (is a worker running its agent?)")
        return 1
    outcome = challenger_through_the_gate(settings, challenger, force=args.force)
    _say(f"{challenger.version}: {outcome.status}, version {outcome.version}: {outcome.reason}")
    if outcome.update is not None:
        asyncio.run(publish_update(settings, outcome.update))
    return 0 if outcome.status != "skipped" else 1


def _rollback(settings: Settings, args: argparse.Namespace) -> int:
    import asyncio

    from streams.lifecycle import publish_update, rollback_champion

    _wait_for_registry(settings)
    update = rollback_champion(settings)
    asyncio.run(publish_update(settings, update))
    _say(f"{update.model_name}: champion {update.previous_version} -> {update.version} (rollback)")
    return 0


def _api(settings: Settings, args: argparse.Namespace) -> int:
    import asyncio

    from streams.api import serve
    from streams.app import create_topics

    _limit_registry_retries()
    _wait_for_state_and_registry(settings)
    asyncio.run(create_topics(settings))
    serve(settings)
    return 0


def _wait_for_registry(settings: Settings) -> None:
    """Commands that need the registry wait for an MLflow server that is starting (a local
    store answers at once); past ``FRAUD_STARTUP_TIMEOUT`` they stop, naming it."""
    from streams.startup import wait_for_mlflow

    wait_for_mlflow(settings.mlflow_tracking_uri, settings.startup_timeout)


def _wait_for_state_and_registry(settings: Settings) -> None:
    """A scorer (worker or API) waits for Redis, which holds the feature state. It waits for
    MLflow only while it has no model of its own: with a locally cached one it starts at once
    (an MLflow outage must not stop scoring); with none, the rules decide after the wait, and
    the champion is loaded as soon as the registry answers."""
    from streams.startup import ServiceUnavailable, wait_for_mlflow, wait_for_redis

    wait_for_redis(settings.redis_url, settings.startup_timeout)
    if settings.model_cache_file.exists():
        return
    try:
        wait_for_mlflow(settings.mlflow_tracking_uri, settings.startup_timeout)
    except ServiceUnavailable as error:
        logger.warning("%s; the rules decide until it answers", error)


def _limit_registry_retries() -> None:
    """A scorer asks MLflow at start and on each update; it must give up within seconds so
    its cached model takes over (``MLFLOW_HTTP_*`` already set are kept)."""
    from streams.app import REGISTRY_HTTP_LIMITS

    for name, value in REGISTRY_HTTP_LIMITS.items():
        os.environ.setdefault(name, value)  # MLflow reads them at each request


def _chaos(settings: Settings, args: argparse.Namespace) -> int:
    import asyncio

    from streams import chaos
    from streams.bench import machine

    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    if unknown := set(chosen) - set(SCENARIOS):
        raise SystemExit(f"unknown scenario(s) {sorted(unknown)}; choose from {SCENARIOS}")
    logs = settings.home / "chaos"
    logs.mkdir(parents=True, exist_ok=True)
    runs = {
        "kill": lambda: chaos.kill_nine(settings, logs, args.count, args.rate),
        "broker": lambda: chaos.broker_restart(settings, logs, rate=args.rate),
        "redis": lambda: chaos.redis_outage(settings, logs, rate=args.rate),
        "mlflow": lambda: chaos.mlflow_outage(settings, logs, rate=args.rate),
        "hostile": lambda: chaos.hostile(settings, logs, rate=args.rate),
        "backlog": lambda: chaos.backlog(settings, logs, args.backlog),
    }
    outcomes = []
    for name in chosen:
        outcomes.append(asyncio.run(runs[name]()))
        _say(f"{chaos.TABLE_HEAD}\n{outcomes[-1].row()}")
    text = "\n".join(
        [f"Machine: {machine()}", f"Command: `fraudstream chaos --count {args.count} "
         f"--rate {args.rate:.0f} --backlog {args.backlog} --only {','.join(chosen)}`", "",
         chaos.TABLE_HEAD, *(o.row() for o in outcomes)]
    )  # fmt: skip
    _say(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    return 0 if all(o.lost == 0 for o in outcomes) else 1


def _bench(settings: Settings, args: argparse.Namespace) -> int:
    import asyncio

    from streams.bench import report, run_bench
    from streams.services.kafka_probe import probe

    if args.steps:
        from streams.bench import machine, step_costs

        _say(f"Machine: {machine()}")
        for result in step_costs(settings, args.count):
            _say(f"  {result.name:<48} {result.value:8.1f} {result.unit}")
        return 0
    host, _, port = settings.kafka_bootstrap.rpartition(":")
    release = probe(host, int(port)).release
    kafka = f"{release.split('-')[0]} (metadata.version {release})"
    options = f"--rate {args.rate:.0f} --seconds {args.seconds:.0f}"
    if args.report:
        from streams.bench_report import full_report, write_between_markers

        body = full_report(settings, kafka, _say, args.count, args.rate, args.seconds, args.history)
        write_between_markers(args.report, body)
        _say(body)
        _say(f"written to {args.report}")
        return 0
    if args.rest:
        from streams.bench_rest import run_rest_bench

        results = asyncio.run(run_rest_bench(settings, args.seconds, args.rate))
        command = f"fraudstream bench --rest {options}"
    else:
        results = asyncio.run(run_bench(settings, args.count, args.rate, args.seconds))
        command = f"fraudstream bench --count {args.count} {options}"
    text = report(results, command, kafka)
    _say(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    return 0


def _say_metrics(per_candidate: dict[str, dict[str, float]]) -> None:
    for kind, metrics in per_candidate.items():
        _say(f"  {kind:<20} " + "  ".join(f"{n}={v:.4f}" for n, v in metrics.items()))


def _say(line: str) -> None:
    print(line)  # noqa: T201 - a command's output goes to stdout


def _services(settings: Settings, args: argparse.Namespace) -> int:
    from streams.services import LocalServices

    services = LocalServices(settings)
    names = tuple(name.strip() for name in args.only.split(",") if name.strip())
    if args.action == "up":
        services.up(names, mlflow_server=args.mlflow_server)
    elif args.action == "down":
        stopped = services.down(names)
        logger.info("stopped: %s", ", ".join(stopped) or "nothing (fraudstream had started none)")
    statuses = services.status(names)
    for status in statuses:
        print(status.line())  # noqa: T201 - the command's output
    # status exits 3 when something is not running, as service managers do
    return 0 if args.action != "status" or all(s.running for s in statuses) else 3


def _smoke(settings: Settings, args: argparse.Namespace) -> int:
    from streams.smoke import smoke

    result = smoke(settings, args.count)
    print(  # noqa: T201 - the command's output
        f"smoke: sent {result.sent}, received {result.received}, missing {result.missing}, "
        f"duplicates {result.duplicates}, not echoed {result.not_echoed} "
        f"in {result.seconds:.1f}s -> {'OK' if result.ok else 'FAILED'}"
    )
    return 0 if result.ok else 1


def _demo(settings: Settings, args: argparse.Namespace) -> int:
    from streams.demo import run_demo
    from streams.services import LocalServices

    services = LocalServices(settings)
    try:
        services.up()
        for status in services.status():
            _say(status.line())
        return run_demo(settings, args.data, _say)
    finally:
        if not args.keep_services:
            stopped = services.down(tuple(services.started))
            logger.info("stopped: %s", ", ".join(stopped) or "nothing")


if __name__ == "__main__":
    sys.exit(main())
